using System.Globalization;
using System.Text.Json.Nodes;

namespace NicheTune.Models;

/// <summary>
/// Hyper-parameters of a BERT encoder, mirroring Hugging Face's <c>BertConfig</c> (the JSON name of each field is
/// given on every property) so that a <c>config.json</c> from the Hub maps one-to-one onto this type through
/// <see cref="FromHuggingFaceJson"/>.
/// </summary>
/// <remarks>
/// The type is an immutable record: derive a variant with <c>config with { LayerCount = 2 }</c>. Call
/// <see cref="Validate"/> (the model constructors do) to catch inconsistent values before any tensor is allocated.
/// </remarks>
public sealed record BertConfig
{
    /// <summary>The configuration of <c>bert-base-uncased</c> (110M parameters).</summary>
    public static BertConfig Base { get; } = new();

    /// <summary>Number of token ids (HF <c>vocab_size</c>); the rows of the word embedding and, in the masked-LM head, the width of the logits.</summary>
    /// <value>Default 30522 (the uncased WordPiece vocabulary).</value>
    public int VocabularySize { get; init; } = 30522;

    /// <summary>Width of the hidden states (HF <c>hidden_size</c>); must be divisible by <see cref="HeadCount"/>.</summary>
    /// <value>Default 768.</value>
    public int HiddenSize { get; init; } = 768;

    /// <summary>Number of encoder layers (HF <c>num_hidden_layers</c>).</summary>
    /// <value>Default 12.</value>
    public int LayerCount { get; init; } = 12;

    /// <summary>Number of attention heads per layer (HF <c>num_attention_heads</c>).</summary>
    /// <value>Default 12.</value>
    public int HeadCount { get; init; } = 12;

    /// <summary>Width of the feed-forward layer (HF <c>intermediate_size</c>).</summary>
    /// <value>Default 3072.</value>
    public int IntermediateSize { get; init; } = 3072;

    /// <summary>
    /// The feed-forward activation (HF <c>hidden_act</c>): <c>gelu</c> (exact, erf-based, as in every released BERT),
    /// <c>gelu_new</c> or <c>gelu_pytorch_tanh</c> (tanh approximation), <c>relu</c>, <c>silu</c> or <c>swish</c>.
    /// </summary>
    /// <value>Default <c>gelu</c>.</value>
    public string HiddenActivation { get; init; } = "gelu";

    /// <summary>Dropout on embeddings and on each sub-layer's output (HF <c>hidden_dropout_prob</c>); only active in training mode.</summary>
    /// <value>Default 0.1.</value>
    public double HiddenDropout { get; init; } = 0.1;

    /// <summary>Dropout on the attention probabilities (HF <c>attention_probs_dropout_prob</c>); only active in training mode.</summary>
    /// <value>Default 0.1.</value>
    public double AttentionDropout { get; init; } = 0.1;

    /// <summary>Rows of the learned position embedding (HF <c>max_position_embeddings</c>): the longest accepted input.</summary>
    /// <value>Default 512.</value>
    public int MaxPositions { get; init; } = 512;

    /// <summary>Number of segment (token type) ids (HF <c>type_vocab_size</c>).</summary>
    /// <value>Default 2.</value>
    public int TypeVocabularySize { get; init; } = 2;

    /// <summary>Standard deviation of the initial weights (HF <c>initializer_range</c>); matters only for weights not loaded from a checkpoint.</summary>
    /// <value>Default 0.02.</value>
    public double InitializerRange { get; init; } = 0.02;

    /// <summary>Epsilon of every layer norm (HF <c>layer_norm_eps</c>); keep the checkpoint's value.</summary>
    /// <value>Default 1e-12.</value>
    public double LayerNormEpsilon { get; init; } = 1e-12;

    /// <summary>The padding token id (HF <c>pad_token_id</c>); its word-embedding row starts at zero.</summary>
    /// <value>Default 0.</value>
    public int? PadTokenId { get; init; } = 0;

    /// <summary>How positions are encoded (HF <c>position_embedding_type</c>); only <c>absolute</c> is supported.</summary>
    /// <value>Default <c>absolute</c>.</value>
    public string PositionEmbeddingType { get; init; } = "absolute";

    /// <summary>
    /// Dropout before the classifier of <see cref="BertForSequenceClassification"/> (HF <c>classifier_dropout</c>);
    /// <see langword="null"/> means <see cref="HiddenDropout"/>.
    /// </summary>
    /// <value>Default <see langword="null"/>.</value>
    public double? ClassifierDropout { get; init; }

    /// <summary>
    /// Number of classes of <see cref="BertForSequenceClassification"/> (HF <c>num_labels</c>, stored in
    /// <c>config.json</c> as the size of <c>id2label</c>). Ignored when <see cref="Labels"/> is set.
    /// </summary>
    /// <value>Default 2.</value>
    public int LabelCount { get; init; } = 2;

    /// <summary>
    /// Class names by id (HF <c>id2label</c>); when set, its length is the number of classes. <see langword="null"/>
    /// writes <c>LABEL_0</c>, <c>LABEL_1</c>, … as Hugging Face does.
    /// </summary>
    /// <value>Default <see langword="null"/>.</value>
    public IReadOnlyList<string>? Labels { get; init; }

    /// <summary>
    /// Whether the masked-LM decoder shares its weight with the word embedding (HF <c>tie_word_embeddings</c>). When
    /// tied, <c>cls.predictions.decoder.weight</c> is not a parameter of its own.
    /// </summary>
    /// <value>Default <see langword="true"/>.</value>
    public bool TieWordEmbeddings { get; init; } = true;

    /// <summary>The number of classes actually used: the length of <see cref="Labels"/> when set, otherwise <see cref="LabelCount"/>.</summary>
    public int ResolvedLabelCount => Labels?.Count ?? LabelCount;

    /// <summary>The features each attention head sees (<see cref="HiddenSize"/> / <see cref="HeadCount"/>); 0 while <see cref="HeadCount"/> is not positive.</summary>
    public int HeadSize => HeadCount > 0 ? HiddenSize / HeadCount : 0;

    /// <summary>
    /// Reads a Hugging Face <c>config.json</c> for a BERT model. Absent fields take HF's defaults; unknown fields are
    /// ignored. The result is not validated: call <see cref="Validate"/> (the model constructors do).
    /// </summary>
    /// <param name="json">The text of <c>config.json</c>.</param>
    /// <returns>The configuration.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="json"/> is null.</exception>
    /// <exception cref="InvalidDataException">The text is not a JSON object, or a field has the wrong type (the message names it and the value seen).</exception>
    public static BertConfig FromHuggingFaceJson(string json)
    {
        HuggingFaceJson config = HuggingFaceJson.Parse(json);
        var defaults = new BertConfig();
        IReadOnlyList<string>? labels = config.Labels();
        return new BertConfig
        {
            VocabularySize = config.Int("vocab_size", defaults.VocabularySize),
            HiddenSize = config.Int("hidden_size", defaults.HiddenSize),
            LayerCount = config.Int("num_hidden_layers", defaults.LayerCount),
            HeadCount = config.Int("num_attention_heads", defaults.HeadCount),
            IntermediateSize = config.Int("intermediate_size", defaults.IntermediateSize),
            HiddenActivation = config.String("hidden_act", defaults.HiddenActivation),
            HiddenDropout = config.Double("hidden_dropout_prob", defaults.HiddenDropout),
            AttentionDropout = config.Double("attention_probs_dropout_prob", defaults.AttentionDropout),
            MaxPositions = config.Int("max_position_embeddings", defaults.MaxPositions),
            TypeVocabularySize = config.Int("type_vocab_size", defaults.TypeVocabularySize),
            InitializerRange = config.Double("initializer_range", defaults.InitializerRange),
            LayerNormEpsilon = config.Double("layer_norm_eps", defaults.LayerNormEpsilon),
            PadTokenId = config.Has("pad_token_id") ? config.OptionalInt("pad_token_id") : defaults.PadTokenId,
            PositionEmbeddingType = config.String("position_embedding_type", defaults.PositionEmbeddingType),
            ClassifierDropout = config.OptionalDouble("classifier_dropout"),
            LabelCount = labels?.Count ?? config.Int("num_labels", defaults.LabelCount),
            Labels = labels,
            TieWordEmbeddings = config.Bool("tie_word_embeddings", defaults.TieWordEmbeddings),
        };
    }

    /// <summary>
    /// Writes this configuration as a Hugging Face <c>config.json</c> (<c>model_type</c> <c>bert</c>, HF field names)
    /// that <c>transformers.AutoConfig</c> and <see cref="FromHuggingFaceJson"/> read back unchanged.
    /// </summary>
    /// <param name="architecture">The HF class name written to <c>architectures</c>, e.g. <c>BertForMaskedLM</c>; null writes none.</param>
    /// <returns>The JSON text.</returns>
    public string ToHuggingFaceJson(string? architecture = null)
    {
        var labels = Labels ?? Enumerable.Range(0, ResolvedLabelCount).Select(i => "LABEL_" + i.ToString(CultureInfo.InvariantCulture)).ToArray();
        var (idToLabel, labelToId) = HuggingFaceJson.LabelMaps(labels);
        var json = new JsonObject
        {
            ["model_type"] = "bert",
        };
        if (architecture is not null)
        {
            json["architectures"] = new JsonArray(architecture);
        }

        json["vocab_size"] = VocabularySize;
        json["hidden_size"] = HiddenSize;
        json["num_hidden_layers"] = LayerCount;
        json["num_attention_heads"] = HeadCount;
        json["intermediate_size"] = IntermediateSize;
        json["hidden_act"] = HiddenActivation;
        json["hidden_dropout_prob"] = HiddenDropout;
        json["attention_probs_dropout_prob"] = AttentionDropout;
        json["max_position_embeddings"] = MaxPositions;
        json["type_vocab_size"] = TypeVocabularySize;
        json["initializer_range"] = InitializerRange;
        json["layer_norm_eps"] = LayerNormEpsilon;
        json["pad_token_id"] = PadTokenId;
        json["position_embedding_type"] = PositionEmbeddingType;
        json["classifier_dropout"] = ClassifierDropout;
        json["id2label"] = idToLabel;
        json["label2id"] = labelToId;
        json["tie_word_embeddings"] = TieWordEmbeddings;
        return HuggingFaceJson.Write(json);
    }

    /// <summary>
    /// Checks that the values describe a buildable model, so that a bad configuration fails with a clear message
    /// instead of a shape error deep inside libtorch.
    /// </summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names the property, the value seen and how to fix it.</exception>
    public void Validate()
    {
        RequirePositive(VocabularySize, nameof(VocabularySize));
        RequirePositive(HiddenSize, nameof(HiddenSize));
        RequirePositive(LayerCount, nameof(LayerCount));
        RequirePositive(HeadCount, nameof(HeadCount));
        RequirePositive(IntermediateSize, nameof(IntermediateSize));
        RequirePositive(MaxPositions, nameof(MaxPositions));
        RequirePositive(TypeVocabularySize, nameof(TypeVocabularySize));
        if (HiddenSize % HeadCount != 0)
        {
            throw new ArgumentException(
                $"BertConfig.{nameof(HiddenSize)} ({HiddenSize}) must be divisible by {nameof(HeadCount)} ({HeadCount}) so that every attention " +
                $"head gets the same width; choose a {nameof(HiddenSize)} that is a multiple of {nameof(HeadCount)}.",
                nameof(HiddenSize));
        }

        if (!BertActivations.IsSupported(HiddenActivation))
        {
            throw new ArgumentException(
                $"BertConfig.{nameof(HiddenActivation)} ('{HiddenActivation}') is not supported; use one of {string.Join(", ", BertActivations.Names)}.",
                nameof(HiddenActivation));
        }

        if (PositionEmbeddingType != "absolute")
        {
            throw new ArgumentException(
                $"BertConfig.{nameof(PositionEmbeddingType)} ('{PositionEmbeddingType}') is not supported; only 'absolute' position embeddings are implemented.",
                nameof(PositionEmbeddingType));
        }

        RequireProbability(HiddenDropout, nameof(HiddenDropout));
        RequireProbability(AttentionDropout, nameof(AttentionDropout));
        if (ClassifierDropout is { } classifierDropout)
        {
            RequireProbability(classifierDropout, nameof(ClassifierDropout));
        }

        if (!(LayerNormEpsilon > 0) || double.IsInfinity(LayerNormEpsilon))
        {
            throw new ArgumentException(
                $"BertConfig.{nameof(LayerNormEpsilon)} ({Format(LayerNormEpsilon)}) must be a finite value greater than 0; use the checkpoint's value (1e-12 for BERT).",
                nameof(LayerNormEpsilon));
        }

        if (!(InitializerRange >= 0) || double.IsInfinity(InitializerRange))
        {
            throw new ArgumentException(
                $"BertConfig.{nameof(InitializerRange)} ({Format(InitializerRange)}) must be a finite standard deviation >= 0; BERT uses 0.02.",
                nameof(InitializerRange));
        }

        if (PadTokenId is { } pad && (pad < 0 || pad >= VocabularySize))
        {
            throw new ArgumentException(
                $"BertConfig.{nameof(PadTokenId)} ({pad}) must be a token id in [0, {VocabularySize}) or null.",
                nameof(PadTokenId));
        }

        if (ResolvedLabelCount <= 0)
        {
            throw new ArgumentException(
                $"BertConfig.{nameof(LabelCount)} ({ResolvedLabelCount}) must be at least 1 (1 for regression, 2 or more for classification).",
                nameof(LabelCount));
        }

        if (Labels is not null && Labels.Distinct(StringComparer.Ordinal).Count() != Labels.Count)
        {
            throw new ArgumentException(
                $"BertConfig.{nameof(Labels)} names a class twice ({string.Join(", ", Labels.GroupBy(l => l).Where(g => g.Count() > 1).Select(g => "'" + g.Key + "'"))}); every class needs its own name.",
                nameof(Labels));
        }
    }

    private static void RequirePositive(int value, string name)
    {
        if (value <= 0)
        {
            throw new ArgumentException($"BertConfig.{name} ({value}) must be greater than 0; set it to a positive value.", name);
        }
    }

    private static void RequireProbability(double value, string name)
    {
        if (!(value >= 0 && value < 1))
        {
            throw new ArgumentException($"BertConfig.{name} ({Format(value)}) must be a dropout probability in [0, 1); use 0 to disable dropout.", name);
        }
    }

    private static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
