using System.Globalization;

namespace NicheTune.Scheduling;

/// <summary>
/// Schedules played one after another: each phase lasts a number of steps, a fraction of the run, or (the last one)
/// the rest of the run, and sees its own local step (0 at its first step) and its own length as <c>totalSteps</c>.
/// Compose when one curve does not fit the run, e.g. warm-up → hold → cosine, as fastai's <c>combine_scheds</c> does.
/// </summary>
/// <remarks>
/// <para>
/// Fixed phases end at (the sum of their step counts) + ⌈(the sum of their fractions) · totalSteps⌉: fractions add up
/// before rounding, so phases of 0.3 and 0.7 cover the run exactly. Any class implementing
/// <see cref="ILearningRateSchedule"/> can be a phase, built-in or yours.
/// </para>
/// <para>
/// When one phase is an <see cref="IMetricDrivenSchedule"/> (such as <see cref="Schedules.ReduceOnPlateau"/>) the
/// sequence is one too: it forwards <see cref="IMetricDrivenSchedule.Observe"/> to that phase for evaluations made
/// once the phase has begun (a warm-up's rising loss does not count against its patience), and its state.
/// Instances are otherwise immutable; each <c>Then</c> returns a new sequence.
/// </para>
/// </remarks>
public class ScheduleSequence : ILearningRateSchedule
{
    private readonly Phase[] _phases;

    private protected ScheduleSequence(Phase[] phases)
    {
        _phases = phases;
    }

    /// <summary>Gets the number of phases.</summary>
    /// <value>At least 1.</value>
    public int PhaseCount => _phases.Length;

    /// <summary>Gets whether the last phase runs to the end of the run, so that nothing more can be chained.</summary>
    /// <value><see langword="true"/> after <see cref="Then(ILearningRateSchedule)"/>, <see cref="ThenCosine"/>, <see cref="ThenLinear"/> or <see cref="ThenConstant"/>.</value>
    public bool IsOpenEnded => _phases[^1].Kind == PhaseKind.Rest;

    /// <inheritdoc/>
    public double Multiplier(long step, long totalSteps)
    {
        Phase[] phases = _phases;
        long start = 0;
        long stepSum = 0;
        double fractionSum = 0.0;
        for (int i = 0; ; i++)
        {
            long end = phases[i].End(start, totalSteps, ref stepSum, ref fractionSum);
            if (step < end || i == phases.Length - 1)
            {
                return phases[i].Schedule.Multiplier(step - start, end - start);
            }

            start = end;
        }
    }

    /// <inheritdoc/>
    public IEnumerable<string> Validate(long? totalSteps)
    {
        List<string> problems = [];
        long start = 0;
        long stepSum = 0;
        double fractionSum = 0.0;
        bool overflowReported = false;
        for (int i = 0; i < _phases.Length; i++)
        {
            Phase phase = _phases[i];
            long? length = null;
            if (totalSteps is { } total)
            {
                long end = phase.End(start, total, ref stepSum, ref fractionSum);
                length = end - start;
                if (!overflowReported && phase.Kind != PhaseKind.Rest && end > total)
                {
                    overflowReported = true;
                    problems.Add(phase.IsWarmup && i == 0
                        ? WarmupSchedule.WarmupTooLong(end, total)
                        : string.Create(CultureInfo.InvariantCulture, $"{Describe(i)} ends after step {end}, past the end of the run ({total} steps); shorten the phases before the last one, give them as fractions of the run, or train longer."));
                }

                if (i == _phases.Length - 1 && phase.Kind != PhaseKind.Rest && end < total)
                {
                    problems.Add(string.Create(CultureInfo.InvariantCulture, $"The schedule's phases cover {end} of the run's {total} steps; end the chain with an open-ended phase (Then(next) without a length, ThenCosine(), ThenLinear() or ThenConstant()) so the last {total - end} steps follow a plan."));
                }

                start = Math.Max(start, end);
            }
            else if (phase.Kind == PhaseKind.Steps)
            {
                length = phase.Steps;
            }

            foreach (string problem in phase.Schedule.Validate(length))
            {
                problems.Add($"{Describe(i)}: {problem}");
            }
        }

        return problems;
    }

    /// <summary>Adds <paramref name="next"/> as the last phase, running to the end of the run.</summary>
    /// <param name="next">Any schedule, yours included; it sees step 0 at its first step and the steps that remain as its length.</param>
    /// <returns>A new sequence; it is metric-driven (<see cref="IMetricDrivenSchedule"/>) when any phase is.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="next"/> is <see langword="null"/>.</exception>
    /// <exception cref="InvalidOperationException">The last phase already runs to the end (<see cref="IsOpenEnded"/>).</exception>
    /// <exception cref="ArgumentException">This would make a second metric-driven phase.</exception>
    public ScheduleSequence Then(ILearningRateSchedule next) => Append(Phase.Rest(next));

    /// <summary>Adds <paramref name="next"/> as a phase of <paramref name="steps"/> steps; chain further phases after it.</summary>
    /// <param name="next">Any schedule; it sees its local step and <paramref name="steps"/> as its length.</param>
    /// <param name="steps">The phase's length, at least 1.</param>
    /// <returns>A new sequence.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="next"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="steps"/> is less than 1.</exception>
    /// <exception cref="InvalidOperationException">The last phase already runs to the end (<see cref="IsOpenEnded"/>).</exception>
    /// <exception cref="ArgumentException">This would make a second metric-driven phase.</exception>
    public ScheduleSequence Then(ILearningRateSchedule next, int steps) => Append(Phase.OfSteps(next, steps));

    /// <summary>Adds <paramref name="next"/> as a phase lasting a fraction of the run; chain further phases after it.</summary>
    /// <param name="next">Any schedule; it sees its local step and its resolved length.</param>
    /// <param name="fraction">The phase's share of the whole run, in (0, 1].</param>
    /// <returns>A new sequence.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="next"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="fraction"/> is outside (0, 1].</exception>
    /// <exception cref="InvalidOperationException">The last phase already runs to the end (<see cref="IsOpenEnded"/>).</exception>
    /// <exception cref="ArgumentException">This would make a second metric-driven phase.</exception>
    public ScheduleSequence Then(ILearningRateSchedule next, double fraction) => Append(Phase.OfFraction(next, fraction));

    /// <summary>Ends the sequence with a half-cosine decay over the rest of the run.</summary>
    /// <param name="minFactor">The multiplier reached at the end of the run, in [0, 1]; 0 by default.</param>
    /// <returns>A new, open-ended sequence.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="minFactor"/> is outside [0, 1].</exception>
    /// <exception cref="InvalidOperationException">The last phase already runs to the end (<see cref="IsOpenEnded"/>).</exception>
    public ScheduleSequence ThenCosine(double minFactor = 0.0) => Then(Schedules.Cosine(minFactor));

    /// <summary>Ends the sequence with a linear decay over the rest of the run.</summary>
    /// <param name="endFactor">The multiplier reached at the end of the run, in [0, 1]; 0 by default.</param>
    /// <returns>A new, open-ended sequence.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="endFactor"/> is outside [0, 1].</exception>
    /// <exception cref="InvalidOperationException">The last phase already runs to the end (<see cref="IsOpenEnded"/>).</exception>
    public ScheduleSequence ThenLinear(double endFactor = 0.0) => Then(Schedules.LinearDecay(endFactor));

    /// <summary>Ends the sequence holding the base rate for the rest of the run.</summary>
    /// <returns>A new, open-ended sequence.</returns>
    /// <exception cref="InvalidOperationException">The last phase already runs to the end (<see cref="IsOpenEnded"/>).</exception>
    public ScheduleSequence ThenConstant() => Then(Schedules.Constant());

    /// <summary>Describes the phases, for logs and messages.</summary>
    /// <returns>For example <c>linear warm-up from 0 (200 steps) → cosine decay to 0.1 (rest of the run)</c>.</returns>
    public override string ToString()
    {
        var parts = new string[_phases.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            parts[i] = $"{_phases[i].Schedule} ({_phases[i].LengthText})";
        }

        return string.Join(" → ", parts);
    }

    internal static ScheduleSequence Create(Phase[] phases)
    {
        int metricPhase = -1;
        for (int i = 0; i < phases.Length; i++)
        {
            if (phases[i].Schedule is IMetricDrivenSchedule)
            {
                if (metricPhase >= 0)
                {
                    throw new ArgumentException(
                        $"Phase {i + 1} ({phases[i].Schedule}) is metric-driven, but phase {metricPhase + 1} ({phases[metricPhase].Schedule}) already is; a sequence forwards evaluations to one metric-driven phase only. Keep one of them.",
                        "next");
                }

                metricPhase = i;
            }
        }

        return metricPhase < 0 ? new ScheduleSequence(phases) : new MetricDrivenScheduleSequence(phases, metricPhase);
    }

    // Start and end (exclusive) of phase `index` in a run of `totalSteps` steps.
    private protected void Bounds(int index, long totalSteps, out long start, out long end)
    {
        start = 0;
        end = 0;
        long stepSum = 0;
        double fractionSum = 0.0;
        for (int i = 0; i <= index; i++)
        {
            start = end;
            end = _phases[i].End(start, totalSteps, ref stepSum, ref fractionSum);
        }
    }

    private protected bool IsLast(int index) => index == _phases.Length - 1;

    private string Describe(int index) => $"Phase {index + 1} ({_phases[index].Schedule}, {_phases[index].LengthText})";

    private ScheduleSequence Append(Phase phase)
    {
        if (IsOpenEnded)
        {
            throw new InvalidOperationException(
                $"The last phase ({_phases[^1].Schedule}) already runs to the end of the run, so '{phase.Schedule}' cannot follow it; give that phase a length with Then(next, steps) or Then(next, fraction) and end the chain with the open-ended phase.");
        }

        var phases = new Phase[_phases.Length + 1];
        _phases.CopyTo(phases, 0);
        phases[^1] = phase;
        return Create(phases);
    }
}

internal sealed class MetricDrivenScheduleSequence : ScheduleSequence, IMetricDrivenSchedule
{
    private readonly int _index;
    private readonly IMetricDrivenSchedule _part;

    internal MetricDrivenScheduleSequence(Phase[] phases, int index)
        : base(phases)
    {
        _index = index;
        _part = (IMetricDrivenSchedule)phases[index].Schedule;
    }

    public string Metric => _part.Metric;

    public void Observe(long step, long totalSteps, double value)
    {
        Bounds(_index, totalSteps, out long start, out long end);
        if (step >= start && (step < end || IsLast(_index)))
        {
            _part.Observe(step - start, end - start, value);
        }
    }

    public string SaveState() => _part.SaveState();

    public void LoadState(string state) => _part.LoadState(state);

    public void Reset() => _part.Reset();
}

internal enum PhaseKind
{
    Steps,
    Fraction,
    Rest,
}

internal readonly struct Phase
{
    private Phase(ILearningRateSchedule schedule, PhaseKind kind, int steps, double fraction, bool isWarmup)
    {
        Schedule = schedule;
        Kind = kind;
        Steps = steps;
        Fraction = fraction;
        IsWarmup = isWarmup;
    }

    public ILearningRateSchedule Schedule { get; }

    public PhaseKind Kind { get; }

    public int Steps { get; }

    public double Fraction { get; }

    public bool IsWarmup { get; }

    public string LengthText => Kind switch
    {
        PhaseKind.Steps => string.Create(CultureInfo.InvariantCulture, $"{Steps} steps"),
        PhaseKind.Fraction => string.Create(CultureInfo.InvariantCulture, $"{Fraction:0.###%} of the run"),
        _ => "rest of the run",
    };

    public static Phase Rest(ILearningRateSchedule schedule)
        => new(schedule ?? throw new ArgumentNullException("next", "Pass the schedule to follow, e.g. Schedules.Cosine()."), PhaseKind.Rest, 0, 0.0, false);

    public static Phase OfSteps(ILearningRateSchedule schedule, int steps, bool isWarmup = false)
    {
        ArgumentNullException.ThrowIfNull(schedule, "next");
        if (steps < (isWarmup ? 0 : 1))
        {
            throw new ArgumentOutOfRangeException(nameof(steps), steps, $"A phase must last at least {(isWarmup ? 0 : 1)} step(s); pass a positive step count, or a fraction of the run as a double (e.g. 0.1).");
        }

        return new(schedule, PhaseKind.Steps, steps, 0.0, isWarmup);
    }

    public static Phase OfFraction(ILearningRateSchedule schedule, double fraction, bool isWarmup = false)
    {
        ArgumentNullException.ThrowIfNull(schedule, "next");
        if (!((isWarmup ? fraction >= 0.0 : fraction > 0.0) && fraction <= 1.0))
        {
            throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "A phase's fraction of the run must be in (0, 1]; pass e.g. 0.1 for a tenth of the run, or an int for a number of steps.");
        }

        return new(schedule, PhaseKind.Fraction, 0, fraction, isWarmup);
    }

    // The exclusive end of this phase, which starts at `start`; accumulates the fixed lengths seen so far.
    public long End(long start, long totalSteps, ref long stepSum, ref double fractionSum)
    {
        switch (Kind)
        {
            case PhaseKind.Steps:
                stepSum += Steps;
                break;
            case PhaseKind.Fraction:
                fractionSum += Fraction;
                break;
            default:
                return Math.Max(start, totalSteps);
        }

        return Math.Max(start, stepSum + (fractionSum == 0.0 ? 0L : StepCount.OfFraction(fractionSum, totalSteps)));
    }
}
