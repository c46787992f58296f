namespace NicheTune.Evaluation;

/// <summary>
/// An evaluation metric: accumulates on tensors batch by batch (no host round trip per batch) and computes its
/// value once at the end. Built-ins come from <see cref="Metrics"/>; a user's own implementation plugs in the same way.
/// </summary>
public interface IMetric
{
    /// <summary>The name reported in results, e.g. <c>perplexity</c>; the trainer prefixes it with the data set (<c>validation.perplexity</c>).</summary>
    string Name { get; }

    /// <summary>Whether a larger value is better (used by early stopping when no mode is given).</summary>
    bool HigherIsBetter { get; }

    /// <summary>Clears the accumulated state; called before each evaluation pass, outside any dispose scope.</summary>
    void Reset();

    /// <summary>Adds one batch; called inside the evaluation's dispose scope, so state must be updated in place.</summary>
    /// <param name="batch">The objective's loss, count, outputs and targets for the batch.</param>
    void Update(in MetricBatch batch);

    /// <summary>The metric over every batch since <see cref="Reset"/>.</summary>
    /// <returns>The value; <see cref="double.NaN"/> when nothing was accumulated.</returns>
    double Compute();
}
