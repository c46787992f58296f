using FluentAssertions;
using NicheTune.Scheduling;
using Xunit;
using static NicheTune.Tests.Scheduling.ScheduleReference;

namespace NicheTune.Tests.Scheduling;

public sealed class ScheduleCompositionTests
{
    // A schedule as a user would write it: it reports the (local step, local length) it was asked about, so tests can
    // see exactly what each phase receives. Encoded as step · 1e6 + length.
    private sealed class LocalStepProbe : ILearningRateSchedule
    {
        public double Multiplier(long step, long totalSteps) => (step * 1e6) + totalSteps;

        public static (long Step, long Length) Decode(double value) => ((long)(value / 1e6), (long)(value % 1e6));
    }

    // A user-written schedule: halve the rate at the middle of its phase.
    private sealed class HalveAtMiddle : ILearningRateSchedule
    {
        public double Multiplier(long step, long totalSteps) => step < totalSteps / 2 ? 1.0 : 0.5;

        public IEnumerable<string> Validate(long? totalSteps)
            => totalSteps < 2 ? [$"HalveAtMiddle needs at least 2 steps, got {totalSteps}."] : [];
    }

    [Fact]
    public void Then_PhaseBoundary_NextPhaseSeesLocalStepAndRemainingLength()
    {
        var schedule = Schedules.LinearWarmup(100).Then(new LocalStepProbe());

        schedule.Multiplier(99, 1000).Should().BeApproximately(0.99, Tolerance, "step 99 is the last warm-up step");
        LocalStepProbe.Decode(schedule.Multiplier(100, 1000)).Should().Be((0L, 900L), "the first step after the warm-up is the next phase's step 0");
        LocalStepProbe.Decode(schedule.Multiplier(101, 1000)).Should().Be((1L, 900L));
        LocalStepProbe.Decode(schedule.Multiplier(999, 1000)).Should().Be((899L, 900L));
    }

    [Fact]
    public void Then_UserWrittenSchedule_PlugsInLikeABuiltIn()
    {
        var schedule = Schedules.LinearWarmup(10).Then(new HalveAtMiddle());

        schedule.HasAt(110, (0, 0.0), (5, 0.5), (10, 1.0), (59, 1.0), (60, 0.5), (109, 0.5));
        schedule.Validate(110).Should().BeEmpty();
        schedule.Validate(11).Should().ContainSingle().Which.Should().Be(
            "Phase 2 (NicheTune.Tests.Scheduling.ScheduleCompositionTests+HalveAtMiddle, rest of the run): HalveAtMiddle needs at least 2 steps, got 1.");
    }

    [Fact]
    public void Then_ThreePhases_WarmupHoldCosine()
    {
        // Warm-up 100 steps, hold the peak for 300, then cosine to 0.1 over the remaining 600.
        var schedule = Schedules.LinearWarmup(100).Then(Schedules.Constant(), steps: 300).ThenCosine(minFactor: 0.1);

        schedule.PhaseCount.Should().Be(3);
        schedule.IsOpenEnded.Should().BeTrue();
        schedule.MatchesAtEveryStep(1000, t => t < 100
            ? t / 100.0
            : t < 400 ? 1.0 : TorchCosineAnnealing(t - 400, 600, 0.1));
        schedule.HasAt(1000, (0, 0.0), (99, 0.99), (100, 1.0), (399, 1.0), (400, 1.0), (700, 0.55), (999, 0.1 + (0.9 * 0.5 * (1 + Math.Cos(Math.PI * 599 / 600)))));
        schedule.Validate(1000).Should().BeEmpty();
    }

    [Fact]
    public void Then_Fractions_AddUpBeforeRoundingAndCoverTheRun()
    {
        // 0.3 and 0.7 of 1001 steps: the first ends at ceil(300.3) = 301, the second at ceil(1001) = 1001.
        var schedule = Schedules.Sequence(new LocalStepProbe(), fraction: 0.3).Then(new LocalStepProbe(), fraction: 0.7);

        LocalStepProbe.Decode(schedule.Multiplier(300, 1001)).Should().Be((300L, 301L));
        LocalStepProbe.Decode(schedule.Multiplier(301, 1001)).Should().Be((0L, 700L));
        LocalStepProbe.Decode(schedule.Multiplier(1000, 1001)).Should().Be((699L, 700L));
        schedule.Validate(1001).Should().BeEmpty();
    }

    [Fact]
    public void Then_StepsAndFractionsMixed_ResolveToStepCounts()
    {
        // 50 steps, then half of 1000 steps (500), then the rest (450).
        var schedule = Schedules.Sequence(Schedules.Constant(), steps: 50)
            .Then(new LocalStepProbe(), fraction: 0.5)
            .Then(new LocalStepProbe());

        schedule.Multiplier(49, 1000).Should().Be(1.0);
        LocalStepProbe.Decode(schedule.Multiplier(50, 1000)).Should().Be((0L, 500L));
        LocalStepProbe.Decode(schedule.Multiplier(549, 1000)).Should().Be((499L, 500L));
        LocalStepProbe.Decode(schedule.Multiplier(550, 1000)).Should().Be((0L, 450L));
        LocalStepProbe.Decode(schedule.Multiplier(999, 1000)).Should().Be((449L, 450L));
    }

    [Fact]
    public void Then_WarmupAsFraction_NextPhaseStartsAtResolvedStep()
    {
        var schedule = Schedules.LinearWarmup(0.05).Then(new LocalStepProbe());

        // ceil(0.05 · 210) = ceil(10.5) = 11 warm-up steps.
        schedule.Multiplier(10, 210).Should().BeApproximately(10.0 / 11, Tolerance);
        LocalStepProbe.Decode(schedule.Multiplier(11, 210)).Should().Be((0L, 199L));
    }

    [Fact]
    public void Then_NestedSequenceAsPhase_SeesItsOwnLocalSteps()
    {
        // A cosine "cycle" that itself warms up for 10 of its steps, used twice after a hold.
        var cycle = Schedules.LinearWarmup(10).ThenCosine();
        var schedule = Schedules.Sequence(Schedules.Constant(), steps: 20).Then(cycle, steps: 110).Then(cycle);

        schedule.HasAt(240, (19, 1.0), (20, 0.0), (25, 0.5), (30, 1.0), (80, 0.5), (130, 0.0), (140, 1.0), (190, 0.5));
    }

    [Fact]
    public void Then_AfterOpenEndedPhase_ThrowsInvalidOperation()
    {
        var schedule = Schedules.LinearWarmup(10).ThenCosine();

        Action act = () => schedule.Then(Schedules.Constant(), steps: 10);

        act.Should().Throw<InvalidOperationException>().WithMessage("*already runs to the end of the run*Then(next, steps)*");
    }

    [Fact]
    public void Then_Null_ThrowsArgumentNull()
    {
        Action act = () => Schedules.LinearWarmup(10).Then(null!);

        act.Should().Throw<ArgumentNullException>().WithParameterName("next");
    }

    [Fact]
    public void Then_IsImmutable_EachThenReturnsANewSequence()
    {
        var start = Schedules.Sequence(Schedules.Constant(), steps: 10);
        var a = start.ThenCosine();
        var b = start.ThenLinear();

        start.IsOpenEnded.Should().BeFalse();
        start.PhaseCount.Should().Be(1);
        a.Multiplier(15, 20).Should().BeApproximately(0.5 * (1 + Math.Cos(Math.PI * 0.5)), Tolerance);
        b.Multiplier(15, 20).Should().BeApproximately(0.5, Tolerance);
    }

    [Fact]
    public void ToString_Sequence_DescribesPhases()
    {
        Schedules.LinearWarmup(200).ThenCosine(0.1).ToString()
            .Should().Be("linear warm-up from 0 (200 steps) → cosine decay to 0.1 (rest of the run)");
        Schedules.LinearWarmup(0.1).ToString().Should().Be("linear warm-up over 10% of the run from 0");
    }

    [Fact]
    public void Multiplier_ComposedSchedule_DoesNotAllocate()
    {
        ILearningRateSchedule[] schedules =
        [
            Schedules.LinearWarmup(0.1).Then(Schedules.Constant(), steps: 100).ThenCosine(0.1),
            Schedules.LinearWarmup(100).Then(Schedules.OneCycle(), fraction: 0.5).Then(Schedules.Polynomial(2, 0.1), fraction: 0.2).Then(Schedules.CosineWithHardRestarts(3)),
            Schedules.LinearWarmup(100).Then(Schedules.ReduceOnPlateau()),
            Schedules.Sequence(Schedules.Exponential(0.999), steps: 500).Then(Schedules.StepDecay(100, 0.5)),
        ];
        foreach (ILearningRateSchedule schedule in schedules)
        {
            double sum = schedule.Multiplier(0, 10_000);
            // The runtime itself may allocate on this thread while it tiers up or on-stack-replaces the loop (seen on a
            // heavily loaded machine: 3,672 bytes once); a schedule that allocates per step allocates in every attempt.
            long allocated = long.MaxValue;
            for (int attempt = 0; attempt < 3 && allocated > 0; attempt++)
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                for (long step = 0; step < 10_000; step++)
                {
                    sum += schedule.Multiplier(step, 10_000);
                }

                allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            }

            allocated.Should().Be(0, $"{schedule} must not allocate per step (sum {sum})");
        }
    }
}
