using System.Collections.Immutable;
using NicheTune.Deployment;

namespace NicheTune.Monitoring;

/// <summary>
/// One request as a <see cref="ModelMonitor"/> sees it, for feeding a monitor by hand (a model not served by
/// <c>NicheModel</c>, a batch job, a replayed log). Leave a value unset when it is not known: that statistic then skips
/// the observation.
/// </summary>
public sealed record MonitorObservation
{
    /// <summary>Input length in tokens (or any length unit, used the same way for the reference and production).</summary>
    /// <value>Default <see langword="null"/>: not measured.</value>
    public double? InputLength { get; init; }

    /// <summary>Share of the input's tokens that were the unknown token, in [0, 1].</summary>
    /// <value>Default <see langword="null"/>: not measured.</value>
    public double? UnknownTokenRate { get; init; }

    /// <summary>Perplexity of the input under a reference language model.</summary>
    /// <value>Default <see langword="null"/>: not measured.</value>
    public double? InputPerplexity { get; init; }

    /// <summary>The input's embedding; its cosine distance to the reference centroid is <see cref="DriftStatistic.EmbeddingDistance"/>.</summary>
    /// <value>Default: empty (not measured).</value>
    public ImmutableArray<float> Embedding { get; init; } = [];

    /// <summary>The predicted label.</summary>
    /// <value>Default <see langword="null"/>: the arg-max index of <see cref="Probabilities"/> when they are set, else not measured.</value>
    public string? PredictedLabel { get; init; }

    /// <summary>Class probabilities; they give <see cref="DriftStatistic.Confidence"/> and <see cref="DriftStatistic.Entropy"/>.</summary>
    /// <value>Default: empty (not measured).</value>
    public ImmutableArray<float> Probabilities { get; init; } = [];

    /// <summary>When the request was answered; time-based windows use it.</summary>
    /// <value>Default <see langword="null"/>: the monitor's clock at <see cref="ModelMonitor.Observe(MonitorObservation)"/>.</value>
    public DateTimeOffset? Timestamp { get; init; }

    /// <summary>
    /// Reads what a served model recorded: token count, unknown-token rate, embedding, predicted label and probabilities;
    /// the input perplexity comes from <paramref name="inputPerplexity"/> when given, else from the record's own
    /// log-likelihood (exp(−log-likelihood / tokens), <see cref="PredictionKind.Score"/> requests only).
    /// </summary>
    /// <param name="record">The served request.</param>
    /// <param name="inputPerplexity">Perplexity of a text under a reference language model, or <see langword="null"/>.</param>
    /// <returns>The observation.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="record"/> is <see langword="null"/>.</exception>
    public static MonitorObservation FromRecord(PredictionRecord record, Func<string, double>? inputPerplexity = null)
    {
        ArgumentNullException.ThrowIfNull(record);
        double? perplexity = inputPerplexity is not null
            ? inputPerplexity(record.Input)
            : record.LogLikelihood is { } ll && record.TokenCount > 0 ? Math.Exp(-ll / record.TokenCount) : null;
        return new MonitorObservation
        {
            InputLength = record.TokenCount,
            UnknownTokenRate = record.TokenCount > 0 ? record.UnknownTokenCount / (double)record.TokenCount : null,
            InputPerplexity = perplexity,
            Embedding = record.Embedding.IsDefault ? [] : record.Embedding,
            PredictedLabel = record.PredictedLabel,
            Probabilities = record.Probabilities.IsDefault ? [] : record.Probabilities,
            Timestamp = record.Timestamp,
        };
    }
}
