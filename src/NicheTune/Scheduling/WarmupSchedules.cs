using System.Globalization;

namespace NicheTune.Scheduling;

/// <summary>
/// A linear warm-up: the multiplier rises from a start factor to 1 over the first steps, then stays at 1 unless you
/// chain a decay with <see cref="ThenCosine"/>, <see cref="ThenLinear"/> or <see cref="Then(ILearningRateSchedule)"/>.
/// Warm-up keeps the first updates small while the optimizer's moment estimates are still noisy, which is what keeps a
/// pretrained model from being knocked off its weights in the first steps of fine-tuning.
/// </summary>
/// <remarks>
/// During the warm-up of <c>w</c> steps the multiplier is <c>s + (1 − s) · t / w</c> for start factor <c>s</c>: with
/// <c>s = 0</c> this is the warm-up of Hugging Face's <c>get_*_schedule_with_warmup</c>, otherwise torch's
/// <c>LinearLR(start_factor=s, end_factor=1, total_iters=w)</c>. Create one with <see cref="Schedules.LinearWarmup(int, double)"/>
/// or <see cref="Schedules.LinearWarmup(double, double)"/>. Instances are immutable.
/// </remarks>
public sealed class WarmupSchedule : ILearningRateSchedule
{
    private readonly LinearRampSchedule _ramp;

    internal WarmupSchedule(int? steps, double? fraction, double startFactor)
    {
        Steps = steps;
        Fraction = fraction;
        StartFactor = startFactor;
        _ramp = new LinearRampSchedule(startFactor);
    }

    /// <summary>Gets the warm-up's length in steps when it was given as a step count.</summary>
    /// <value>The step count, or <see langword="null"/> when the warm-up is a <see cref="Fraction"/> of the run.</value>
    public int? Steps { get; }

    /// <summary>Gets the warm-up's length as a fraction of the run when it was given that way.</summary>
    /// <value>The fraction in [0, 1], or <see langword="null"/> when the warm-up is a number of <see cref="Steps"/>.</value>
    public double? Fraction { get; }

    /// <summary>Gets the multiplier of the first step.</summary>
    /// <value>In [0, 1); 0 (Hugging Face's warm-up) unless set.</value>
    public double StartFactor { get; }

    /// <summary>The number of warm-up steps in a run of <paramref name="totalSteps"/> steps.</summary>
    /// <param name="totalSteps">The planned number of optimizer steps.</param>
    /// <returns><see cref="Steps"/>, or <c>⌈<see cref="Fraction"/> · totalSteps⌉</c> (Hugging Face's rounding of <c>warmup_ratio</c>).</returns>
    public long StepsFor(long totalSteps) => Steps ?? StepCount.OfFraction(Fraction!.Value, totalSteps);

    /// <inheritdoc/>
    public double Multiplier(long step, long totalSteps)
    {
        long warmup = Steps ?? StepCount.OfFraction(Fraction!.Value, totalSteps);
        return _ramp.Multiplier(step, warmup);
    }

    /// <inheritdoc/>
    public IEnumerable<string> Validate(long? totalSteps)
    {
        if (totalSteps is { } total && StepsFor(total) > total)
        {
            return [WarmupTooLong(StepsFor(total), total)];
        }

        return [];
    }

    /// <summary>Decays along a half cosine over the steps after the warm-up: the usual choice for fine-tuning transformers.</summary>
    /// <param name="minFactor">The multiplier reached at the end of the run, in [0, 1]; 0 by default, 0.1 keeps some learning to the end.</param>
    /// <returns>A sequence of warm-up then cosine decay, equal to Hugging Face's <c>get_cosine_schedule_with_warmup</c> (with <paramref name="minFactor"/>: <c>get_cosine_with_min_lr_schedule_with_warmup</c>).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="minFactor"/> is outside [0, 1].</exception>
    public ScheduleSequence ThenCosine(double minFactor = 0.0) => Then(Schedules.Cosine(minFactor));

    /// <summary>Decays linearly over the steps after the warm-up: the Hugging Face Trainer's default schedule.</summary>
    /// <param name="endFactor">The multiplier reached at the end of the run, in [0, 1]; 0 by default.</param>
    /// <returns>A sequence of warm-up then linear decay, equal to Hugging Face's <c>get_linear_schedule_with_warmup</c> when <paramref name="endFactor"/> is 0.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="endFactor"/> is outside [0, 1].</exception>
    public ScheduleSequence ThenLinear(double endFactor = 0.0) => Then(Schedules.LinearDecay(endFactor));

    /// <summary>Holds the base rate after the warm-up, as the warm-up alone does, but as a sequence you can keep extending.</summary>
    /// <returns>A sequence of warm-up then constant, equal to Hugging Face's <c>get_constant_schedule_with_warmup</c>.</returns>
    public ScheduleSequence ThenConstant() => Then(Schedules.Constant());

    /// <summary>Follows the warm-up with <paramref name="next"/> for the rest of the run.</summary>
    /// <param name="next">Any schedule, yours included; it sees step 0 at the first step after the warm-up and the steps that remain as its length.</param>
    /// <returns>A sequence of the two phases; it is metric-driven (<see cref="IMetricDrivenSchedule"/>) when <paramref name="next"/> is.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="next"/> is <see langword="null"/>.</exception>
    public ScheduleSequence Then(ILearningRateSchedule next) => ScheduleSequence.Create([AsPhase(), Phase.Rest(next)]);

    /// <summary>Follows the warm-up with <paramref name="next"/> for <paramref name="steps"/> steps; chain further phases after it.</summary>
    /// <param name="next">Any schedule; it sees its local step and <paramref name="steps"/> as its length.</param>
    /// <param name="steps">The phase's length, at least 1.</param>
    /// <returns>A sequence of the two phases, to be extended with an open-ended last phase.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="next"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="steps"/> is less than 1.</exception>
    public ScheduleSequence Then(ILearningRateSchedule next, int steps) => ScheduleSequence.Create([AsPhase(), Phase.OfSteps(next, steps)]);

    /// <summary>Follows the warm-up with <paramref name="next"/> for a fraction of the run; chain further phases after it.</summary>
    /// <param name="next">Any schedule; it sees its local step and its resolved length.</param>
    /// <param name="fraction">The phase's share of the whole run, in (0, 1].</param>
    /// <returns>A sequence of the two phases, to be extended with an open-ended last phase.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="next"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="fraction"/> is outside (0, 1].</exception>
    public ScheduleSequence Then(ILearningRateSchedule next, double fraction) => ScheduleSequence.Create([AsPhase(), Phase.OfFraction(next, fraction)]);

    /// <summary>Describes the warm-up, for logs and messages.</summary>
    /// <returns>For example <c>linear warm-up over 200 steps from 0</c>.</returns>
    public override string ToString() => Steps is { } steps
        ? string.Create(CultureInfo.InvariantCulture, $"linear warm-up over {steps} steps from {StartFactor}")
        : string.Create(CultureInfo.InvariantCulture, $"linear warm-up over {Fraction:0.###%} of the run from {StartFactor}");

    internal static string WarmupTooLong(long warmup, long total) => string.Create(
        CultureInfo.InvariantCulture,
        $"Warm-up of {warmup} steps is longer than the run ({total} steps); shorten the warm-up or train longer.");

    private Phase AsPhase() => Steps is { } steps ? Phase.OfSteps(_ramp, steps, isWarmup: true) : Phase.OfFraction(_ramp, Fraction!.Value, isWarmup: true);
}

// The warm-up's rise over a phase of w steps (HF: t / max(1, w); torch LinearLR: s + (1 − s) · min(t, w) / w), then 1.
internal sealed class LinearRampSchedule(double startFactor) : ILearningRateSchedule
{
    public double Multiplier(long step, long totalSteps)
        => step >= totalSteps ? 1.0 : startFactor + ((1.0 - startFactor) * step / Math.Max(1L, totalSteps));

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"linear warm-up from {startFactor}");
}

internal static class StepCount
{
    // Hugging Face resolves warmup_ratio as ceil(ratio · total). A product within 1e-9 (relative) of an integer is
    // taken as that integer, so floating-point noise (0.07 · 100 = 7.000000000000001) does not add a step.
    public static long OfFraction(double fraction, long totalSteps)
    {
        double exact = fraction * totalSteps;
        double nearest = Math.Round(exact);
        return (long)(Math.Abs(exact - nearest) <= 1e-9 * Math.Max(1.0, Math.Abs(exact)) ? nearest : Math.Ceiling(exact));
    }
}
