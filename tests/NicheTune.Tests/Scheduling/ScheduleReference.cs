using FluentAssertions;
using NicheTune.Scheduling;

namespace NicheTune.Tests.Scheduling;

/// <summary>
/// Closed forms of the PyTorch / Hugging Face schedules, transcribed from their documented lr_lambda equations, so the
/// built-ins are checked against the reference rather than against themselves.
/// </summary>
internal static class ScheduleReference
{
    public const double Tolerance = 1e-12;

    // transformers.get_constant_schedule_with_warmup: t < w ? t / max(1, w) : 1
    public static double HfConstantWithWarmup(long t, long w) => t < w ? (double)t / Math.Max(1, w) : 1.0;

    // transformers.get_linear_schedule_with_warmup
    public static double HfLinearWithWarmup(long t, long w, long total)
        => t < w ? (double)t / Math.Max(1, w) : Math.Max(0.0, (double)(total - t) / Math.Max(1, total - w));

    // transformers.get_cosine_schedule_with_warmup (num_cycles = 0.5)
    public static double HfCosineWithWarmup(long t, long w, long total, double numCycles = 0.5)
    {
        if (t < w)
        {
            return (double)t / Math.Max(1, w);
        }

        double progress = (double)(t - w) / Math.Max(1, total - w);
        return Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * numCycles * 2.0 * progress)));
    }

    // transformers.get_cosine_with_min_lr_schedule_with_warmup (min_lr_rate)
    public static double HfCosineWithMinLrWithWarmup(long t, long w, long total, double minLrRate, double numCycles = 0.5)
    {
        if (t < w)
        {
            return (double)t / Math.Max(1, w);
        }

        double progress = (double)(t - w) / Math.Max(1, total - w);
        double factor = 0.5 * (1.0 + Math.Cos(Math.PI * numCycles * 2.0 * progress));
        factor = (factor * (1 - minLrRate)) + minLrRate;
        return Math.Max(0.0, factor);
    }

    // transformers.get_cosine_with_hard_restarts_schedule_with_warmup
    public static double HfCosineHardRestartsWithWarmup(long t, long w, long total, int numCycles)
    {
        if (t < w)
        {
            return (double)t / Math.Max(1, w);
        }

        double progress = (double)(t - w) / Math.Max(1, total - w);
        if (progress >= 1.0)
        {
            return 0.0;
        }

        return Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * ((numCycles * progress) % 1.0))));
    }

    // transformers.get_polynomial_decay_schedule_with_warmup (lr_init, lr_end, power), divided by lr_init
    public static double HfPolynomialWithWarmup(long t, long w, long total, double lrInit, double lrEnd, double power)
    {
        if (t < w)
        {
            return (double)t / Math.Max(1, w);
        }

        if (t > total)
        {
            return lrEnd / lrInit;
        }

        double lrRange = lrInit - lrEnd;
        double decaySteps = total - w;
        double pctRemaining = 1 - ((t - w) / decaySteps);
        double decay = (lrRange * Math.Pow(pctRemaining, power)) + lrEnd;
        return decay / lrInit;
    }

    // torch LinearLR closed form: base · (start + (end − start) · min(total_iters, t) / total_iters)
    public static double TorchLinearLr(long t, double startFactor, double endFactor, long totalIters)
        => startFactor + ((endFactor - startFactor) * Math.Min(totalIters, t) / totalIters);

    // torch CosineAnnealingLR closed form: η_min + (η_base − η_min) · (1 + cos(π · t / T_max)) / 2 (base 1)
    public static double TorchCosineAnnealing(long t, long tMax, double etaMin)
        => etaMin + ((1.0 - etaMin) * (1 + Math.Cos(Math.PI * t / tMax)) / 2);

    // torch ExponentialLR closed form: base · γ^t
    public static double TorchExponential(long t, double gamma) => Math.Pow(gamma, t);

    // torch StepLR closed form: base · γ^(t // step_size)
    public static double TorchStep(long t, int stepSize, double gamma) => Math.Pow(gamma, t / stepSize);

    // torch PolynomialLR closed form: base · (1 − min(total_iters, t) / total_iters)^power
    public static double TorchPolynomial(long t, long totalIters, double power)
        => Math.Pow(1.0 - ((double)Math.Min(totalIters, t) / totalIters), power);

    // torch OneCycleLR (three_phase=False) with base = 1: get_lr's walk over the two phases.
    public static double TorchOneCycle(long stepNum, long totalSteps, double maxLr, double pctStart, double divFactor, double finalDivFactor, bool cos)
    {
        double initialLr = maxLr / divFactor;
        double minLr = initialLr / finalDivFactor;
        (double EndStep, double Start, double End)[] phases =
        [
            ((pctStart * totalSteps) - 1, initialLr, maxLr),
            (totalSteps - 1, maxLr, minLr),
        ];
        double startStep = 0;
        for (int i = 0; i < phases.Length; i++)
        {
            double endStep = phases[i].EndStep;
            if (stepNum <= endStep || i == phases.Length - 1)
            {
                double pct = (stepNum - startStep) / (endStep - startStep);
                return cos
                    ? phases[i].End + ((phases[i].Start - phases[i].End) / 2.0 * (Math.Cos(Math.PI * pct) + 1))
                    : ((phases[i].End - phases[i].Start) * pct) + phases[i].Start;
            }

            startStep = endStep;
        }

        throw new InvalidOperationException("unreachable");
    }

    // transformers TrainingArguments.get_warmup_steps: math.ceil(num_training_steps * warmup_ratio)
    public static long HfWarmupSteps(long total, double ratio) => (long)Math.Ceiling(total * ratio);

    /// <summary>Compares the schedule with the reference at every step of the run (so step 0, the last warm-up step, the first decay step, the middle and the last step among them).</summary>
    public static void MatchesAtEveryStep(this ILearningRateSchedule schedule, long totalSteps, Func<long, double> reference)
    {
        for (long t = 0; t < totalSteps; t++)
        {
            double actual = schedule.Multiplier(t, totalSteps);
            double expected = reference(t);
            if (Math.Abs(actual - expected) > Tolerance)
            {
                actual.Should().BeApproximately(expected, Tolerance, $"step {t} of {totalSteps} should match the reference");
            }
        }
    }

    /// <summary>Checks chosen landmark steps explicitly, with their expected values.</summary>
    public static void HasAt(this ILearningRateSchedule schedule, long totalSteps, params (long Step, double Expected)[] points)
    {
        foreach ((long step, double expected) in points)
        {
            schedule.Multiplier(step, totalSteps).Should().BeApproximately(expected, Tolerance, $"step {step} of {totalSteps}");
        }
    }
}
