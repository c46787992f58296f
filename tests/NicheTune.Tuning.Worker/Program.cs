// Usage: NicheTune.Tuning.Worker <study.db> <study name> <trials> <seed>
// Joins the study, prints "ready", then runs its trials; each trial prints "trial <number>" and tags itself worker=process.
using System.Globalization;
using NicheTune.Tuning;

if (args.Length != 4)
{
    Console.Error.WriteLine("usage: NicheTune.Tuning.Worker <study.db> <study name> <trials> <seed>");
    return 2;
}

using var storage = new SqliteStudyStorage(args[0], new SqliteStudyStorageOptions { Pooling = false });
var study = Study.Load(args[1], storage, Samplers.Random(int.Parse(args[3], CultureInfo.InvariantCulture)), Pruners.None);
Console.WriteLine("ready");
IReadOnlyList<FrozenTrial> ran = study.Optimize(trial =>
{
    trial.SetAttribute("worker", "process");
    Console.WriteLine($"trial {trial.Number}");
    Thread.Sleep(5);
    return trial.SuggestFloat("x", 0, 1);
}, int.Parse(args[2], CultureInfo.InvariantCulture));
return ran.All(t => t.State == TrialState.Complete) ? 0 : 1;
