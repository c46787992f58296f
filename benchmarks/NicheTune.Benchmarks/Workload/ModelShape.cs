using NicheTune.Models;

namespace NicheTune.Benchmarks.Workload;

/// <summary>A GPT-2 size and the batch it trains on. Dropout is always 0 so that the raw and Trainer sides compute identical work.</summary>
internal sealed record ModelShape(string Name, int VocabularySize, int ContextLength, int EmbeddingSize, int LayerCount, int HeadCount, int BatchSize)
{
    /// <summary>The benchmark model of DESIGN.md ("The hot loop"): the large-vocabulary output layer dominates the step.</summary>
    public static ModelShape Benchmark { get; } = new("benchmark", 50257, 128, 256, 4, 4, 16);

    /// <summary>
    /// The same architecture small enough for thousands of steps in minutes: every code path of the benchmark model
    /// (untied head, causal attention, layer norms, MLPs, AdamW, clipping) at a fraction of the arithmetic.
    /// </summary>
    public static ModelShape Small { get; } = new("small", 4096, 64, 128, 2, 4, 8);

    public int TokensPerExample => ContextLength;

    public Gpt2Config ToConfig() => new()
    {
        VocabularySize = VocabularySize,
        ContextLength = ContextLength,
        EmbeddingSize = EmbeddingSize,
        LayerCount = LayerCount,
        HeadCount = HeadCount,
        TieWordEmbeddings = false,
        ResidualDropout = 0.0,
        EmbeddingDropout = 0.0,
        AttentionDropout = 0.0,
    };

    public string Describe() =>
        $"{Name} GPT-2: vocab {VocabularySize}, ctx {ContextLength}, d {EmbeddingSize}, {LayerCount} layers, {HeadCount} heads, " +
        $"untied head, dropout 0; batch {BatchSize} x {TokensPerExample} tokens";
}
