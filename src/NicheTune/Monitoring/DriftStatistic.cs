namespace NicheTune.Monitoring;

/// <summary>A statistic of production traffic that <see cref="ModelMonitor"/> compares with its <see cref="MonitorReference"/>.</summary>
public enum DriftStatistic
{
    /// <summary>Input length in tokens: longer or shorter requests than the model was validated on.</summary>
    InputLength,

    /// <summary>Share of the input's tokens that were the tokenizer's unknown token: vocabulary the model never saw.</summary>
    UnknownTokenRate,

    /// <summary>Perplexity of the input under a reference language model: text unlike the domain's.</summary>
    InputPerplexity,

    /// <summary>Cosine distance (1 − cosine similarity) of the input's embedding to the reference embeddings' centroid.</summary>
    EmbeddingDistance,

    /// <summary>The predicted label (categorical): a shift in what the model answers.</summary>
    PredictedLabel,

    /// <summary>Probability of the predicted class (the largest class probability).</summary>
    Confidence,

    /// <summary>Entropy of the class probabilities in nats: how undecided the model is.</summary>
    Entropy,
}
