using System.Collections.Immutable;

namespace NicheTune.Deployment;

/// <summary>What a served model was asked to do.</summary>
public enum PredictionKind
{
    /// <summary>Classification: <see cref="PredictionRecord.Probabilities"/> and <see cref="PredictionRecord.PredictedLabel"/> are set.</summary>
    Classify,

    /// <summary>Scoring a text's likelihood: <see cref="PredictionRecord.LogLikelihood"/> is set.</summary>
    Score,

    /// <summary>Text generation: <see cref="PredictionRecord.Output"/> is set.</summary>
    Generate,

    /// <summary>Embedding: <see cref="PredictionRecord.Embedding"/> is set.</summary>
    Embed,
}

/// <summary>
/// One request a served model answered: its input, what the tokenizer saw, and what the model returned. A deployed
/// model hands one record per request to every <see cref="IPredictionObserver"/>, which is how monitoring, drift
/// detection and feedback collection see production traffic without the serving code knowing about them.
/// </summary>
/// <param name="Timestamp">When the answer was produced.</param>
/// <param name="Kind">Which operation produced it.</param>
/// <param name="Input">The text as the caller sent it.</param>
/// <param name="TokenCount">Tokens the input became (after truncation).</param>
/// <param name="UnknownTokenCount">Tokens that were the tokenizer's unknown token (0 for byte-level tokenizers, which have none).</param>
/// <param name="Probabilities">Class probabilities in label-id order (<see cref="PredictionKind.Classify"/>), else empty.</param>
/// <param name="PredictedLabel">The most probable label's name (<see cref="PredictionKind.Classify"/>), else <see langword="null"/>.</param>
/// <param name="LogLikelihood">Total log-likelihood of the input's tokens (<see cref="PredictionKind.Score"/>), else <see langword="null"/>.</param>
/// <param name="Embedding">The pooled embedding (<see cref="PredictionKind.Embed"/>), else empty.</param>
/// <param name="Output">Generated text (<see cref="PredictionKind.Generate"/>), else <see langword="null"/>.</param>
/// <param name="Latency">Time from the request's arrival to its answer, including any wait for a micro-batch.</param>
public sealed record PredictionRecord(
    DateTimeOffset Timestamp,
    PredictionKind Kind,
    string Input,
    int TokenCount,
    int UnknownTokenCount,
    ImmutableArray<float> Probabilities,
    string? PredictedLabel,
    double? LogLikelihood,
    ImmutableArray<float> Embedding,
    string? Output,
    TimeSpan Latency);

/// <summary>
/// Receives every <see cref="PredictionRecord"/> a served model produces. Implementations must be thread-safe (they are
/// called from concurrent requests) and fast (they run on the request's path); a monitor or feedback store implements it.
/// </summary>
public interface IPredictionObserver
{
    /// <summary>Records one answered request.</summary>
    /// <param name="record">The request and its answer.</param>
    void Observe(PredictionRecord record);
}
