using FluentAssertions;
using NicheTune.Scheduling;
using NicheTune.Training;
using Xunit;

namespace NicheTune.Tests.Scheduling;

/// <summary>
/// Scripted metric sequences with the multipliers torch.optim.lr_scheduler.ReduceLROnPlateau gives after each
/// scheduler.step(metric) (traced by hand from its step(): better → best = a, bad = 0, else bad += 1; in cooldown →
/// cooldown −= 1, bad = 0; bad &gt; patience → lr = max(lr · factor, min_lr), cooldown = cooldown, bad = 0).
/// </summary>
public sealed class ReduceOnPlateauTests
{
    private const long Total = 10_000;

    private static double[] Run(IMetricDrivenSchedule schedule, params double[] metrics)
    {
        var after = new double[metrics.Length];
        for (int i = 0; i < metrics.Length; i++)
        {
            long step = (i + 1) * 100L;
            schedule.Observe(step, Total, metrics[i]);
            after[i] = schedule.Multiplier(step, Total);
        }

        return after;
    }

    [Fact]
    public void Observe_NoImprovementBeyondPatience_CutsAtTheNextEvaluation()
    {
        // ReduceLROnPlateau(mode='min', factor=0.5, patience=2, threshold=0): a cut on the 3rd bad evaluation in a row.
        var schedule = Schedules.ReduceOnPlateau(factor: 0.5, patience: 2, threshold: 0.0);

        double[] multipliers = Run(schedule, 1.0, 0.9, 0.95, 0.92, 0.91, 0.8, 0.85, 0.85, 0.85, 0.85, 0.85, 0.85);

        //                         1.0  0.9  bad1 bad2 bad3→cut  best  bad1 bad2 bad3→cut  bad1  bad2  bad3→cut
        multipliers.Should().Equal(1.0, 1.0, 1.0, 1.0, 0.5,      0.5,  0.5, 0.5, 0.25,     0.25, 0.25, 0.125);
        schedule.Multiplier(0, Total).Should().Be(0.125, "the multiplier does not depend on the step");
    }

    [Fact]
    public void Observe_Cooldown_IgnoresBadEvaluationsAfterACut()
    {
        // ReduceLROnPlateau(factor=0.1, patience=1, cooldown=2), a flat metric.
        var schedule = Schedules.ReduceOnPlateau(factor: 0.1, patience: 1, cooldown: 2);

        double[] multipliers = Run(schedule, Enumerable.Repeat(1.0, 11).ToArray());

        // 1: best; 2: bad 1; 3: bad 2 → cut, cooldown 2; 4, 5: cooldown (bad reset); 6: bad 1; 7: bad 2 → cut; 8, 9: cooldown; 10: bad 1; 11: cut.
        multipliers.Should().Equal(
            [1.0, 1.0, 0.1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.01, 0.001],
            (a, b) => Math.Abs(a - b) < 1e-15);
    }

    [Fact]
    public void Observe_MinFactor_StopsCuttingAtTheFloor()
    {
        // ReduceLROnPlateau(factor=0.1, patience=0, min_lr=0.05 · base)
        var schedule = Schedules.ReduceOnPlateau(factor: 0.1, patience: 0, minFactor: 0.05);

        double[] multipliers = Run(schedule, 1.0, 1.0, 1.0, 1.0);

        multipliers.Should().Equal([1.0, 0.1, 0.05, 0.05], (a, b) => Math.Abs(a - b) < 1e-15);
    }

    [Theory]
    [InlineData(ThresholdMode.Relative, 0.5)]
    [InlineData(ThresholdMode.Absolute, 1.0)]
    public void Observe_ThresholdMode_DecidesWhatCountsAsBetter(ThresholdMode thresholdMode, double afterSecond)
    {
        // best 10, then 9.5: relative 0.1 needs < 9 (not better → cut); absolute 0.1 needs < 9.9 (better).
        var schedule = Schedules.ReduceOnPlateau(factor: 0.5, patience: 0, threshold: 0.1, thresholdMode: thresholdMode);

        Run(schedule, 10.0, 9.5).Should().Equal(1.0, afterSecond);
    }

    [Fact]
    public void Observe_MaxMode_HigherIsBetter()
    {
        // ReduceLROnPlateau(mode='max', threshold=0.01, threshold_mode='abs', patience=0, factor=0.5)
        var absolute = Schedules.ReduceOnPlateau("validation.accuracy", factor: 0.5, patience: 0, threshold: 0.01, thresholdMode: ThresholdMode.Absolute, mode: MetricMode.Max);
        Run(absolute, 0.5, 0.52, 0.52).Should().Equal(1.0, 1.0, 0.5);

        // mode='max', threshold=0.1 (rel): 0.52 is not above 0.5 · 1.1 = 0.55.
        var relative = Schedules.ReduceOnPlateau("validation.accuracy", factor: 0.5, patience: 0, threshold: 0.1, mode: MetricMode.Max);
        Run(relative, 0.5, 0.52, 0.52).Should().Equal(1.0, 0.5, 0.25);
    }

    [Theory]
    [InlineData("validation.loss", 0.5)]
    [InlineData("validation.perplexity", 0.5)]
    [InlineData("validation.accuracy", 1.0)]
    [InlineData("validation.f1", 1.0)]
    public void Observe_AutoMode_LossGoesDownOtherMetricsGoUp(string metric, double afterRise)
    {
        var schedule = Schedules.ReduceOnPlateau(metric, factor: 0.5, patience: 0);

        Run(schedule, 0.5, 0.7).Should().Equal(1.0, afterRise);
        schedule.Metric.Should().Be(metric);
    }

    [Fact]
    public void Observe_NaN_CountsAsNoImprovement()
    {
        var schedule = Schedules.ReduceOnPlateau(factor: 0.5, patience: 0);

        Run(schedule, 1.0, double.NaN, 0.5).Should().Equal(1.0, 0.5, 0.5);
    }

    [Fact]
    public void SaveStateLoadState_MidSequence_ResumesExactly()
    {
        double[] metrics = [1.0, 0.9, 0.95, 0.92, 0.91, 0.8, 0.85, 0.85, 0.85, 0.85, 0.85, 0.85];
        var straight = Schedules.ReduceOnPlateau(factor: 0.5, patience: 2, threshold: 0.0, cooldown: 1);
        double[] expected = Run(straight, metrics);

        var first = Schedules.ReduceOnPlateau(factor: 0.5, patience: 2, threshold: 0.0, cooldown: 1);
        double[] firstHalf = Run(first, metrics[..7]);
        string state = first.SaveState();

        var resumed = Schedules.ReduceOnPlateau(factor: 0.5, patience: 2, threshold: 0.0, cooldown: 1);
        resumed.LoadState(state);
        resumed.Multiplier(0, Total).Should().Be(first.Multiplier(0, Total));
        double[] secondHalf = Run(resumed, metrics[7..]);

        firstHalf.Concat(secondHalf).Should().Equal(expected);
        state.Should().Contain("\"metric\":\"validation.loss\"");
    }

    [Fact]
    public void SaveState_BeforeAnyObservation_RoundTripsInfiniteBest()
    {
        var fresh = Schedules.ReduceOnPlateau(factor: 0.5, patience: 0);
        var restored = Schedules.ReduceOnPlateau(factor: 0.5, patience: 0);

        restored.LoadState(fresh.SaveState());

        Run(restored, 3.0, 4.0).Should().Equal(1.0, 0.5);
    }

    [Fact]
    public void LoadState_OtherMetricOrGarbage_ThrowsArgumentException()
    {
        string state = Schedules.ReduceOnPlateau("validation.accuracy").SaveState();
        var schedule = Schedules.ReduceOnPlateau("validation.loss");

        schedule.Invoking(s => s.LoadState(state)).Should().Throw<ArgumentException>()
            .WithParameterName("state").WithMessage("*'validation.accuracy'*'validation.loss'*");
        schedule.Invoking(s => s.LoadState("{not json")).Should().Throw<ArgumentException>()
            .WithParameterName("state").WithMessage("*not a reduce-on-plateau state*");
        schedule.Invoking(s => s.LoadState("{}")).Should().Throw<ArgumentException>().WithParameterName("state");
    }

    [Fact]
    public void Reset_AfterCuts_StartsOver()
    {
        var schedule = Schedules.ReduceOnPlateau(factor: 0.5, patience: 0);
        Run(schedule, 1.0, 2.0, 2.0);

        schedule.Reset();

        schedule.Multiplier(0, Total).Should().Be(1.0);
        Run(schedule, 5.0, 4.0).Should().Equal([1.0, 1.0], "the best so far was forgotten");
    }

    [Fact]
    public void ThenReduceOnPlateau_AfterWarmup_IsMetricDrivenAndIgnoresWarmupEvaluations()
    {
        ScheduleSequence schedule = Schedules.LinearWarmup(100).Then(Schedules.ReduceOnPlateau(factor: 0.5, patience: 0));
        var driven = schedule.Should().BeAssignableTo<IMetricDrivenSchedule>().Subject;
        driven.Metric.Should().Be("validation.loss");

        // Evaluations during the warm-up (the loss rising from 5 to 6) must not cost patience.
        driven.Observe(50, 1000, 5.0);
        driven.Observe(60, 1000, 6.0);
        schedule.Multiplier(60, 1000).Should().Be(0.6);
        schedule.Multiplier(100, 1000).Should().Be(1.0);

        // From the end of the warm-up on, evaluations count.
        driven.Observe(100, 1000, 1.0);
        schedule.Multiplier(150, 1000).Should().Be(1.0);
        driven.Observe(200, 1000, 2.0);
        schedule.Multiplier(200, 1000).Should().Be(0.5);
        schedule.Multiplier(999, 1000).Should().Be(0.5);
    }

    [Fact]
    public void ThenReduceOnPlateau_StateAndResetForwardedThroughTheSequence()
    {
        var first = (IMetricDrivenSchedule)Schedules.LinearWarmup(0.1).Then(Schedules.ReduceOnPlateau(factor: 0.5, patience: 0));
        first.Observe(100, 1000, 1.0);
        first.Observe(200, 1000, 1.0);
        string state = first.SaveState();

        var resumed = (IMetricDrivenSchedule)Schedules.LinearWarmup(0.1).Then(Schedules.ReduceOnPlateau(factor: 0.5, patience: 0));
        resumed.LoadState(state);

        resumed.Multiplier(300, 1000).Should().Be(0.5);
        resumed.Observe(300, 1000, 1.0);
        first.Observe(300, 1000, 1.0);
        resumed.Multiplier(300, 1000).Should().Be(first.Multiplier(300, 1000)).And.Be(0.25);

        resumed.Reset();
        resumed.Multiplier(300, 1000).Should().Be(1.0);
    }

    [Fact]
    public void Then_PureSchedules_AreNotMetricDriven()
    {
        Schedules.LinearWarmup(100).ThenCosine().Should().NotBeAssignableTo<IMetricDrivenSchedule>();
    }

    [Fact]
    public void Then_TwoMetricDrivenPhases_ThrowsArgumentException()
    {
        var sequence = Schedules.LinearWarmup(10).Then(Schedules.ReduceOnPlateau(), steps: 100);

        Action act = () => sequence.Then(Schedules.ReduceOnPlateau("validation.accuracy"));

        act.Should().Throw<ArgumentException>().WithMessage("*already is*one metric-driven phase*");
    }
}
