using System.Text.Json.Nodes;

namespace NicheTune.Models;

public sealed partial class Gpt2Config
{
    private static readonly string[] SupportedActivations = ["gelu_new", "gelu_pytorch_tanh"];

    /// <summary>
    /// Reads a Hugging Face GPT-2 <c>config.json</c> (<c>n_embd</c>, <c>n_layer</c>, <c>n_head</c>, <c>n_positions</c>,
    /// <c>vocab_size</c>, <c>n_inner</c>, <c>layer_norm_epsilon</c>, the three dropouts, <c>tie_word_embeddings</c>…).
    /// Absent fields take HF's defaults; unknown fields are ignored. The result is not validated: call
    /// <see cref="Validate"/> (the model constructor does).
    /// </summary>
    /// <param name="json">The text of <c>config.json</c>.</param>
    /// <returns>The configuration.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="json"/> is null.</exception>
    /// <exception cref="InvalidDataException">The text is not a JSON object, or a field has the wrong type (the message names it and the value seen).</exception>
    /// <exception cref="NotSupportedException">
    /// The config asks for a variant this implementation does not compute: an activation other than the tanh GELU,
    /// unscaled or layer-scaled attention, or cross-attention.
    /// </exception>
    public static Gpt2Config FromHuggingFaceJson(string json)
    {
        HuggingFaceJson config = HuggingFaceJson.Parse(json);
        var defaults = new Gpt2Config();
        string activation = config.String("activation_function", "gelu_new");
        if (Array.IndexOf(SupportedActivations, activation) < 0)
        {
            throw new NotSupportedException(
                $"config.json field 'activation_function' is '{activation}', but Gpt2LMHeadModel computes only the tanh-approximated GELU " +
                $"({string.Join(" or ", SupportedActivations)}), which every released GPT-2 uses; loading it would silently change the outputs.");
        }

        RequireFlag(config, "scale_attn_weights", expected: true);
        RequireFlag(config, "scale_attn_by_inverse_layer_idx", expected: false);
        RequireFlag(config, "add_cross_attention", expected: false);
        return new Gpt2Config
        {
            VocabularySize = config.Int("vocab_size", defaults.VocabularySize),
            ContextLength = config.Int("n_positions", defaults.ContextLength),
            EmbeddingSize = config.Int("n_embd", defaults.EmbeddingSize),
            LayerCount = config.Int("n_layer", defaults.LayerCount),
            HeadCount = config.Int("n_head", defaults.HeadCount),
            InnerSize = config.OptionalInt("n_inner"),
            ResidualDropout = config.Double("resid_pdrop", defaults.ResidualDropout),
            EmbeddingDropout = config.Double("embd_pdrop", defaults.EmbeddingDropout),
            AttentionDropout = config.Double("attn_pdrop", defaults.AttentionDropout),
            LayerNormEpsilon = config.Double("layer_norm_epsilon", defaults.LayerNormEpsilon),
            InitializerRange = config.Double("initializer_range", defaults.InitializerRange),
            TieWordEmbeddings = config.Bool("tie_word_embeddings", defaults.TieWordEmbeddings),
        };
    }

    /// <summary>
    /// Writes this configuration as a Hugging Face GPT-2 <c>config.json</c> (<c>model_type</c> <c>gpt2</c>, HF field
    /// names) that <c>transformers.AutoConfig</c> and <see cref="FromHuggingFaceJson"/> read back unchanged.
    /// </summary>
    /// <param name="architecture">The HF class name written to <c>architectures</c>; null writes none.</param>
    /// <returns>The JSON text.</returns>
    public string ToHuggingFaceJson(string? architecture = "GPT2LMHeadModel")
    {
        var json = new JsonObject
        {
            ["model_type"] = "gpt2",
        };
        if (architecture is not null)
        {
            json["architectures"] = new JsonArray(architecture);
        }

        json["vocab_size"] = VocabularySize;
        json["n_positions"] = ContextLength;
        // Older readers take the context length from n_ctx; it always equals n_positions.
        json["n_ctx"] = ContextLength;
        json["n_embd"] = EmbeddingSize;
        json["n_layer"] = LayerCount;
        json["n_head"] = HeadCount;
        json["n_inner"] = InnerSize;
        json["activation_function"] = "gelu_new";
        json["resid_pdrop"] = ResidualDropout;
        json["embd_pdrop"] = EmbeddingDropout;
        json["attn_pdrop"] = AttentionDropout;
        json["layer_norm_epsilon"] = LayerNormEpsilon;
        json["initializer_range"] = InitializerRange;
        json["scale_attn_weights"] = true;
        json["tie_word_embeddings"] = TieWordEmbeddings;
        return HuggingFaceJson.Write(json);
    }

    private static void RequireFlag(HuggingFaceJson config, string name, bool expected)
    {
        if (config.Bool(name, expected) != expected)
        {
            throw new NotSupportedException(
                $"config.json field '{name}' is {(!expected).ToString().ToLowerInvariant()}, but Gpt2LMHeadModel implements only {name} = " +
                $"{expected.ToString().ToLowerInvariant()} (as in every released GPT-2); loading it would silently change the outputs.");
        }
    }
}
