using System.Collections.Immutable;
using NicheTune.Deployment;

namespace NicheTune.Refinement;

/// <summary>
/// One production input kept by a <see cref="FeedbackStore"/>: what the model was asked and answered, why it was kept,
/// and the correct label once someone gives it. Labelled items are the new training data of the next fine-tuning round.
/// </summary>
/// <param name="Id">The store's identifier, for <see cref="FeedbackStore.AddLabel"/> and <see cref="FeedbackStore.Flag(long, string)"/>.</param>
/// <param name="Timestamp">When the model answered (the <see cref="PredictionRecord.Timestamp"/>).</param>
/// <param name="Kind">Which operation the model performed.</param>
/// <param name="Input">The text the model was given.</param>
/// <param name="PredictedLabel">The model's label (classification), else <see langword="null"/>.</param>
/// <param name="Probabilities">The model's class probabilities in label-id order (classification), else empty.</param>
/// <param name="Embedding">The model's embedding of the input when it produced one, else empty.</param>
/// <param name="Output">Generated text (generation), else <see langword="null"/>.</param>
/// <param name="Reason">Why the item was kept, e.g. <c>"low confidence 0.41"</c> or <c>"flagged: drift"</c>.</param>
/// <param name="Flagged">Whether a monitor or a user flagged it as suspect.</param>
/// <param name="Label">The correct label, once given; <see langword="null"/> until then.</param>
/// <param name="LabelSource">Who or what gave the label, e.g. <c>"annotator:ana"</c> or <c>"user-correction"</c>.</param>
/// <param name="LabelledAt">When the label was given.</param>
public sealed record FeedbackItem(
    long Id,
    DateTimeOffset Timestamp,
    PredictionKind Kind,
    string Input,
    string? PredictedLabel,
    ImmutableArray<float> Probabilities,
    ImmutableArray<float> Embedding,
    string? Output,
    string Reason,
    bool Flagged,
    string? Label,
    string? LabelSource,
    DateTimeOffset? LabelledAt)
{
    /// <summary>Whether the item has a label.</summary>
    public bool IsLabelled => Label is not null;

    /// <summary>Whether the label, when given, differs from the model's prediction: a correction.</summary>
    public bool IsCorrection => Label is not null && PredictedLabel is not null && !string.Equals(Label, PredictedLabel, StringComparison.Ordinal);
}

/// <summary>How many items a <see cref="FeedbackStore"/> holds, and what its request-path buffer has done since it was opened.</summary>
/// <param name="Items">Items in the file.</param>
/// <param name="Labelled">Items with a label.</param>
/// <param name="Flagged">Items flagged as suspect.</param>
/// <param name="Observed">Records this instance's <see cref="FeedbackStore.Observe"/> received.</param>
/// <param name="Matched">Of those, records the filter kept (queued for writing).</param>
/// <param name="Written">Queued records written to the file.</param>
/// <param name="Dropped">Matching records dropped because the buffer was full (the writer could not keep up).</param>
/// <param name="Failed">Records lost because a batch write failed or the filter threw; <paramref name="LastError"/> says why.</param>
/// <param name="LastError">The last write or filter failure, or <see langword="null"/>.</param>
public sealed record FeedbackStatistics(long Items, long Labelled, long Flagged, long Observed, long Matched, long Written, long Dropped, long Failed, string? LastError);
