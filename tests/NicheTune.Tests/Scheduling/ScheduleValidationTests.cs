using FluentAssertions;
using NicheTune.Scheduling;
using Xunit;

namespace NicheTune.Tests.Scheduling;

public sealed class ScheduleValidationTests
{
    [Fact]
    public void Validate_WarmupLongerThanRun_SaysSoAndWhatToDo()
    {
        const string expected = "Warm-up of 500 steps is longer than the run (300 steps); shorten the warm-up or train longer.";

        Schedules.LinearWarmup(500).Validate(300).Should().Equal(expected);
        Schedules.LinearWarmup(500).ThenCosine().Validate(300).Should().Equal(expected);
        Schedules.LinearWarmup(500).Then(Schedules.Constant(), steps: 10).ThenLinear().Validate(300).Should().Equal(expected);
    }

    [Fact]
    public void Validate_WarmupFitsOrRunLengthUnknown_NoProblems()
    {
        Schedules.LinearWarmup(300).ThenCosine().Validate(300).Should().BeEmpty();
        Schedules.LinearWarmup(500).ThenCosine().Validate(null).Should().BeEmpty();
        Schedules.LinearWarmup(1.0).Validate(7).Should().BeEmpty();
        Schedules.Constant().Validate(1).Should().BeEmpty();
    }

    [Fact]
    public void Validate_MiddlePhasePastTheEnd_NamesThePhase()
    {
        var schedule = Schedules.LinearWarmup(100).Then(Schedules.Constant(), steps: 500).ThenCosine();

        schedule.Validate(300).Should().Equal(
            "Phase 2 (constant, 500 steps) ends after step 600, past the end of the run (300 steps); shorten the phases before the last one, give them as fractions of the run, or train longer.");
    }

    [Fact]
    public void Validate_FixedPhasesShortOfTheRun_AsksForAnOpenEndedPhase()
    {
        var schedule = Schedules.Sequence(Schedules.Constant(), fraction: 0.3).Then(Schedules.Cosine(), fraction: 0.6);

        schedule.Validate(1000).Should().Equal(
            "The schedule's phases cover 900 of the run's 1000 steps; end the chain with an open-ended phase (Then(next) without a length, ThenCosine(), ThenLinear() or ThenConstant()) so the last 100 steps follow a plan.");
    }

    [Fact]
    public void Validate_OneCycleTooShort_ReportedWithItsPhase()
    {
        Schedules.OneCycle().Validate(3).Should().ContainSingle().Which.Should().StartWith("One-cycle over 3 steps with pctStart 0.3 has no rising phase");
        Schedules.OneCycle().Validate(100).Should().BeEmpty();

        // After a warm-up of 98 of 101 steps, the one-cycle phase has only 3 steps.
        Schedules.LinearWarmup(98).Then(Schedules.OneCycle()).Validate(101)
            .Should().ContainSingle().Which.Should().StartWith("Phase 2 (one-cycle (peak 1 at 30%), rest of the run): One-cycle over 3 steps");
    }

    public static TheoryData<string, Action, object> InvalidArguments() => new()
    {
        { "steps", () => Schedules.LinearWarmup(-1), -1 },
        { "fraction", () => Schedules.LinearWarmup(1.5), 1.5 },
        { "startFactor", () => Schedules.LinearWarmup(10, startFactor: 1.0), 1.0 },
        { "endFactor", () => Schedules.LinearDecay(-0.1), -0.1 },
        { "minFactor", () => Schedules.Cosine(2.0), 2.0 },
        { "minFactor", () => Schedules.Cosine(double.NaN), double.NaN },
        { "cycles", () => Schedules.CosineWithHardRestarts(0), 0 },
        { "gamma", () => Schedules.Exponential(1.5), 1.5 },
        { "gamma", () => Schedules.StepDecay(10, 0.0), 0.0 },
        { "stepSize", () => Schedules.StepDecay(0, 0.1), 0 },
        { "power", () => Schedules.Polynomial(power: 0.0), 0.0 },
        { "endFactor", () => Schedules.Polynomial(endFactor: 1.0), 1.0 },
        { "pctStart", () => Schedules.OneCycle(pctStart: 1.0), 1.0 },
        { "divFactor", () => Schedules.OneCycle(divFactor: 0.0), 0.0 },
        { "maxFactor", () => Schedules.OneCycle(maxFactor: double.PositiveInfinity), double.PositiveInfinity },
        { "steps", () => Schedules.Sequence(Schedules.Constant(), steps: 0), 0 },
        { "fraction", () => Schedules.Sequence(Schedules.Constant(), fraction: 0.0), 0.0 },
        { "steps", () => Schedules.LinearWarmup(10).Then(Schedules.Constant(), steps: -5), -5 },
        { "fraction", () => Schedules.LinearWarmup(10).Then(Schedules.Constant(), fraction: 1.2), 1.2 },
        { "factor", () => Schedules.ReduceOnPlateau(factor: 1.0), 1.0 },
        { "patience", () => Schedules.ReduceOnPlateau(patience: -1), -1 },
        { "threshold", () => Schedules.ReduceOnPlateau(threshold: -1e-4), -1e-4 },
        { "cooldown", () => Schedules.ReduceOnPlateau(cooldown: -2), -2 },
        { "minFactor", () => Schedules.ReduceOnPlateau(minFactor: 1.5), 1.5 },
    };

    [Theory]
    [MemberData(nameof(InvalidArguments))]
    public void Factory_ArgumentOutOfRange_NamesParameterValueAndFix(string parameter, Action create, object value)
    {
        // The exception carries the value (ArgumentOutOfRangeException prints it as "Actual value was …") and the
        // message says which range to pass.
        var thrown = create.Should().Throw<ArgumentOutOfRangeException>().WithParameterName(parameter).Which;
        thrown.ActualValue.Should().Be(value);
        thrown.Message.Should().MatchRegex(@"must be|must last|needs").And.Contain("Actual value was");
    }

    [Fact]
    public void ReduceOnPlateau_EmptyMetric_ThrowsArgumentException()
    {
        Action act = () => Schedules.ReduceOnPlateau(metric: " ");

        act.Should().Throw<ArgumentException>().WithParameterName("metric").WithMessage("*validation.loss*");
    }

    [Fact]
    public void Sample_NegativeLength_ThrowsArgumentOutOfRange()
    {
        Action act = () => Schedules.Constant().Sample(-1);

        act.Should().Throw<ArgumentOutOfRangeException>().WithParameterName("totalSteps");
    }
}
