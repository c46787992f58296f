using NicheTune.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Evaluation;

/// <summary>
/// Evaluates a model on a curated evaluation set outside training: the same pass the trainer runs on validation data
/// (evaluation mode, <c>no_grad</c>, batches prefetched in order, one dispose scope per batch), with any metrics.
/// The model stays on its device and its training/evaluation mode is restored afterwards.
/// </summary>
public static class Evaluator
{
    /// <summary>Computes <paramref name="metrics"/> over <paramref name="data"/>.</summary>
    /// <typeparam name="TExample">The example type.</typeparam>
    /// <typeparam name="TBatch">The batch type of the objective.</typeparam>
    /// <param name="model">The model; batches are moved to the device of its first parameter (CPU when it has none).</param>
    /// <param name="objective">Defines the loss and what metrics see (e.g. <see cref="Objectives.SequenceClassification"/>).</param>
    /// <param name="data">The examples (at least one), evaluated in order.</param>
    /// <param name="collator">Turns lists of examples into batches.</param>
    /// <param name="metrics">The metrics (at least one, distinct names); reset before the pass, so keep references to read reports after it.</param>
    /// <param name="batchSize">Examples per batch.</param>
    /// <param name="cancellationToken">Stops within one batch.</param>
    /// <returns>Metric values by metric name (no <c>validation.</c> prefix).</returns>
    /// <exception cref="ArgumentException">The data or the metrics are empty, two metrics share a name, or the objective cannot drive the model.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batchSize"/> is below 1.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static IReadOnlyDictionary<string, double> Evaluate<TExample, TBatch>(
        nn.Module model,
        ITrainingObjective<TBatch> objective,
        IReadOnlyList<TExample> data,
        ICollator<TExample, TBatch> collator,
        IReadOnlyList<IMetric> metrics,
        int batchSize = 32,
        CancellationToken cancellationToken = default)
        where TBatch : ITrainingBatch
    {
        EvaluationArguments.Check(model, objective, data, collator, batchSize);
        ArgumentNullException.ThrowIfNull(metrics);
        if (metrics.Count == 0)
        {
            throw new ArgumentException("Pass at least one metric, e.g. [Metrics.Loss(), Metrics.Accuracy()].", nameof(metrics));
        }

        for (int i = 0; i < metrics.Count; i++)
        {
            if (metrics[i] is null)
            {
                throw new ArgumentException($"Metric {i} is null; pass metrics such as Metrics.Accuracy().", nameof(metrics));
            }
        }

        EvaluationArguments.CheckNames(metrics, nameof(metrics));
        TorchBackend.EnsureAvailable();
        return EvaluationLoop.Run(model, objective, data, collator, metrics, string.Empty, batchSize, EvaluationArguments.DeviceOf(model), prefetch: 2, cancellationToken);
    }

    /// <summary>Computes <paramref name="metrics"/> over tokenised examples, batched by a default <see cref="TokenCollator"/>.</summary>
    /// <param name="model">The model; batches are moved to the device of its first parameter.</param>
    /// <param name="objective">A token objective, e.g. <see cref="Objectives.SequenceClassification"/> or <see cref="Objectives.CausalLanguageModeling"/>.</param>
    /// <param name="data">The examples (at least one).</param>
    /// <param name="metrics">The metrics (at least one, distinct names).</param>
    /// <param name="batchSize">Examples per batch.</param>
    /// <param name="cancellationToken">Stops within one batch.</param>
    /// <returns>Metric values by metric name.</returns>
    /// <exception cref="ArgumentException">The data or the metrics are empty, two metrics share a name, or the objective cannot drive the model.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batchSize"/> is below 1.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static IReadOnlyDictionary<string, double> Evaluate(
        nn.Module model,
        ITrainingObjective<TokenBatch> objective,
        IReadOnlyList<TokenExample> data,
        IReadOnlyList<IMetric> metrics,
        int batchSize = 32,
        CancellationToken cancellationToken = default)
        => Evaluate(model, objective, data, new TokenCollator(), metrics, batchSize, cancellationToken);
}

/// <summary>Argument checks shared by <see cref="Evaluator"/> and <see cref="ErrorAnalysis"/>.</summary>
internal static class EvaluationArguments
{
    public static void Check<TExample, TBatch>(nn.Module model, ITrainingObjective<TBatch> objective, IReadOnlyList<TExample> data, ICollator<TExample, TBatch> collator, int batchSize)
        where TBatch : ITrainingBatch
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(objective);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(collator);
        if (batchSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "Batch size must be at least 1; evaluation needs no gradients, so larger batches than in training usually fit.");
        }

        if (data.Count == 0)
        {
            throw new ArgumentException("There are no examples to evaluate; pass at least one.", nameof(data));
        }

        string[] problems = [.. objective.Validate(model)];
        if (problems.Length > 0)
        {
            throw new ArgumentException(string.Join(Environment.NewLine, problems), nameof(model));
        }
    }

    public static void CheckNames(IEnumerable<IMetric> metrics, string parameter)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (IMetric metric in metrics)
        {
            if (!names.Add(metric.Name))
            {
                throw new ArgumentException($"Two metrics are named '{metric.Name}'; results are keyed by name, so pass each metric once.", parameter);
            }
        }
    }

    public static Device DeviceOf(nn.Module model)
    {
        foreach (var parameter in model.parameters())
        {
            return parameter.device;
        }

        return CPU;
    }
}
