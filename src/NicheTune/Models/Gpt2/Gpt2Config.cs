using System;
using System.Globalization;

namespace NicheTune.Models;

/// <summary>
/// Hyper-parameters of a GPT-2 causal language model, mirroring the fields of Hugging Face's
/// <c>GPT2Config</c> (the JSON name of each field is given on every property) so that a
/// <c>config.json</c> from the Hub maps one-to-one onto this type.
/// </summary>
/// <remarks>
/// The type is immutable: build a new instance with an object initializer to change a value.
/// Call <see cref="Validate"/> (the model constructor does) to catch inconsistent values
/// before any tensor is allocated.
/// </remarks>
public sealed partial class Gpt2Config
{
    /// <summary>
    /// The configuration of the original 124M-parameter GPT-2 ("gpt2" on the Hugging Face Hub).
    /// Use it as a starting point when loading that checkpoint or as a realistic size for benchmarks.
    /// </summary>
    public static Gpt2Config Small { get; } = new()
    {
        VocabularySize = 50257,
        ContextLength = 1024,
        EmbeddingSize = 768,
        LayerCount = 12,
        HeadCount = 12,
        InnerSize = null,
        ResidualDropout = 0.1,
        EmbeddingDropout = 0.1,
        AttentionDropout = 0.1,
        LayerNormEpsilon = 1e-5,
        InitializerRange = 0.02,
        TieWordEmbeddings = true,
    };

    /// <summary>
    /// Number of token ids the model knows (HF <c>vocab_size</c>); sets the rows of the token
    /// embedding and the width of the logits.
    /// </summary>
    /// <value>Default 50257 (the GPT-2 byte-level BPE vocabulary).</value>
    public int VocabularySize { get => _vocabularySize; init => _vocabularySize = value; }

    private int _vocabularySize = 50257;

    /// <summary>A copy with another <see cref="VocabularySize"/>, for a model whose embedding was resized.</summary>
    internal Gpt2Config WithVocabularySize(int vocabularySize)
    {
        var copy = (Gpt2Config)MemberwiseClone();
        copy._vocabularySize = vocabularySize;
        return copy;
    }

    /// <summary>
    /// Maximum sequence length (HF <c>n_positions</c>); sets the rows of the learned position
    /// embedding, so longer inputs are rejected.
    /// </summary>
    /// <value>Default 1024.</value>
    public int ContextLength { get; init; } = 1024;

    /// <summary>
    /// Width of the hidden states (HF <c>n_embd</c>); must be divisible by <see cref="HeadCount"/>.
    /// </summary>
    /// <value>Default 768.</value>
    public int EmbeddingSize { get; init; } = 768;

    /// <summary>
    /// Number of transformer blocks (HF <c>n_layer</c>); also scales the special initialization of
    /// the residual projections.
    /// </summary>
    /// <value>Default 12.</value>
    public int LayerCount { get; init; } = 12;

    /// <summary>
    /// Number of attention heads per block (HF <c>n_head</c>); each head sees
    /// <see cref="EmbeddingSize"/> / <see cref="HeadCount"/> features.
    /// </summary>
    /// <value>Default 12.</value>
    public int HeadCount { get; init; } = 12;

    /// <summary>
    /// Width of the feed-forward layer (HF <c>n_inner</c>); <see langword="null"/> means
    /// 4 × <see cref="EmbeddingSize"/>, as in every released GPT-2 checkpoint.
    /// Read <see cref="ResolvedInnerSize"/> for the width actually used.
    /// </summary>
    /// <value>Default <see langword="null"/> (4 × <see cref="EmbeddingSize"/>).</value>
    public int? InnerSize { get; init; }

    /// <summary>
    /// Dropout probability applied to the output of each attention and feed-forward sub-layer
    /// before it is added to the residual stream (HF <c>resid_pdrop</c>). Only active in training mode.
    /// </summary>
    /// <value>Default 0.1.</value>
    public double ResidualDropout { get; init; } = 0.1;

    /// <summary>
    /// Dropout probability applied to the sum of token and position embeddings (HF <c>embd_pdrop</c>).
    /// Only active in training mode.
    /// </summary>
    /// <value>Default 0.1.</value>
    public double EmbeddingDropout { get; init; } = 0.1;

    /// <summary>
    /// Dropout probability applied to the attention probabilities (HF <c>attn_pdrop</c>).
    /// Only active in training mode.
    /// </summary>
    /// <value>Default 0.1.</value>
    public double AttentionDropout { get; init; } = 0.1;

    /// <summary>
    /// Epsilon added to the variance in every layer norm (HF <c>layer_norm_epsilon</c>); keep the
    /// checkpoint's value, because changing it shifts the outputs of a pretrained model.
    /// </summary>
    /// <value>Default 1e-5.</value>
    public double LayerNormEpsilon { get; init; } = 1e-5;

    /// <summary>
    /// Standard deviation of the normal distribution used to initialize embeddings and projection
    /// weights (HF <c>initializer_range</c>). Matters only when training from scratch.
    /// </summary>
    /// <value>Default 0.02.</value>
    public double InitializerRange { get; init; } = 0.02;

    /// <summary>
    /// Whether the output projection shares its weight with the token embedding
    /// (HF <c>tie_word_embeddings</c>). When tied there is no separate <c>lm_head.weight</c>
    /// parameter, which saves <see cref="VocabularySize"/> × <see cref="EmbeddingSize"/> weights.
    /// </summary>
    /// <value>Default <see langword="true"/>.</value>
    public bool TieWordEmbeddings { get; init; } = true;

    /// <summary>
    /// The feed-forward width actually used: <see cref="InnerSize"/> when set, otherwise
    /// 4 × <see cref="EmbeddingSize"/>. Use it instead of re-implementing HF's default.
    /// </summary>
    public int ResolvedInnerSize => InnerSize ?? 4 * EmbeddingSize;

    /// <summary>
    /// The number of features each attention head sees (<see cref="EmbeddingSize"/> / <see cref="HeadCount"/>);
    /// 0 while <see cref="HeadCount"/> is not positive, which <see cref="Validate"/> rejects.
    /// </summary>
    public int HeadSize => HeadCount > 0 ? EmbeddingSize / HeadCount : 0;

    /// <summary>
    /// Checks that the values describe a buildable model, so that a bad configuration fails with
    /// a clear message instead of a shape error deep inside libtorch.
    /// </summary>
    /// <exception cref="ArgumentException">
    /// A value is out of range; the message names the property, the value seen and how to fix it.
    /// </exception>
    public void Validate()
    {
        RequirePositive(VocabularySize, nameof(VocabularySize));
        RequirePositive(ContextLength, nameof(ContextLength));
        RequirePositive(EmbeddingSize, nameof(EmbeddingSize));
        RequirePositive(LayerCount, nameof(LayerCount));
        RequirePositive(HeadCount, nameof(HeadCount));

        if (EmbeddingSize % HeadCount != 0)
        {
            throw new ArgumentException(
                $"Gpt2Config.{nameof(EmbeddingSize)} ({EmbeddingSize}) must be divisible by {nameof(HeadCount)} ({HeadCount}) " +
                $"so that every attention head gets the same width; choose an {nameof(EmbeddingSize)} that is a multiple of " +
                $"{nameof(HeadCount)} or a {nameof(HeadCount)} that divides {EmbeddingSize}.",
                nameof(EmbeddingSize));
        }

        if (InnerSize is { } inner && inner <= 0)
        {
            throw new ArgumentException(
                $"Gpt2Config.{nameof(InnerSize)} ({inner}) must be positive; set it to a positive width or leave it null " +
                $"to use 4 × {nameof(EmbeddingSize)}.",
                nameof(InnerSize));
        }

        RequireProbability(ResidualDropout, nameof(ResidualDropout));
        RequireProbability(EmbeddingDropout, nameof(EmbeddingDropout));
        RequireProbability(AttentionDropout, nameof(AttentionDropout));

        // Written as negated comparisons so that NaN fails too.
        if (!(LayerNormEpsilon > 0) || double.IsInfinity(LayerNormEpsilon))
        {
            throw new ArgumentException(
                $"Gpt2Config.{nameof(LayerNormEpsilon)} ({Format(LayerNormEpsilon)}) must be a finite value greater than 0; " +
                "use the checkpoint's value (1e-5 for GPT-2).",
                nameof(LayerNormEpsilon));
        }

        if (!(InitializerRange >= 0) || double.IsInfinity(InitializerRange))
        {
            throw new ArgumentException(
                $"Gpt2Config.{nameof(InitializerRange)} ({Format(InitializerRange)}) must be a finite standard deviation " +
                ">= 0; GPT-2 uses 0.02.",
                nameof(InitializerRange));
        }
    }

    private static void RequirePositive(int value, string name)
    {
        if (value <= 0)
        {
            throw new ArgumentException(
                $"Gpt2Config.{name} ({value}) must be greater than 0; set it to a positive value.",
                name);
        }
    }

    private static void RequireProbability(double value, string name)
    {
        // A probability of 1 would zero every activation in training, which is never intended.
        if (!(value >= 0 && value < 1))
        {
            throw new ArgumentException(
                $"Gpt2Config.{name} ({Format(value)}) must be a dropout probability in [0, 1); use 0 to disable dropout.",
                name);
        }
    }

    private static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
