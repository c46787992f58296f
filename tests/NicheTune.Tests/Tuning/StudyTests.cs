using FluentAssertions;
using NicheTune.Tests.Support;
using NicheTune.Tuning;
using Xunit;

namespace NicheTune.Tests.Tuning;

// Optimize with parallelism > 1 sets torch's process-wide thread count while it runs: not beside training tests.
[Collection(TorchCollection.Name)]
public sealed class StudyTests
{
    [Fact]
    public void Optimize_ObjectiveThrows_RecordsFailedTrialAndGoesOn()
    {
        var study = Study.Create("failing", sampler: Samplers.Random(seed: 1), pruner: Pruners.None);

        IReadOnlyList<FrozenTrial> ran = study.Optimize(t =>
        {
            double x = t.SuggestFloat("x", 0, 1);
            return t.Number == 2 ? throw new InvalidDataException("corrupt batch in trial two") : x;
        }, trials: 5);

        ran.Should().HaveCount(5);
        ran[2].State.Should().Be(TrialState.Failed);
        ran[2].Error.Should().Contain("InvalidDataException").And.Contain("corrupt batch in trial two");
        ran.Where(t => t.Number != 2).Should().OnlyContain(t => t.State == TrialState.Complete);
        study.ToMarkdown().Should().Contain("trial 2: System.IO.InvalidDataException: corrupt batch in trial two");
    }

    [Fact]
    public void Optimize_NaNObjective_IsFailedNotBest()
    {
        var study = Study.Create("nan", pruner: Pruners.None);
        study.Optimize(t => t.Number == 0 ? double.NaN : 3.0, trials: 2);

        study.Trials[0].State.Should().Be(TrialState.Failed);
        study.BestTrial.Number.Should().Be(1);
    }

    [Fact]
    public void Optimize_TrialPrunedException_RecordsPrunedWithLastValue()
    {
        var study = Study.Create("pruned", pruner: Pruners.None);
        study.Optimize(t =>
        {
            t.Report(0, 4.0);
            t.Report(1, 3.0);
            return t.Number >= 0 ? throw new TrialPrunedException() : 0.0;
        }, trials: 1);

        study.Trials[0].State.Should().Be(TrialState.Pruned);
        study.Trials[0].Values.Should().Equal(3.0);
    }

    [Fact]
    public void Optimize_Parallel_RunsExactlyTheRequestedTrialsConcurrently()
    {
        var study = Study.Create("parallel", sampler: Samplers.Random(seed: 1), pruner: Pruners.None);
        int running = 0;
        int peak = 0;

        study.Optimize(t =>
        {
            int now = Interlocked.Increment(ref running);
            InterlockedMax(ref peak, now);
            Thread.Sleep(20);
            Interlocked.Decrement(ref running);
            return t.SuggestFloat("x", 0, 1);
        }, trials: 12, parallelism: 3);

        study.Trials.Should().HaveCount(12);
        peak.Should().BeInRange(2, 3, "at most 3 at once, and 20 ms sleeps overlap");
    }

    [Fact]
    public void Optimize_Timeout_StopsStartingTrials()
    {
        var study = Study.Create("timeout", pruner: Pruners.None);
        study.Optimize(_ => { Thread.Sleep(30); return 1; }, trials: 1000, timeout: TimeSpan.FromMilliseconds(100));

        study.Trials.Count.Should().BeInRange(1, 10);
    }

    [Fact]
    public void MultiObjective_ParetoFront_HoldsOnlyNonDominatedTrials()
    {
        var study = Study.Create("pareto", [StudyDirection.Minimize, StudyDirection.Maximize], pruner: Pruners.None);
        double[][] points = [[1, 1], [2, 3], [3, 3], [0.5, 0.2], [2, 2]];
        foreach (double[] p in points)
        {
            study.Tell(study.Ask(), TrialState.Complete, p);
        }

        study.ParetoFront.Select(t => t.Number).Should().Equal(0, 1, 3);
        var best = () => study.BestTrial;
        best.Should().Throw<InvalidOperationException>().WithMessage("*ParetoFront*");
        study.ToMarkdown().Should().Contain("### Pareto front");
    }

    [Fact]
    public void MultiObjective_TpeOptimize_FindsTradeOffs()
    {
        var study = Study.Create("mo-tpe", [StudyDirection.Minimize, StudyDirection.Minimize], Samplers.Tpe(seed: 2), Pruners.None);
        study.Optimize(t =>
        {
            double x = t.SuggestFloat("x", 0, 1);
            double y = t.SuggestFloat("y", 0, 1);
            return new[] { x + y * 0.1, 1 - x + y * 0.1 };
        }, trials: 30);

        study.ParetoFront.Count.Should().BeGreaterThan(2);
    }

    [Fact]
    public void ToMarkdown_SingleObjective_HasBestTrialTrialsTableAndHistory()
    {
        var study = Study.Create("report", sampler: Samplers.Random(seed: 4), pruner: Pruners.None);
        study.Optimize(t => Math.Abs(t.SuggestFloat("lr", 1e-4, 1e-1, log: true) - 0.01) + t.SuggestInt("layers", 0, 2), trials: 6);

        string markdown = study.ToMarkdown();

        markdown.Should().Contain("## Study `report`").And.Contain("### Best trial").And.Contain("### Trials").And.Contain("### Optimisation history");
        markdown.Should().Contain($"| {study.BestTrial.Number} | {StudyMarkdownNumber(study.BestValue)} |");
        markdown.Split('\n').Count(l => l.StartsWith("| ", StringComparison.Ordinal)).Should().Be(19, "best (1 row), trials (6) and history (6), each with a header and a separator line");
    }

    [Fact]
    public void Create_ExistingNameWithoutLoad_Throws()
    {
        var storage = new InMemoryStudyStorage();
        Study.Create("twice", storage: storage);

        var again = () => Study.Create("twice", storage: storage);
        again.Should().Throw<InvalidOperationException>().WithMessage("*loadIfExists*");
        var otherDirection = () => Study.Create("twice", StudyDirection.Maximize, storage: storage, loadIfExists: true);
        otherDirection.Should().Throw<InvalidOperationException>().WithMessage("*Minimize*Maximize*");
    }

    [Fact]
    public void Optimize_OwnSamplerAndPruner_PlugInLikeBuiltIns()
    {
        var study = Study.Create("custom", sampler: new LowestSampler(), pruner: new PruneFromStep(2));

        study.Optimize(t =>
        {
            double x = t.SuggestFloat("x", 0.25, 4);
            for (int step = 0; step < 5; step++)
            {
                t.Report(step, x);
                if (t.ShouldPrune())
                {
                    throw new TrialPrunedException($"pruned at {step}");
                }
            }

            return x;
        }, trials: 2);

        study.Trials.Should().OnlyContain(t => t.State == TrialState.Pruned && (double)t.Parameters["x"] == 0.25);
        study.Trials.Should().OnlyContain(t => t.IntermediateValues.Count == 3);
    }

    [Fact]
    public void Optimize_CancelledToken_StartsNoTrial()
    {
        var study = Study.Create("cancelled");
        using var cancellation = new CancellationTokenSource();
        cancellation.Cancel();

        study.Optimize(_ => 1, trials: 5, cancellationToken: cancellation.Token).Should().BeEmpty();
        study.Trials.Should().BeEmpty();
    }

    [Fact]
    public void Tell_WrongNumberOfValues_ThrowsNamingBothCounts()
    {
        var study = Study.Create("values", [StudyDirection.Minimize, StudyDirection.Maximize]);
        Trial trial = study.Ask();

        var tell = () => study.Tell(trial, 1.0);

        tell.Should().Throw<ArgumentException>().WithMessage("*2 objective(s)*1 value(s)*");
    }

    private sealed class LowestSampler : ISampler
    {
        public double Sample(in SamplerArguments args) => args.Distribution switch
        {
            FloatDistribution f => f.Low,
            IntDistribution i => i.Low,
            _ => 0,
        };
    }

    private sealed class PruneFromStep(long step) : IPruner
    {
        public bool ShouldPrune(in PrunerArguments args) => args.Trial.LastIntermediate?.Step >= step;
    }

    private static string StudyMarkdownNumber(double value) => StudyMarkdown.Number(value);

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}
