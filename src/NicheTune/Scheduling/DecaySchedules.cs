using System.Globalization;

namespace NicheTune.Scheduling;

// Notation in the equations below: t = the (local) step, T = the (local) length of the run or phase, λ = multiplier.
// Used after a warm-up, each decay sees t − w and T − w, which is how Hugging Face's *_with_warmup schedules decay
// over the steps that remain after the warm-up.

// HF get_constant_schedule / torch LambdaLR(lambda t: 1): λ(t) = 1.
internal sealed class ConstantSchedule : ILearningRateSchedule
{
    public static readonly ConstantSchedule Instance = new();

    public double Multiplier(long step, long totalSteps) => 1.0;

    public override string ToString() => "constant";
}

// HF get_linear_schedule_with_warmup, after the warm-up: λ(t) = max(0, (T − t) / max(1, T)).
// With an end factor e: λ(t) = e + (1 − e) · max(0, (T − t) / max(1, T)); this is torch
// LinearLR(start_factor=1, end_factor=e, total_iters=T): λ(t) = 1 + (e − 1) · min(t, T) / T.
internal sealed class LinearDecaySchedule(double endFactor) : ILearningRateSchedule
{
    public double Multiplier(long step, long totalSteps)
    {
        double remaining = (double)(totalSteps - step) / Math.Max(1L, totalSteps);
        return endFactor + ((1.0 - endFactor) * Math.Clamp(remaining, 0.0, 1.0));
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"linear decay to {endFactor}");
}

// HF get_cosine_schedule_with_warmup (num_cycles = 0.5), after the warm-up, with p = t / max(1, T):
//   λ(t) = max(0, ½ · (1 + cos(π · p))).
// With a floor m, HF get_cosine_with_min_lr_schedule_with_warmup (min_lr_rate = m): λ(t) = m + (1 − m) · ½ · (1 + cos(π · p)),
// which is also torch CosineAnnealingLR's closed form with T_max = T and eta_min = m · base.
// p is clamped to [0, 1] so steps past the end hold the floor instead of rising again.
internal sealed class CosineSchedule(double minFactor) : ILearningRateSchedule
{
    public double Multiplier(long step, long totalSteps)
    {
        double progress = Math.Clamp((double)step / Math.Max(1L, totalSteps), 0.0, 1.0);
        return minFactor + ((1.0 - minFactor) * 0.5 * (1.0 + Math.Cos(Math.PI * progress)));
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"cosine decay to {minFactor}");
}

// HF get_cosine_with_hard_restarts_schedule_with_warmup (num_cycles = c), after the warm-up, with p = t / max(1, T):
//   λ(t) = 0 when p ≥ 1, else max(0, ½ · (1 + cos(π · ((c · p) mod 1)))).
// With a floor m: λ(t) = m + (1 − m) · that (m when p ≥ 1).
internal sealed class CosineWithHardRestartsSchedule(int cycles, double minFactor) : ILearningRateSchedule
{
    public double Multiplier(long step, long totalSteps)
    {
        double progress = (double)step / Math.Max(1L, totalSteps);
        if (progress >= 1.0)
        {
            return minFactor;
        }

        double cosine = Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * ((cycles * progress) % 1.0))));
        return minFactor + ((1.0 - minFactor) * cosine);
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"cosine with {cycles} hard restart cycle(s) down to {minFactor}");
}

// torch ExponentialLR(gamma = γ): λ(t) = γ^t (γ applied every optimizer step, not every epoch).
internal sealed class ExponentialSchedule(double gamma) : ILearningRateSchedule
{
    public double Multiplier(long step, long totalSteps) => Math.Pow(gamma, step);

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"exponential decay by {gamma} per step");
}

// HF get_polynomial_decay_schedule_with_warmup (power = k, lr_end / lr_init = e), after the warm-up:
//   λ(t) = (1 − e) · (1 − t / T)^k + e for t ≤ T, e after.
// With e = 0 this is torch PolynomialLR(total_iters = T, power = k): λ(t) = (1 − min(t, T) / T)^k.
internal sealed class PolynomialSchedule(double power, double endFactor) : ILearningRateSchedule
{
    public double Multiplier(long step, long totalSteps)
    {
        if (step >= totalSteps)
        {
            return endFactor;
        }

        double remaining = 1.0 - ((double)step / Math.Max(1L, totalSteps));
        return ((1.0 - endFactor) * Math.Pow(remaining, power)) + endFactor;
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"polynomial decay (power {power}) to {endFactor}");
}

// torch StepLR(step_size = s, gamma = γ): λ(t) = γ^⌊t / s⌋.
internal sealed class StepDecaySchedule(int stepSize, double gamma) : ILearningRateSchedule
{
    public double Multiplier(long step, long totalSteps) => Math.Pow(gamma, step / stepSize);

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"step decay by {gamma} every {stepSize} steps");
}

// torch OneCycleLR (three_phase=False), as a multiplier of the base rate with max_lr = M · base:
//   initial = M / div, minimum = initial / final_div; phase 1 ends at e₁ = pct_start · T − 1, phase 2 at e₂ = T − 1.
//   t ≤ e₁: λ(t) = anneal(initial, M, t / e₁);  t > e₁: λ(t) = anneal(M, minimum, (t − e₁) / (e₂ − e₁)).
//   cos anneal(a, b, p) = b + (a − b) / 2 · (cos(π · p) + 1);  linear anneal(a, b, p) = (b − a) · p + a.
// torch raises past T; here p is clamped to 1 so later steps hold the minimum.
internal sealed class OneCycleSchedule(double maxFactor, double pctStart, double divFactor, double finalDivFactor, bool cosineAnneal) : ILearningRateSchedule
{
    private readonly double _initial = maxFactor / divFactor;

    private double Minimum => _initial / finalDivFactor;

    public double Multiplier(long step, long totalSteps)
    {
        double peakEnd = (pctStart * totalSteps) - 1.0;
        double end = totalSteps - 1.0;
        if (step <= peakEnd)
        {
            return Anneal(_initial, maxFactor, peakEnd > 0.0 ? step / peakEnd : 1.0);
        }

        double span = end - peakEnd;
        return Anneal(maxFactor, Minimum, span > 0.0 ? Math.Min(1.0, (step - peakEnd) / span) : 1.0);
    }

    public IEnumerable<string> Validate(long? totalSteps)
    {
        if (totalSteps is { } total && pctStart * total - 1.0 <= 0.0)
        {
            double needed = 1.0 / pctStart;
            return [string.Create(CultureInfo.InvariantCulture, $"One-cycle over {total} steps with pctStart {pctStart} has no rising phase (its peak would be at step {pctStart * total - 1.0:G4}); it needs more than {needed:G4} steps: train longer or raise pctStart.")];
        }

        return [];
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"one-cycle (peak {maxFactor} at {pctStart * 100:0.##}%)");

    private double Anneal(double start, double end, double pct)
        => cosineAnneal ? end + ((start - end) / 2.0 * (Math.Cos(Math.PI * pct) + 1.0)) : ((end - start) * pct) + start;
}
