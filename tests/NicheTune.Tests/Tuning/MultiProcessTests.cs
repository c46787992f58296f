using System.Diagnostics;
using FluentAssertions;
using NicheTune.Tests.Support;
using NicheTune.Tuning;
using Xunit;
using Xunit.Abstractions;

namespace NicheTune.Tests.Tuning;

public sealed class MultiProcessTests(ITestOutputHelper output)
{
    [Fact]
    public void SqliteStudy_SecondRealProcess_NeverEvaluatesTheSameTrialNumber()
    {
        using var folder = new TempFolder();
        string path = Path.Combine(folder.Path, "two-processes.db");
        using var storage = new SqliteStudyStorage(path, new SqliteStudyStorageOptions { Pooling = false });
        Study.Create("two-processes", storage: storage, pruner: Pruners.None);

        using Process worker = StartWorker(path, "two-processes", trials: 25, seed: 2);
        worker.StandardOutput.ReadLine().Should().Be("ready", "the worker joined the study");
        Study.Load("two-processes", storage, Samplers.Random(seed: 1), Pruners.None).Optimize(t =>
        {
            Thread.Sleep(5);
            return t.SuggestFloat("x", 0, 1);
        }, trials: 25);
        string workerOutput = worker.StandardOutput.ReadToEnd();
        worker.WaitForExit(30_000).Should().BeTrue();
        worker.ExitCode.Should().Be(0, worker.StandardError.ReadToEnd());

        IReadOnlyList<FrozenTrial> trials = Study.Load("two-processes", storage).Trials;
        trials.Select(t => t.Number).Should().Equal(Enumerable.Range(0, 50), "50 trials from two processes, numbered without gaps or repeats");
        trials.Should().OnlyContain(t => t.State == TrialState.Complete);
        var byProcess = trials.Where(t => t.Attributes.ContainsKey("worker")).Select(t => t.Number).ToList();
        output.WriteLine($"trial numbers evaluated by the second process: {string.Join(", ", byProcess)}");
        byProcess.Should().HaveCount(25);
        workerOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => int.Parse(l["trial ".Length..])).Should().BeEquivalentTo(byProcess);
    }

    private static Process StartWorker(string path, string study, int trials, int seed)
    {
        // The worker is built next to the tests: …/tests/NicheTune.Tests/bin/<configuration>/<tfm>/ → …/tests/NicheTune.Tuning.Worker/bin/…
        string here = AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar);
        string dll = Path.Combine(here.Replace($"{Path.DirectorySeparatorChar}NicheTune.Tests{Path.DirectorySeparatorChar}", $"{Path.DirectorySeparatorChar}NicheTune.Tuning.Worker{Path.DirectorySeparatorChar}", StringComparison.Ordinal), "NicheTune.Tuning.Worker.dll");
        File.Exists(dll).Should().BeTrue($"the test project builds the worker first ({dll})");
        string host = Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";
        var start = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in new[] { dll, path, study, trials.ToString(System.Globalization.CultureInfo.InvariantCulture), seed.ToString(System.Globalization.CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(arg);
        }

        return Process.Start(start)!;
    }
}
