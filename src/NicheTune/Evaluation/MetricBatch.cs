using static TorchSharp.torch;

namespace NicheTune.Evaluation;

/// <summary>
/// What an objective hands to metrics for one evaluation batch: the batch's mean loss and the number of
/// elements it averages over, and, where the objective has them, the flattened outputs and targets.
/// A <see langword="readonly struct"/> so fields can be added later without breaking metric implementations.
/// </summary>
public readonly struct MetricBatch
{
    /// <summary>Creates the argument.</summary>
    /// <param name="loss">Scalar mean loss of the batch.</param>
    /// <param name="count">Number of elements (tokens or examples) the loss averages over, counted on the host.</param>
    /// <param name="outputs">Scores [N, C] (logits), or <see langword="null"/> when the objective has none.</param>
    /// <param name="targets">Target class per row of <paramref name="outputs"/> [N] (int64), or <see langword="null"/>.</param>
    /// <param name="ignoreIndex">Targets equal to this are skipped (padding).</param>
    public MetricBatch(Tensor loss, long count, Tensor? outputs = null, Tensor? targets = null, long ignoreIndex = -100)
    {
        Loss = loss;
        Count = count;
        Outputs = outputs;
        Targets = targets;
        IgnoreIndex = ignoreIndex;
    }

    /// <summary>Scalar mean loss of the batch, as the objective defines it.</summary>
    public Tensor Loss { get; }

    /// <summary>Number of elements the loss averages over.</summary>
    public long Count { get; }

    /// <summary>Scores [N, C], or <see langword="null"/>.</summary>
    public Tensor? Outputs { get; }

    /// <summary>Target classes [N], or <see langword="null"/>.</summary>
    public Tensor? Targets { get; }

    /// <summary>Target value that metrics skip.</summary>
    /// <value>Default -100.</value>
    public long IgnoreIndex { get; }
}
