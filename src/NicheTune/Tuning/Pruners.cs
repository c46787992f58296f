using System.Globalization;

namespace NicheTune.Tuning;

/// <summary>The built-in pruners: <c>Pruners.Median()</c>, <c>Pruners.SuccessiveHalving()</c>, <c>Pruners.None</c>.</summary>
public static class Pruners
{
    /// <summary>Never prunes.</summary>
    public static IPruner None { get; } = new NopPruner();

    /// <summary>
    /// Prunes a trial whose best intermediate value so far is worse than the median of the complete trials' values at
    /// the same step (Optuna's MedianPruner).
    /// </summary>
    /// <param name="startupTrials">Prune nothing until this many trials are complete.</param>
    /// <param name="warmupSteps">Prune no trial before it reaches this step.</param>
    /// <param name="intervalSteps">Judge only every this many steps after the warm-up.</param>
    /// <param name="minTrials">Prune only when at least this many complete trials reported at the step.</param>
    /// <returns>The pruner.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A count is negative, or <paramref name="intervalSteps"/> or <paramref name="minTrials"/> is below 1.</exception>
    public static IPruner Median(int startupTrials = 5, long warmupSteps = 0, long intervalSteps = 1, int minTrials = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(startupTrials);
        ArgumentOutOfRangeException.ThrowIfNegative(warmupSteps);
        ArgumentOutOfRangeException.ThrowIfLessThan(intervalSteps, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(minTrials, 1);
        return new MedianPruner(startupTrials, warmupSteps, intervalSteps, minTrials);
    }

    /// <summary>
    /// Asynchronous successive halving (ASHA, Li et al. 2020, as in Optuna's SuccessiveHalvingPruner): rung k is reached at
    /// step <c>minResource · reductionFactor^(minEarlyStoppingRate + k)</c>; a trial arriving at a rung continues only
    /// if its value is in the best 1/<paramref name="reductionFactor"/> of the values every trial had at that rung.
    /// </summary>
    /// <param name="minResource">The step of the first rung (e.g. evaluations or epochs), at least 1.</param>
    /// <param name="reductionFactor">How selective each rung is, at least 2.</param>
    /// <param name="minEarlyStoppingRate">Skip this many rungs before the first judgement, ≥ 0.</param>
    /// <returns>The pruner.</returns>
    /// <exception cref="ArgumentOutOfRangeException">An argument is out of range.</exception>
    public static IPruner SuccessiveHalving(long minResource = 1, int reductionFactor = 4, int minEarlyStoppingRate = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(minResource, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(reductionFactor, 2);
        ArgumentOutOfRangeException.ThrowIfNegative(minEarlyStoppingRate);
        return new SuccessiveHalvingPruner(minResource, reductionFactor, minEarlyStoppingRate);
    }
}

internal sealed class NopPruner : IPruner
{
    public bool ShouldPrune(in PrunerArguments args) => false;
}

internal sealed class MedianPruner(int startupTrials, long warmupSteps, long intervalSteps, int minTrials) : IPruner
{
    public bool ShouldPrune(in PrunerArguments args)
    {
        if (args.Trial.LastIntermediate is not { } last)
        {
            return false;
        }

        long step = last.Step;
        var complete = args.Trials.Where(t => t.State == TrialState.Complete).ToList();
        if (complete.Count < startupTrials || step < warmupSteps || (step - warmupSteps) % intervalSteps != 0)
        {
            return false;
        }

        bool maximize = args.Direction == StudyDirection.Maximize;
        var finite = args.Trial.IntermediateValues.Values.Where(v => !double.IsNaN(v)).ToList();
        if (finite.Count == 0)
        {
            return true;
        }

        double best = maximize ? finite.Max() : finite.Min();
        var others = complete
            .Where(t => t.IntermediateValues.TryGetValue(step, out double v) && !double.IsNaN(v))
            .Select(t => t.IntermediateValues[step])
            .ToList();
        if (others.Count < minTrials)
        {
            return false;
        }

        double median = Median(others);
        return maximize ? best < median : best > median;
    }

    internal static double Median(List<double> values)
    {
        values.Sort();
        int n = values.Count;
        return n % 2 == 1 ? values[n / 2] : 0.5 * (values[(n / 2) - 1] + values[n / 2]);
    }
}

internal sealed class SuccessiveHalvingPruner(long minResource, int reductionFactor, int minEarlyStoppingRate) : IPruner
{
    internal const string RungPrefix = "asha.rung.";

    public bool ShouldPrune(in PrunerArguments args)
    {
        if (args.Trial.LastIntermediate is not { } last)
        {
            return false;
        }

        (long step, double value) = last;
        int rung = 0;
        while (args.Trial.Attributes.ContainsKey(RungPrefix + rung))
        {
            rung++;
        }

        while (true)
        {
            double promotionStep = minResource * Math.Pow(reductionFactor, minEarlyStoppingRate + rung);
            if (step < promotionStep)
            {
                return false;
            }

            if (double.IsNaN(value))
            {
                return true;
            }

            string key = RungPrefix + rung;
            args.SetAttribute(key, value.ToString("R", CultureInfo.InvariantCulture));
            var competing = new List<double> { value };
            foreach (FrozenTrial other in args.Trials)
            {
                if (other.Id != args.Trial.Id && other.Attributes.TryGetValue(key, out string? text))
                {
                    competing.Add(double.Parse(text, CultureInfo.InvariantCulture));
                }
            }

            if (!Promotable(value, competing, args.Direction))
            {
                return true;
            }

            rung++;
        }
    }

    private bool Promotable(double value, List<double> competing, StudyDirection direction)
    {
        // The top ⌊n / η⌋ values at the rung go on; with fewer than η values so far the first one is promoted, since
        // an asynchronous scheme cannot pause a trial until enough competitors arrive.
        int index = Math.Max(competing.Count / reductionFactor - 1, 0);
        competing.Sort();
        return direction == StudyDirection.Maximize
            ? value >= competing[competing.Count - 1 - index]
            : value <= competing[index];
    }
}
