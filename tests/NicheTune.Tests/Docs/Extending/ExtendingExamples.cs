// The complete examples of docs/extending.md. Each region between "// <extending:NAME>" and "// </extending:NAME>" is
// copied verbatim into the page; ExtendingDocTests fails when the two differ, and runs every example.
using NicheTune.Augmentation;
using NicheTune.Evaluation;
using NicheTune.Freezing;
using NicheTune.Regularization;
using NicheTune.Scheduling;
using NicheTune.Training;
using NicheTune.Tuning;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Tests.Docs.Extending;

// <extending:freeze>
/// <summary>BitFit (Ben Zaken et al. 2022): train only the bias terms; every weight matrix stays frozen.</summary>
public sealed class BiasesOnly : IFreezeStrategy
{
    public IReadOnlySet<string> Frozen(LayerMap map, FreezePosition position) =>
        map.ParameterNames.Where(name => !name.EndsWith(".bias", StringComparison.Ordinal)).ToHashSet();

    public IEnumerable<string> Validate(LayerMap map)
    {
        if (!map.ParameterNames.Any(name => name.EndsWith(".bias", StringComparison.Ordinal)))
        {
            yield return "BiasesOnly trains the '*.bias' parameters, but the model has none; use Freeze.AllBut(...) instead.";
        }
    }
}
// </extending:freeze>

// <extending:schedule>
/// <summary>The Transformer's inverse-square-root schedule: linear warm-up, then the rate falls as 1/√step.</summary>
public sealed class InverseSquareRoot(long warmupSteps) : ILearningRateSchedule
{
    public double Multiplier(long step, long totalSteps) =>
        step < warmupSteps ? (step + 1.0) / warmupSteps : Math.Sqrt(warmupSteps / (step + 1.0));

    public IEnumerable<string> Validate(long? totalSteps)
    {
        if (warmupSteps < 1)
        {
            yield return $"InverseSquareRoot needs at least one warm-up step, got {warmupSteps}; pass 1 or more.";
        }
    }
}
// </extending:schedule>

// <extending:regularizer>
/// <summary>An L1 penalty on the trainable weight matrices: pushes small weights to exactly zero.</summary>
public sealed class L1Penalty(double strength) : IRegularizer
{
    public string Name => "l1";

    public IEnumerable<string> Validate(LayerMap map)
    {
        if (!(strength > 0))
        {
            yield return $"L1Penalty strength must be positive, got {strength}.";
        }
    }

    // Called inside the training step's dispose scope: the returned tensor joins the loss and is freed with the step.
    public Tensor? Penalty(RegularizationContext context)
    {
        Tensor? sum = null;
        foreach (var (name, parameter) in context.TrainableParameters)
        {
            if (name.EndsWith(".weight", StringComparison.Ordinal) && parameter.dim() == 2)
            {
                Tensor term = parameter.abs().sum();
                sum = sum is null ? term : sum + term;
            }
        }

        return sum is null ? null : sum * strength;
    }
}
// </extending:regularizer>

// <extending:metric>
/// <summary>Bits per token: the mean cross-entropy in base 2, the unit compression people compare models in.</summary>
public sealed class BitsPerToken : IMetric
{
    private double _nats;
    private long _count;

    public string Name => "bits_per_token";

    public bool HigherIsBetter => false;

    public void Reset() => (_nats, _count) = (0, 0);

    // The batch's loss is a mean over Count tokens: weight it by Count so uneven batches average correctly.
    public void Update(in MetricBatch batch)
    {
        _nats += batch.Loss.ToDouble() * batch.Count;
        _count += batch.Count;
    }

    public double Compute() => _count == 0 ? double.NaN : _nats / _count / Math.Log(2);
}
// </extending:metric>

// <extending:augmenter>
/// <summary>Writes a known abbreviation out in full ("DB" → "database"): a niche-aware, label-preserving variant.</summary>
public sealed class ExpandAbbreviations(IReadOnlyDictionary<string, string> expansions) : IAugmenter<string>
{
    // Returns no variant when the text has no abbreviation: an augmenter never returns the original.
    public IEnumerable<string> Augment(string example, Random random)
    {
        string[] words = example.Split(' ');
        int[] candidates = [.. Enumerable.Range(0, words.Length).Where(i => expansions.ContainsKey(words[i]))];
        if (candidates.Length == 0)
        {
            yield break;
        }

        int pick = candidates[random.Next(candidates.Length)];
        words[pick] = expansions[words[pick]];
        yield return string.Join(' ', words);
    }
}
// </extending:augmenter>

// <extending:callback>
/// <summary>Stops training once the logged training loss reaches a target: enough is enough.</summary>
public sealed class StopAtLoss(double target) : ITrainingCallback
{
    public long? ReachedAt { get; private set; }

    public void OnStepEnd(in StepEndArguments args)
    {
        if (args.Loss is { } loss && loss <= target)
        {
            ReachedAt ??= args.Step;
            args.Control.RequestStop($"training loss {loss:F3} reached the target {target:F3} at step {args.Step}");
        }
    }
}
// </extending:callback>

// <extending:sampler>
/// <summary>
/// Local search: random for the first trials, then a Gaussian step around the best finished trial's value, in the
/// distribution's own (log) scale. Deterministic per (seed, trial, parameter), so parallel workers agree.
/// </summary>
public sealed class AroundTheBest(int seed, int randomTrials = 5, double width = 0.1) : ISampler
{
    public double Sample(in SamplerArguments args)
    {
        var random = new Random(unchecked(seed * 1_000_003 + args.TrialNumber * 7_919 + StableHash(args.ParameterName)));
        string name = args.ParameterName;
        StudyDirection direction = args.Directions[0];
        FrozenTrial? best = args.Trials
            .Where(t => t.State == TrialState.Complete && t.Value is not null && t.InternalParameters.ContainsKey(name))
            .OrderBy(t => direction == StudyDirection.Minimize ? t.Value : -t.Value)
            .FirstOrDefault();
        bool explore = best is null || args.Trials.Count(t => t.State == TrialState.Complete) < randomTrials;

        switch (args.Distribution)
        {
            case FloatDistribution f:
                (double low, double high) = f.Log ? (Math.Log(f.Low), Math.Log(f.High)) : (f.Low, f.High);
                double center = explore ? low + random.NextDouble() * (high - low)
                    : f.Log ? Math.Log(best!.InternalParameters[name]) : best!.InternalParameters[name];
                double x = explore ? center : center + Gaussian(random) * width * (high - low);
                x = Math.Clamp(x, low, high);
                return f.Quantize(f.Log ? Math.Exp(x) : x);
            case IntDistribution i:
                double value = explore ? i.Low + random.NextDouble() * (i.High - i.Low)
                    : best!.InternalParameters[name] + Gaussian(random) * width * (i.High - i.Low);
                return i.Quantize(value);
            case CategoricalDistribution c:
                return explore || random.NextDouble() < width ? random.Next(c.Choices.Length) : best!.InternalParameters[name];
            default:
                throw new NotSupportedException($"AroundTheBest cannot sample '{name}' ({args.Distribution.Describe()}).");
        }
    }

    // string.GetHashCode differs between processes; workers of one study must draw the same numbers.
    private static int StableHash(string text) => text.Aggregate(17, (hash, c) => unchecked(hash * 31 + c));

    // Box–Muller: one standard normal draw from two uniform ones.
    private static double Gaussian(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
// </extending:sampler>

// <extending:pruner>
/// <summary>Optuna's threshold pruner: stop a trial whose last reported value is past a bound, or not finite.</summary>
public sealed class ThresholdPruner(double upper) : IPruner
{
    public bool ShouldPrune(in PrunerArguments args)
    {
        if (args.Trial.LastIntermediate is not { } last)
        {
            return false;
        }

        bool prune = !double.IsFinite(last.Value) || last.Value > upper;
        if (prune)
        {
            args.SetAttribute("pruned_because", $"value {last.Value} at step {last.Step} is above {upper}");
        }

        return prune;
    }
}
// </extending:pruner>
