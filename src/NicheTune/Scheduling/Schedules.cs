using System.Globalization;
using NicheTune.Training;

namespace NicheTune.Scheduling;

/// <summary>
/// Factories for the built-in learning-rate schedules, named as practitioners say them
/// (<c>Schedules.LinearWarmup(200).ThenCosine(minFactor: 0.1)</c>). Each built-in equals the closed form of its
/// PyTorch or Hugging Face counterpart, is immutable and never allocates in <see cref="ILearningRateSchedule.Multiplier"/>.
/// </summary>
public static class Schedules
{
    /// <summary>The base rate throughout: multiplier 1 at every step. Choose it for short runs, or when the optimizer adapts the step size well enough on its own.</summary>
    /// <returns>The schedule (Hugging Face's <c>get_constant_schedule</c>).</returns>
    public static ILearningRateSchedule Constant() => ConstantSchedule.Instance;

    /// <summary>
    /// A linear warm-up over <paramref name="steps"/> steps, then the base rate; chain a decay with
    /// <see cref="WarmupSchedule.ThenCosine"/> or <see cref="WarmupSchedule.ThenLinear"/>. Warm-up keeps the first,
    /// noisiest updates from wrecking pretrained weights (and Adam's early, poorly estimated steps from being too large).
    /// </summary>
    /// <param name="steps">Warm-up steps, 0 or more; a few hundred, or 5–10 % of the run, is usual.</param>
    /// <param name="startFactor">The multiplier of step 0, in [0, 1); 0 as in Hugging Face, 1/3 as torch's <c>LinearLR</c> default.</param>
    /// <returns>The warm-up: <c>startFactor + (1 − startFactor) · t / steps</c> for <c>t &lt; steps</c>, then 1 (Hugging Face's <c>get_constant_schedule_with_warmup</c>).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="steps"/> is negative, or <paramref name="startFactor"/> is outside [0, 1).</exception>
    public static WarmupSchedule LinearWarmup(int steps, double startFactor = 0.0)
    {
        if (steps < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(steps), steps, "Warm-up steps must be 0 or more; pass 0 for no warm-up.");
        }

        CheckStartFactor(startFactor);
        return new WarmupSchedule(steps, null, startFactor);
    }

    /// <summary>
    /// A linear warm-up over a fraction of the run (Hugging Face's <c>warmup_ratio</c>), then the base rate; choose it
    /// over a step count when the run's length is not fixed yet (it depends on the data or the number of epochs).
    /// </summary>
    /// <param name="fraction">The warm-up's share of the run, in [0, 1]; 0.06–0.1 is usual. It resolves to <c>⌈fraction · totalSteps⌉</c> steps.</param>
    /// <param name="startFactor">The multiplier of step 0, in [0, 1).</param>
    /// <returns>The warm-up.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="fraction"/> is outside [0, 1], or <paramref name="startFactor"/> is outside [0, 1).</exception>
    public static WarmupSchedule LinearWarmup(double fraction, double startFactor = 0.0)
    {
        if (!(fraction >= 0.0 && fraction <= 1.0))
        {
            throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "The warm-up fraction of the run must be in [0, 1] (e.g. 0.1 for a tenth); for a number of steps pass an int, e.g. LinearWarmup(200).");
        }

        CheckStartFactor(startFactor);
        return new WarmupSchedule(null, fraction, startFactor);
    }

    /// <summary>Decays linearly from 1 to <paramref name="endFactor"/> over the run (or the phase): simple, and the Hugging Face Trainer's default after warm-up.</summary>
    /// <param name="endFactor">The multiplier at the end, in [0, 1]; 0 by default.</param>
    /// <returns>The schedule: <c>e + (1 − e) · max(0, (T − t) / max(1, T))</c> (torch's <c>LinearLR(1, e, T)</c>).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="endFactor"/> is outside [0, 1].</exception>
    public static ILearningRateSchedule LinearDecay(double endFactor = 0.0)
    {
        CheckUnit(endFactor, nameof(endFactor), "the multiplier reached at the end of the decay");
        return new LinearDecaySchedule(endFactor);
    }

    /// <summary>
    /// Decays along a half cosine from 1 to <paramref name="minFactor"/> over the run (or the phase). It stays near the
    /// peak longer than a linear decay and lands softly, which is why it is the common choice for transformers.
    /// </summary>
    /// <param name="minFactor">The floor reached at the end, in [0, 1]; 0 by default.</param>
    /// <returns>The schedule: <c>m + (1 − m) · ½ · (1 + cos(π · t / max(1, T)))</c> (torch's <c>CosineAnnealingLR</c>; after a warm-up, Hugging Face's <c>get_cosine_schedule_with_warmup</c>).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="minFactor"/> is outside [0, 1].</exception>
    public static ILearningRateSchedule Cosine(double minFactor = 0.0)
    {
        CheckUnit(minFactor, nameof(minFactor), "the floor of the cosine");
        return new CosineSchedule(minFactor);
    }

    /// <summary>
    /// Repeats a cosine decay <paramref name="cycles"/> times, jumping back to 1 at each restart (SGDR without growing
    /// cycles). The restarts can shake the model out of a poor basin on long runs.
    /// </summary>
    /// <param name="cycles">The number of decays, at least 1.</param>
    /// <param name="minFactor">The floor of every cycle, in [0, 1]; 0 by default.</param>
    /// <returns>The schedule: <c>m + (1 − m) · ½ · (1 + cos(π · ((c · p) mod 1)))</c> with <c>p = t / max(1, T)</c>, <c>m</c> once <c>p ≥ 1</c> (Hugging Face's <c>get_cosine_with_hard_restarts_schedule_with_warmup</c>).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="cycles"/> is less than 1, or <paramref name="minFactor"/> is outside [0, 1].</exception>
    public static ILearningRateSchedule CosineWithHardRestarts(int cycles, double minFactor = 0.0)
    {
        if (cycles < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(cycles), cycles, "Cosine with hard restarts needs at least 1 cycle; pass 1 for a single cosine decay.");
        }

        CheckUnit(minFactor, nameof(minFactor), "the floor of each cycle");
        return new CosineWithHardRestartsSchedule(cycles, minFactor);
    }

    /// <summary>
    /// Multiplies the rate by <paramref name="gamma"/> after every optimizer step. Its decay does not depend on the
    /// run's length, which suits open-ended training; pick gamma from a half-life h as <c>0.5^(1/h)</c>.
    /// </summary>
    /// <param name="gamma">The factor per step, in (0, 1]; e.g. 0.999 halves the rate about every 693 steps.</param>
    /// <returns>The schedule: <c>γ^t</c> (torch's <c>ExponentialLR</c>, stepped per optimizer step).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="gamma"/> is outside (0, 1].</exception>
    public static ILearningRateSchedule Exponential(double gamma)
    {
        CheckGamma(gamma);
        return new ExponentialSchedule(gamma);
    }

    /// <summary>
    /// Decays as <c>(1 − t/T)^power</c> from 1 to <paramref name="endFactor"/>: power 1 is linear, larger powers
    /// drop faster early, smaller ones hold the rate longer (used by BERT-style pre-training recipes).
    /// </summary>
    /// <param name="power">The exponent, positive; 1 by default.</param>
    /// <param name="endFactor">The multiplier at the end, in [0, 1); 0 by default (Hugging Face's <c>lr_end</c> / base rate).</param>
    /// <returns>The schedule: <c>(1 − e) · (1 − t / T)^k + e</c>, <c>e</c> after the end (Hugging Face's <c>get_polynomial_decay_schedule_with_warmup</c>, torch's <c>PolynomialLR</c> when e = 0).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="power"/> is not positive and finite, or <paramref name="endFactor"/> is outside [0, 1).</exception>
    public static ILearningRateSchedule Polynomial(double power = 1.0, double endFactor = 0.0)
    {
        if (!(power > 0.0 && double.IsFinite(power)))
        {
            throw new ArgumentOutOfRangeException(nameof(power), power, "The polynomial power must be positive and finite; 1 is a linear decay, 2 a quadratic one.");
        }

        if (!(endFactor >= 0.0 && endFactor < 1.0))
        {
            throw new ArgumentOutOfRangeException(nameof(endFactor), endFactor, "The polynomial end factor must be in [0, 1): it is the multiplier reached at the end, below the starting 1.");
        }

        return new PolynomialSchedule(power, endFactor);
    }

    /// <summary>
    /// Multiplies the rate by <paramref name="gamma"/> every <paramref name="stepSize"/> steps: the classic staircase
    /// of vision training, handy when you want to reproduce a paper's recipe exactly.
    /// </summary>
    /// <param name="stepSize">Steps between drops, at least 1.</param>
    /// <param name="gamma">The factor of each drop, in (0, 1]; 0.1 is usual.</param>
    /// <returns>The schedule: <c>γ^⌊t / stepSize⌋</c> (torch's <c>StepLR</c>, stepped per optimizer step).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="stepSize"/> is less than 1, or <paramref name="gamma"/> is outside (0, 1].</exception>
    public static ILearningRateSchedule StepDecay(int stepSize, double gamma)
    {
        if (stepSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(stepSize), stepSize, "The step size (steps between drops) must be at least 1.");
        }

        CheckGamma(gamma);
        return new StepDecaySchedule(stepSize, gamma);
    }

    /// <summary>
    /// Leslie Smith's one-cycle policy: rises from <c>maxFactor / divFactor</c> to <paramref name="maxFactor"/> over
    /// the first <paramref name="pctStart"/> of the run, then anneals to <c>maxFactor / (divFactor · finalDivFactor)</c>.
    /// It trains fast with a high peak rate and is fastai's <c>fit_one_cycle</c>; the multiplier is of the base rate, so
    /// set the base rate to the peak you want and leave <paramref name="maxFactor"/> at 1.
    /// </summary>
    /// <param name="maxFactor">The peak multiplier, positive; 1 by default.</param>
    /// <param name="pctStart">The share of the run spent rising, in (0, 1); 0.3 by default.</param>
    /// <param name="divFactor">The start is the peak divided by this, positive; 25 by default.</param>
    /// <param name="finalDivFactor">The end is the start divided by this, positive; 1e4 by default.</param>
    /// <param name="cosineAnneal"><see langword="true"/> (default) for cosine ramps, <see langword="false"/> for linear ones.</param>
    /// <returns>The schedule, equal to torch's <c>OneCycleLR(max_lr = maxFactor · base, total_steps = T, three_phase = False)</c> divided by the base rate.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A factor is not positive and finite, or <paramref name="pctStart"/> is outside (0, 1).</exception>
    public static ILearningRateSchedule OneCycle(double maxFactor = 1.0, double pctStart = 0.3, double divFactor = 25.0, double finalDivFactor = 1e4, bool cosineAnneal = true)
    {
        CheckPositive(maxFactor, nameof(maxFactor), "the peak multiplier");
        if (!(pctStart > 0.0 && pctStart < 1.0))
        {
            throw new ArgumentOutOfRangeException(nameof(pctStart), pctStart, "The one-cycle pctStart (share of the run spent rising) must be in (0, 1); 0.3 is usual, 0.25 in fastai.");
        }

        CheckPositive(divFactor, nameof(divFactor), "the peak divided by the start");
        CheckPositive(finalDivFactor, nameof(finalDivFactor), "the start divided by the end");
        return new OneCycleSchedule(maxFactor, pctStart, divFactor, finalDivFactor, cosineAnneal);
    }

    /// <summary>
    /// Starts a sequence with <paramref name="first"/> for <paramref name="steps"/> steps; chain the next phases with
    /// <see cref="ScheduleSequence.Then(ILearningRateSchedule)"/> and its overloads. Use it for a composition that does not
    /// begin with a warm-up (a warm-up chains directly: <c>Schedules.LinearWarmup(200).Then(…)</c>).
    /// </summary>
    /// <param name="first">The first phase's schedule; it sees its local step and <paramref name="steps"/> as its length.</param>
    /// <param name="steps">The first phase's length, at least 1.</param>
    /// <returns>A one-phase sequence to extend.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="first"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="steps"/> is less than 1.</exception>
    public static ScheduleSequence Sequence(ILearningRateSchedule first, int steps)
    {
        ArgumentNullException.ThrowIfNull(first);
        return ScheduleSequence.Create([Phase.OfSteps(first, steps)]);
    }

    /// <summary>Starts a sequence with <paramref name="first"/> for a fraction of the run; chain the next phases with <see cref="ScheduleSequence.Then(ILearningRateSchedule)"/> and its overloads.</summary>
    /// <param name="first">The first phase's schedule; it sees its local step and its resolved length.</param>
    /// <param name="fraction">The first phase's share of the run, in (0, 1].</param>
    /// <returns>A one-phase sequence to extend.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="first"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="fraction"/> is outside (0, 1].</exception>
    public static ScheduleSequence Sequence(ILearningRateSchedule first, double fraction)
    {
        ArgumentNullException.ThrowIfNull(first);
        return ScheduleSequence.Create([Phase.OfFraction(first, fraction)]);
    }

    /// <summary>
    /// Cuts the rate by <paramref name="factor"/> when <paramref name="metric"/> has not improved for more than
    /// <paramref name="patience"/> evaluations, as torch's <c>ReduceLROnPlateau</c> does. Choose it when you cannot
    /// tell in advance how long the model keeps improving; it needs a validation set and regular evaluations, and can
    /// follow a warm-up: <c>Schedules.LinearWarmup(100).Then(Schedules.ReduceOnPlateau())</c>.
    /// </summary>
    /// <param name="metric">The metric to follow, as the trainer names it; <c>validation.loss</c> by default.</param>
    /// <param name="factor">The factor of each cut, in (0, 1); 0.1 by default.</param>
    /// <param name="patience">Evaluations without improvement tolerated before a cut (the cut comes at the next one), 0 or more; 10 by default.</param>
    /// <param name="threshold">The least change that counts as an improvement, 0 or more; 1e-4 by default.</param>
    /// <param name="thresholdMode">Whether <paramref name="threshold"/> is relative to the best value (default) or absolute.</param>
    /// <param name="mode">Whether lower or higher is better; <see cref="MetricMode.Auto"/> (default) takes lower for names containing <c>loss</c>, <c>perplexity</c> or <c>error</c>, higher otherwise.</param>
    /// <param name="cooldown">Evaluations after a cut during which no bad evaluation is counted, 0 or more; 0 by default.</param>
    /// <param name="minFactor">The multiplier is never cut below this, in [0, 1]; 0 by default.</param>
    /// <returns>A new schedule with its own state: the multiplier starts at 1 and changes only through <see cref="IMetricDrivenSchedule.Observe"/>.</returns>
    /// <exception cref="ArgumentException"><paramref name="metric"/> is empty or white space.</exception>
    /// <exception cref="ArgumentOutOfRangeException">Another argument is outside its range.</exception>
    public static IMetricDrivenSchedule ReduceOnPlateau(
        string metric = "validation.loss",
        double factor = 0.1,
        int patience = 10,
        double threshold = 1e-4,
        ThresholdMode thresholdMode = ThresholdMode.Relative,
        MetricMode mode = MetricMode.Auto,
        int cooldown = 0,
        double minFactor = 0.0)
    {
        if (string.IsNullOrWhiteSpace(metric))
        {
            throw new ArgumentException($"The metric name is '{metric}'; pass the name the trainer reports, e.g. 'validation.loss' or 'validation.accuracy'.", nameof(metric));
        }

        if (!(factor > 0.0 && factor < 1.0))
        {
            throw new ArgumentOutOfRangeException(nameof(factor), factor, "The reduce-on-plateau factor must be in (0, 1): the rate is multiplied by it at each cut; 0.1 or 0.5 are usual.");
        }

        if (patience < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(patience), patience, "Patience counts evaluations without improvement and must be 0 or more.");
        }

        if (!(threshold >= 0.0 && double.IsFinite(threshold)))
        {
            throw new ArgumentOutOfRangeException(nameof(threshold), threshold, "The improvement threshold must be 0 or more and finite; 1e-4 (relative) is usual.");
        }

        if (!Enum.IsDefined(thresholdMode))
        {
            throw new ArgumentOutOfRangeException(nameof(thresholdMode), thresholdMode, "Pass ThresholdMode.Relative or ThresholdMode.Absolute.");
        }

        if (!Enum.IsDefined(mode))
        {
            throw new ArgumentOutOfRangeException(nameof(mode), mode, "Pass MetricMode.Auto, MetricMode.Min or MetricMode.Max.");
        }

        if (cooldown < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(cooldown), cooldown, "Cooldown counts evaluations after a cut and must be 0 or more.");
        }

        CheckUnit(minFactor, nameof(minFactor), "the lowest multiplier the cuts may reach");
        return new ReduceOnPlateauSchedule(metric, factor, patience, threshold, thresholdMode, mode, cooldown, minFactor);
    }

    /// <summary>
    /// The multiplier at every step of a run of <paramref name="totalSteps"/> steps: for plots, docs and tests. For a
    /// metric-driven schedule it reflects the observations made so far.
    /// </summary>
    /// <param name="schedule">The schedule to sample.</param>
    /// <param name="totalSteps">The run's length, 0 or more.</param>
    /// <returns>An array whose element <c>t</c> is <c>schedule.Multiplier(t, totalSteps)</c>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="schedule"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="totalSteps"/> is negative or larger than an array can hold.</exception>
    public static double[] Sample(this ILearningRateSchedule schedule, long totalSteps)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        if (totalSteps < 0 || totalSteps > Array.MaxLength)
        {
            throw new ArgumentOutOfRangeException(nameof(totalSteps), totalSteps, string.Create(CultureInfo.InvariantCulture, $"Sample needs a run length between 0 and {Array.MaxLength} steps."));
        }

        var multipliers = new double[totalSteps];
        for (long step = 0; step < totalSteps; step++)
        {
            multipliers[step] = schedule.Multiplier(step, totalSteps);
        }

        return multipliers;
    }

    private static void CheckStartFactor(double startFactor)
    {
        if (!(startFactor >= 0.0 && startFactor < 1.0))
        {
            throw new ArgumentOutOfRangeException(nameof(startFactor), startFactor, "The warm-up start factor (multiplier of the first step) must be in [0, 1); 0 starts from nothing, as Hugging Face does.");
        }
    }

    private static void CheckUnit(double value, string name, string what)
    {
        if (!(value >= 0.0 && value <= 1.0))
        {
            throw new ArgumentOutOfRangeException(name, value, $"The {name} ({what}) must be in [0, 1], a fraction of the base rate.");
        }
    }

    private static void CheckPositive(double value, string name, string what)
    {
        if (!(value > 0.0 && double.IsFinite(value)))
        {
            throw new ArgumentOutOfRangeException(name, value, $"The {name} ({what}) must be positive and finite.");
        }
    }

    private static void CheckGamma(double gamma)
    {
        if (!(gamma > 0.0 && gamma <= 1.0))
        {
            throw new ArgumentOutOfRangeException(nameof(gamma), gamma, "The decay factor gamma must be in (0, 1]; 1 keeps the rate, 0.1 cuts it tenfold.");
        }
    }
}
