using System.ComponentModel.DataAnnotations;

namespace NicheTune.Evaluation;

/// <summary>Settings of an <see cref="ErrorAnalysis"/> run.</summary>
public sealed class ErrorAnalysisOptions
{
    /// <summary>Examples per batch.</summary>
    /// <value>Default 32.</value>
    [Range(1, int.MaxValue)]
    public int BatchSize { get; init; } = 32;

    /// <summary>One display name per output class (classification), or <see langword="null"/> to show class indices.</summary>
    /// <value>Default <see langword="null"/>.</value>
    public IReadOnlyList<string>? ClassNames { get; init; }

    /// <summary>
    /// Assigns each example (by its index in the data) to a subgroup, e.g. its source, domain, length bucket or a
    /// demographic attribute; <see cref="ErrorReport.Slices"/> then reports <see cref="SliceMetrics"/> per subgroup
    /// with the gap to the whole set. Called once per example before the pass; must not return <see langword="null"/>.
    /// </summary>
    /// <value>Default <see langword="null"/>: no slices.</value>
    public Func<int, string>? SliceOf { get; init; }

    /// <summary>
    /// Factories of the metrics computed on the whole set and on every slice (each slice gets its own instances).
    /// They see the plain cross-entropy as the batch loss, without the objective's label smoothing, so <c>loss</c>
    /// here is the negative log-likelihood.
    /// </summary>
    /// <value>Default: <see cref="Metrics.Loss"/> and <see cref="Metrics.Accuracy"/>.</value>
    public IReadOnlyList<Func<IMetric>> SliceMetrics { get; init; } = [Metrics.Loss, Metrics.Accuracy];
}
