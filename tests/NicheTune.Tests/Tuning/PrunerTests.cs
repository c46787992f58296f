using FluentAssertions;
using NicheTune.Tuning;
using Xunit;

namespace NicheTune.Tests.Tuning;

public sealed class PrunerTests
{
    [Fact]
    public void MedianPruner_TrialWorseThanMedianAtSameStep_IsPruned()
    {
        var study = Study.Create("median", sampler: Samplers.Random(seed: 1), pruner: Pruners.Median(startupTrials: 3, warmupSteps: 1));
        // Three complete trials with curves 1/(s+1)·k for k = 1, 2, 3: at step 2 the median is 2/3.
        foreach (double k in new[] { 1.0, 2.0, 3.0 })
        {
            Trial t = study.Ask();
            for (int step = 0; step < 4; step++)
            {
                t.Report(step, k / (step + 1));
            }

            study.Tell(t, k / 4);
        }

        Trial good = study.Ask();
        good.Report(0, 5.0);
        good.ShouldPrune().Should().BeFalse("step 0 is inside the warm-up");
        good.Report(1, 0.9);
        good.ShouldPrune().Should().BeFalse("0.9 is below the median 1.0 at step 1");

        Trial bad = study.Ask();
        bad.Report(0, 5.0);
        bad.ShouldPrune().Should().BeFalse("step 0 is inside the warm-up");
        bad.Report(1, 1.2);
        bad.ShouldPrune().Should().BeTrue("1.2 is above the median 1.0 of the complete trials at step 1");
    }

    [Fact]
    public void MedianPruner_BeforeStartupTrials_NeverPrunes()
    {
        var study = Study.Create("median-startup", pruner: Pruners.Median(startupTrials: 5));
        Trial first = study.Ask();
        first.Report(0, 1);
        study.Tell(first, 1);

        Trial second = study.Ask();
        second.Report(0, 100);
        second.ShouldPrune().Should().BeFalse("only one trial is complete, fewer than 5 start-up trials");
    }

    [Fact]
    public void MedianPruner_Maximize_PrunesBelowTheMedian()
    {
        var study = Study.Create("median-max", StudyDirection.Maximize, pruner: Pruners.Median(startupTrials: 1));
        Trial first = study.Ask();
        first.Report(3, 0.8);
        study.Tell(first, 0.8);

        Trial worse = study.Ask();
        worse.Report(3, 0.5);
        worse.ShouldPrune().Should().BeTrue();
        Trial better = study.Ask();
        better.Report(3, 0.9);
        better.ShouldPrune().Should().BeFalse();
    }

    [Fact]
    public void SuccessiveHalving_RungsAtMinResourceTimesFactorPowers_KeepTheTopFraction()
    {
        var study = Study.Create("asha", pruner: Pruners.SuccessiveHalving(minResource: 1, reductionFactor: 2));
        // Four trials with constant curves 1, 2, 3, 4 in that order; rungs at steps 1, 2, 4.
        var prunedAt = new Dictionary<int, long?>();
        foreach (double level in new[] { 1.0, 2.0, 3.0, 4.0 })
        {
            Trial t = study.Ask();
            long? pruned = null;
            for (int step = 0; step <= 4 && pruned is null; step++)
            {
                t.Report(step, level);
                if (t.ShouldPrune())
                {
                    pruned = step;
                }
            }

            study.Tell(t, pruned is null ? TrialState.Complete : TrialState.Pruned, [level]);
            prunedAt[(int)level] = pruned;
        }

        prunedAt[1].Should().BeNull("the best trial is promoted through every rung");
        prunedAt[2].Should().Be(1, "at rung 0 the competitors are {1, 2}: only the top 1 of 2 goes on");
        prunedAt[3].Should().Be(1, "{1, 2, 3} at rung 0: the top ⌊3/2⌋ = 1 goes on");
        prunedAt[4].Should().Be(1);
        study.Trials[0].Attributes.Keys.Should().Contain(["asha.rung.0", "asha.rung.1", "asha.rung.2"]);
    }

    [Fact]
    public void Pruners_InvalidArguments_Throw()
    {
        var median = () => Pruners.Median(intervalSteps: 0);
        median.Should().Throw<ArgumentOutOfRangeException>().WithParameterName("intervalSteps");
        var asha = () => Pruners.SuccessiveHalving(reductionFactor: 1);
        asha.Should().Throw<ArgumentOutOfRangeException>().WithParameterName("reductionFactor");
    }
}
