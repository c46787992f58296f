using BenchmarkDotNet.Running;
using NicheTune.Benchmarks.Guard;

if (args.Length > 0 && args[0] == "serving")
{
    return NicheTune.Benchmarks.Serving.ServingRounds.Run(args[1..]);
}

if (args.Length > 0 && args[0] == "guard")
{
    return GuardRunner.Run(args[1..]);
}

var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(ContainsFilters(args));
return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;

// BenchmarkDotNet's filters are anchored globs over "Namespace.Type.Method"; a plain word such as `TrainingStep`
// (what `./build.sh bench TrainingStep` passes) is taken to mean "names that contain it".
static string[] ContainsFilters(string[] args)
{
    var result = new string[args.Length];
    bool inFilter = false;
    for (int i = 0; i < args.Length; i++)
    {
        string arg = args[i];
        if (arg.StartsWith('-'))
        {
            inFilter = arg is "--filter" or "-f";
        }
        else if (inFilter && arg.IndexOfAny(['*', '?']) < 0)
        {
            arg = $"*{arg}*";
        }

        result[i] = arg;
    }

    return result;
}
