using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;

namespace NicheTune.Models;

/// <summary>
/// Hyper-parameters of a Llama-family causal language model (Llama, Mistral, Qwen2), mirroring Hugging Face's
/// <c>config.json</c> so that a checkpoint's configuration maps one-to-one onto this type (the JSON name of each
/// field is given on every property).
/// </summary>
/// <remarks>
/// <para>Supported <c>config.json</c> fields (everything else is ignored, except the unsupported features below):
/// <c>model_type</c> (<c>llama</c>, <c>mistral</c>, <c>qwen2</c>), <c>vocab_size</c>, <c>hidden_size</c>,
/// <c>intermediate_size</c>, <c>num_hidden_layers</c>, <c>num_attention_heads</c>, <c>num_key_value_heads</c>,
/// <c>head_dim</c>, <c>max_position_embeddings</c>, <c>rms_norm_eps</c>, <c>rope_theta</c> (or a default-type
/// <c>rope_parameters</c>), <c>tie_word_embeddings</c>, <c>attention_bias</c>, <c>mlp_bias</c>,
/// <c>attention_dropout</c>, <c>hidden_act</c> (<c>silu</c> only), <c>initializer_range</c>, <c>torch_dtype</c>
/// (or <c>dtype</c>), <c>bos_token_id</c>, <c>eos_token_id</c> (a number or a list), <c>pad_token_id</c>.</para>
/// <para>Unsupported, rejected with an <see cref="ArgumentException"/> naming the field: a non-null
/// <c>rope_scaling</c> (Llama 3.1 "llama3", linear, dynamic, YaRN…), an active sliding window (Mistral's
/// <c>sliding_window</c> below <c>max_position_embeddings</c>, Qwen2's <c>use_sliding_window: true</c>), any
/// <c>hidden_act</c> other than <c>silu</c>. Qwen2 checkpoints always have biases on q/k/v (not o), which
/// <see cref="ModelType"/> <c>qwen2</c> implies.</para>
/// <para>The type is immutable: build a new instance with an object initializer to change a value. Call
/// <see cref="Validate"/> (the model constructor does) to catch inconsistent values before any tensor is allocated.</para>
/// </remarks>
public sealed class LlamaConfig
{
    /// <summary>The <c>model_type</c> values this implementation understands.</summary>
    public static IReadOnlyList<string> SupportedModelTypes { get; } = ["llama", "mistral", "qwen2"];

    /// <summary>The architecture family (HF <c>model_type</c>): <c>llama</c>, <c>mistral</c> or <c>qwen2</c>. Decides the bias layout and the <c>architectures</c> entry written to JSON.</summary>
    /// <value>Default <c>llama</c>.</value>
    public string ModelType { get; init; } = "llama";

    /// <summary>Number of token ids (HF <c>vocab_size</c>): rows of the embedding, width of the logits.</summary>
    /// <value>Default 32000.</value>
    public int VocabularySize { get; init; } = 32000;

    /// <summary>Width of the residual stream (HF <c>hidden_size</c>).</summary>
    /// <value>Default 4096.</value>
    public int HiddenSize { get; init; } = 4096;

    /// <summary>Width of the SwiGLU feed-forward layer (HF <c>intermediate_size</c>).</summary>
    /// <value>Default 11008.</value>
    public int IntermediateSize { get; init; } = 11008;

    /// <summary>Number of decoder layers (HF <c>num_hidden_layers</c>).</summary>
    /// <value>Default 32.</value>
    public int LayerCount { get; init; } = 32;

    /// <summary>Number of query heads (HF <c>num_attention_heads</c>).</summary>
    /// <value>Default 32.</value>
    public int HeadCount { get; init; } = 32;

    /// <summary>
    /// Number of key/value heads (HF <c>num_key_value_heads</c>) for grouped-query attention; must divide
    /// <see cref="HeadCount"/>. <see langword="null"/> means <see cref="HeadCount"/> (ordinary multi-head attention).
    /// </summary>
    /// <value>Default <see langword="null"/>.</value>
    public int? KeyValueHeadCount { get; init; }

    /// <summary>Width of each head (HF <c>head_dim</c>); <see langword="null"/> means <see cref="HiddenSize"/> / <see cref="HeadCount"/>. Must be even (rotary embeddings rotate pairs).</summary>
    /// <value>Default <see langword="null"/>.</value>
    public int? HeadDimension { get; init; }

    /// <summary>Longest sequence the model accepts (HF <c>max_position_embeddings</c>).</summary>
    /// <value>Default 2048.</value>
    public int ContextLength { get; init; } = 2048;

    /// <summary>Epsilon of every RMSNorm (HF <c>rms_norm_eps</c>); keep the checkpoint's value.</summary>
    /// <value>Default 1e-6.</value>
    public double RmsNormEpsilon { get; init; } = 1e-6;

    /// <summary>Base of the rotary position embedding frequencies (HF <c>rope_theta</c>).</summary>
    /// <value>Default 10000.</value>
    public double RopeTheta { get; init; } = 10000;

    /// <summary>Whether the output projection reuses the token embedding (HF <c>tie_word_embeddings</c>); when tied there is no <c>lm_head.weight</c> parameter.</summary>
    /// <value>Default <see langword="false"/>.</value>
    public bool TieWordEmbeddings { get; init; }

    /// <summary>Whether q, k, v and o projections have biases (HF Llama's <c>attention_bias</c>). Not used by <c>mistral</c> or <c>qwen2</c>.</summary>
    /// <value>Default <see langword="false"/>.</value>
    public bool AttentionBias { get; init; }

    /// <summary>Whether the gate, up and down projections have biases (HF Llama's <c>mlp_bias</c>). Not used by <c>mistral</c> or <c>qwen2</c>.</summary>
    /// <value>Default <see langword="false"/>.</value>
    public bool MlpBias { get; init; }

    /// <summary>Dropout on the attention probabilities in training (HF <c>attention_dropout</c>).</summary>
    /// <value>Default 0.</value>
    public double AttentionDropout { get; init; }

    /// <summary>The feed-forward activation (HF <c>hidden_act</c>); only <c>silu</c> (SwiGLU) is supported.</summary>
    /// <value>Default <c>silu</c>.</value>
    public string HiddenActivation { get; init; } = "silu";

    /// <summary>Standard deviation of the normal initialization of embeddings and projections (HF <c>initializer_range</c>).</summary>
    /// <value>Default 0.02.</value>
    public double InitializerRange { get; init; } = 0.02;

    /// <summary>The dtype the checkpoint was saved in (HF <c>torch_dtype</c>, e.g. <c>bfloat16</c>); informational, kept for the JSON round trip.</summary>
    /// <value>Default <see langword="null"/>.</value>
    public string? TorchDtype { get; init; }

    /// <summary>Beginning-of-sequence token id (HF <c>bos_token_id</c>).</summary>
    /// <value>Default 1.</value>
    public int? BosTokenId { get; init; } = 1;

    /// <summary>End-of-sequence token ids (HF <c>eos_token_id</c>, a number or a list); good stop tokens for generation.</summary>
    /// <value>Default [2].</value>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [2];

    /// <summary>Padding token id (HF <c>pad_token_id</c>); its embedding row starts at zero, as in HF.</summary>
    /// <value>Default <see langword="null"/>.</value>
    public int? PadTokenId { get; init; }

    /// <summary>The number of key/value heads actually used.</summary>
    public int ResolvedKeyValueHeadCount => KeyValueHeadCount ?? HeadCount;

    /// <summary>The head width actually used: <see cref="HeadDimension"/> or <see cref="HiddenSize"/> / <see cref="HeadCount"/> (0 while <see cref="HeadCount"/> is not positive).</summary>
    public int ResolvedHeadDimension => HeadDimension ?? (HeadCount > 0 ? HiddenSize / HeadCount : 0);

    /// <summary>Whether q, k and v projections have a bias: with <see cref="AttentionBias"/>, and always for <c>qwen2</c>.</summary>
    public bool HasQueryKeyValueBias => AttentionBias || ModelType == "qwen2";

    /// <summary>Whether the o projection has a bias (only with <see cref="AttentionBias"/>).</summary>
    public bool HasOutputBias => AttentionBias;

    /// <summary>
    /// Checks that the values describe a buildable model, so a bad configuration fails with a clear message
    /// instead of a shape error inside libtorch.
    /// </summary>
    /// <exception cref="ArgumentException">A value is out of range or unsupported; the message names the property, the value and the fix.</exception>
    public void Validate()
    {
        if (!SupportedModelTypes.Contains(ModelType))
        {
            throw new ArgumentException(
                $"LlamaConfig.{nameof(ModelType)} ('{ModelType}') is not supported; use one of {string.Join(", ", SupportedModelTypes)}.",
                nameof(ModelType));
        }

        RequirePositive(VocabularySize, nameof(VocabularySize));
        RequirePositive(HiddenSize, nameof(HiddenSize));
        RequirePositive(IntermediateSize, nameof(IntermediateSize));
        RequirePositive(LayerCount, nameof(LayerCount));
        RequirePositive(HeadCount, nameof(HeadCount));
        RequirePositive(ContextLength, nameof(ContextLength));

        if (KeyValueHeadCount is { } kv && (kv <= 0 || HeadCount % kv != 0))
        {
            throw new ArgumentException(
                $"LlamaConfig.{nameof(KeyValueHeadCount)} ({kv}) must be positive and divide {nameof(HeadCount)} ({HeadCount}) so that each key/value head " +
                $"serves the same number of query heads; use a divisor of {HeadCount} or null for {HeadCount}.",
                nameof(KeyValueHeadCount));
        }

        if (HeadDimension is { } hd)
        {
            if (hd <= 0 || hd % 2 != 0)
            {
                throw new ArgumentException(
                    $"LlamaConfig.{nameof(HeadDimension)} ({hd}) must be a positive even number (rotary embeddings rotate pairs of features); use the checkpoint's head_dim.",
                    nameof(HeadDimension));
            }
        }
        else if (HiddenSize % HeadCount != 0 || (HiddenSize / HeadCount) % 2 != 0)
        {
            throw new ArgumentException(
                $"LlamaConfig.{nameof(HiddenSize)} ({HiddenSize}) / {nameof(HeadCount)} ({HeadCount}) must be a whole, even head width; " +
                $"choose a {nameof(HiddenSize)} that is an even multiple of {nameof(HeadCount)} or set {nameof(HeadDimension)}.",
                nameof(HiddenSize));
        }

        if (!(RmsNormEpsilon > 0) || double.IsInfinity(RmsNormEpsilon))
        {
            throw new ArgumentException(
                $"LlamaConfig.{nameof(RmsNormEpsilon)} ({Format(RmsNormEpsilon)}) must be a finite value greater than 0; use the checkpoint's rms_norm_eps (1e-6 or 1e-5).",
                nameof(RmsNormEpsilon));
        }

        if (!(RopeTheta > 0) || double.IsInfinity(RopeTheta))
        {
            throw new ArgumentException(
                $"LlamaConfig.{nameof(RopeTheta)} ({Format(RopeTheta)}) must be a finite value greater than 0; use the checkpoint's rope_theta (10000 for Llama 2).",
                nameof(RopeTheta));
        }

        if (!(AttentionDropout >= 0 && AttentionDropout < 1))
        {
            throw new ArgumentException(
                $"LlamaConfig.{nameof(AttentionDropout)} ({Format(AttentionDropout)}) must be a probability in [0, 1); use 0 to disable it.",
                nameof(AttentionDropout));
        }

        if (!(InitializerRange >= 0) || double.IsInfinity(InitializerRange))
        {
            throw new ArgumentException(
                $"LlamaConfig.{nameof(InitializerRange)} ({Format(InitializerRange)}) must be a finite standard deviation >= 0; Llama uses 0.02.",
                nameof(InitializerRange));
        }

        if (!string.Equals(HiddenActivation, "silu", StringComparison.Ordinal))
        {
            throw new ArgumentException(
                $"LlamaConfig.{nameof(HiddenActivation)} (hidden_act '{HiddenActivation}') is not supported; only 'silu' (SwiGLU) is implemented.",
                nameof(HiddenActivation));
        }

        if (AttentionBias && ModelType != "llama")
        {
            throw new ArgumentException(
                $"LlamaConfig.{nameof(AttentionBias)} is a 'llama' field but {nameof(ModelType)} is '{ModelType}'; " +
                "qwen2 implies q/k/v biases and mistral has none, so leave it false.",
                nameof(AttentionBias));
        }

        if (MlpBias && ModelType != "llama")
        {
            throw new ArgumentException(
                $"LlamaConfig.{nameof(MlpBias)} is a 'llama' field but {nameof(ModelType)} is '{ModelType}', whose MLP has no biases; leave it false.",
                nameof(MlpBias));
        }

        ArgumentNullException.ThrowIfNull(EosTokenIds, nameof(EosTokenIds));
        foreach (var (id, name) in EosTokenIds.Select(id => ((int?)id, nameof(EosTokenIds))).Append((BosTokenId, nameof(BosTokenId))).Append((PadTokenId, nameof(PadTokenId))))
        {
            if (id is { } value && (value < 0 || value >= VocabularySize))
            {
                throw new ArgumentException(
                    $"LlamaConfig.{name} contains {value}, outside the vocabulary [0, {VocabularySize}); use an id the tokenizer produces or null.",
                    name);
            }
        }
    }

    /// <summary>
    /// Reads a Hugging Face <c>config.json</c> (Llama, Mistral or Qwen2) and validates the result; fields this
    /// type does not model are ignored unless they switch on an unsupported feature.
    /// </summary>
    /// <param name="json">The text of <c>config.json</c>.</param>
    /// <returns>The configuration, already validated.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="json"/> is null.</exception>
    /// <exception cref="ArgumentException">
    /// The JSON is malformed, a field has the wrong type, a feature is unsupported (non-null <c>rope_scaling</c>,
    /// an active sliding window, <c>hidden_act</c> other than <c>silu</c>), or the values fail <see cref="Validate"/>.
    /// </exception>
    public static LlamaConfig FromHuggingFaceJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException exception)
        {
            throw new ArgumentException($"config.json is not valid JSON: {exception.Message}", nameof(json), exception);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new ArgumentException($"config.json must be a JSON object but is a {root.ValueKind}.", nameof(json));
            }

            var reader = new FieldReader(root);
            var defaults = new LlamaConfig();
            var modelType = reader.String("model_type") ?? "llama";
            var contextLength = reader.Int("max_position_embeddings") ?? defaults.ContextLength;

            RejectUnsupported(root, modelType, contextLength);

            var ropeTheta = reader.Double("rope_theta") ?? RopeThetaFromParameters(root) ?? defaults.RopeTheta;
            var config = new LlamaConfig
            {
                ModelType = modelType,
                VocabularySize = reader.Int("vocab_size") ?? defaults.VocabularySize,
                HiddenSize = reader.Int("hidden_size") ?? defaults.HiddenSize,
                IntermediateSize = reader.Int("intermediate_size") ?? defaults.IntermediateSize,
                LayerCount = reader.Int("num_hidden_layers") ?? defaults.LayerCount,
                HeadCount = reader.Int("num_attention_heads") ?? defaults.HeadCount,
                KeyValueHeadCount = reader.Int("num_key_value_heads"),
                HeadDimension = reader.Int("head_dim"),
                ContextLength = contextLength,
                RmsNormEpsilon = reader.Double("rms_norm_eps") ?? defaults.RmsNormEpsilon,
                RopeTheta = ropeTheta,
                TieWordEmbeddings = reader.Bool("tie_word_embeddings") ?? defaults.TieWordEmbeddings,
                AttentionBias = reader.Bool("attention_bias") ?? false,
                MlpBias = reader.Bool("mlp_bias") ?? false,
                AttentionDropout = reader.Double("attention_dropout") ?? 0,
                HiddenActivation = reader.String("hidden_act") ?? defaults.HiddenActivation,
                InitializerRange = reader.Double("initializer_range") ?? defaults.InitializerRange,
                TorchDtype = reader.String("torch_dtype") ?? reader.String("dtype"),
                BosTokenId = reader.Has("bos_token_id") ? reader.Int("bos_token_id") : defaults.BosTokenId,
                EosTokenIds = reader.Has("eos_token_id") ? reader.IntOrList("eos_token_id") : defaults.EosTokenIds,
                PadTokenId = reader.Int("pad_token_id"),
            };

            if (!string.Equals(config.HiddenActivation, "silu", StringComparison.Ordinal))
            {
                throw new ArgumentException(
                    $"config.json field 'hidden_act' is '{config.HiddenActivation}', which is not supported; only 'silu' (SwiGLU) is implemented.",
                    nameof(json));
            }

            config.Validate();
            return config;
        }
    }

    /// <summary>
    /// Writes this configuration as a Hugging Face <c>config.json</c> (with <c>architectures</c> and <c>model_type</c>)
    /// that <c>transformers</c> and <see cref="FromHuggingFaceJson"/> read back to the same values.
    /// </summary>
    /// <returns>Indented JSON text.</returns>
    /// <exception cref="ArgumentException">The configuration fails <see cref="Validate"/>.</exception>
    public string ToHuggingFaceJson()
    {
        Validate();
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            writer.WriteStartArray("architectures");
            writer.WriteStringValue(ModelType switch
            {
                "qwen2" => "Qwen2ForCausalLM",
                "mistral" => "MistralForCausalLM",
                _ => "LlamaForCausalLM",
            });
            writer.WriteEndArray();
            writer.WriteString("model_type", ModelType);
            writer.WriteNumber("vocab_size", VocabularySize);
            writer.WriteNumber("hidden_size", HiddenSize);
            writer.WriteNumber("intermediate_size", IntermediateSize);
            writer.WriteNumber("num_hidden_layers", LayerCount);
            writer.WriteNumber("num_attention_heads", HeadCount);
            writer.WriteNumber("num_key_value_heads", ResolvedKeyValueHeadCount);
            if (HeadDimension is { } hd)
            {
                writer.WriteNumber("head_dim", hd);
            }

            writer.WriteNumber("max_position_embeddings", ContextLength);
            writer.WriteNumber("rms_norm_eps", RmsNormEpsilon);
            writer.WriteNumber("rope_theta", RopeTheta);
            writer.WriteNull("rope_scaling");
            writer.WriteBoolean("tie_word_embeddings", TieWordEmbeddings);
            if (ModelType == "llama")
            {
                writer.WriteBoolean("attention_bias", AttentionBias);
                writer.WriteBoolean("mlp_bias", MlpBias);
            }

            if (ModelType == "mistral")
            {
                writer.WriteNull("sliding_window");
            }
            else if (ModelType == "qwen2")
            {
                writer.WriteBoolean("use_sliding_window", false);
            }

            writer.WriteNumber("attention_dropout", AttentionDropout);
            writer.WriteString("hidden_act", HiddenActivation);
            writer.WriteNumber("initializer_range", InitializerRange);
            if (TorchDtype is not null)
            {
                writer.WriteString("torch_dtype", TorchDtype);
            }

            WriteNullableInt(writer, "bos_token_id", BosTokenId);
            if (EosTokenIds.Count == 1)
            {
                writer.WriteNumber("eos_token_id", EosTokenIds[0]);
            }
            else if (EosTokenIds.Count == 0)
            {
                writer.WriteNull("eos_token_id");
            }
            else
            {
                writer.WriteStartArray("eos_token_id");
                foreach (var id in EosTokenIds)
                {
                    writer.WriteNumberValue(id);
                }

                writer.WriteEndArray();
            }

            WriteNullableInt(writer, "pad_token_id", PadTokenId);
            writer.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void WriteNullableInt(Utf8JsonWriter writer, string name, int? value)
    {
        if (value is { } v)
        {
            writer.WriteNumber(name, v);
        }
        else
        {
            writer.WriteNull(name);
        }
    }

    private static void RejectUnsupported(JsonElement root, string modelType, int contextLength)
    {
        if (root.TryGetProperty("rope_scaling", out var scaling) && scaling.ValueKind != JsonValueKind.Null)
        {
            var kind = scaling.ValueKind == JsonValueKind.Object &&
                (scaling.TryGetProperty("rope_type", out var type) || scaling.TryGetProperty("type", out type)) && type.ValueKind == JsonValueKind.String
                ? $" (rope_type '{type.GetString()}')"
                : string.Empty;
            throw new ArgumentException(
                $"config.json field 'rope_scaling'{kind} is {Describe(scaling)}, which is not supported: only plain rotary embeddings " +
                "(rope_scaling: null) are implemented, so this checkpoint (e.g. Llama 3.1+, long-context variants) would compute wrong positions.",
                "json");
        }

        if (root.TryGetProperty("rope_parameters", out var parameters) && parameters.ValueKind == JsonValueKind.Object &&
            parameters.TryGetProperty("rope_type", out var ropeType) && ropeType.ValueKind == JsonValueKind.String && ropeType.GetString() != "default")
        {
            throw new ArgumentException(
                $"config.json field 'rope_parameters.rope_type' is '{ropeType.GetString()}', which is not supported; only the default rotary embedding is implemented.",
                "json");
        }

        if (modelType == "qwen2" && root.TryGetProperty("use_sliding_window", out var useWindow) && useWindow.ValueKind == JsonValueKind.True)
        {
            throw new ArgumentException(
                "config.json field 'use_sliding_window' is true, which is not supported: only full causal attention is implemented; " +
                "set it to false only if you never exceed the window.",
                "json");
        }

        if (modelType == "mistral" && root.TryGetProperty("sliding_window", out var window) && window.ValueKind == JsonValueKind.Number &&
            window.TryGetInt64(out var size) && size < contextLength)
        {
            throw new ArgumentException(
                $"config.json field 'sliding_window' is {size}, below max_position_embeddings ({contextLength}): sliding-window attention is " +
                "not supported, only full causal attention. Set sliding_window to null (or lower max_position_embeddings to it) if your sequences never exceed the window.",
                "json");
        }
    }

    private static double? RopeThetaFromParameters(JsonElement root) =>
        root.TryGetProperty("rope_parameters", out var parameters) && parameters.ValueKind == JsonValueKind.Object &&
        parameters.TryGetProperty("rope_theta", out var theta) && theta.ValueKind == JsonValueKind.Number
            ? theta.GetDouble()
            : null;

    private static string Describe(JsonElement element)
    {
        var text = element.GetRawText();
        return text.Length <= 120 ? text : text[..120] + "…";
    }

    private static void RequirePositive(int value, string name)
    {
        if (value <= 0)
        {
            throw new ArgumentException($"LlamaConfig.{name} ({value}) must be greater than 0; set it to a positive value.", name);
        }
    }

    private static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>Typed reads of optional fields whose errors name the field and the value seen.</summary>
    private readonly struct FieldReader(JsonElement root)
    {
        public bool Has(string name) => root.TryGetProperty(name, out _);

        public int? Int(string name)
        {
            if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
            {
                return null;
            }

            if (value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var number))
            {
                return number;
            }

            throw WrongType(name, value, "an integer");
        }

        public double? Double(string name)
        {
            if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
            {
                return null;
            }

            return value.ValueKind == JsonValueKind.Number ? value.GetDouble() : throw WrongType(name, value, "a number");
        }

        public bool? Bool(string name)
        {
            if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
            {
                return null;
            }

            return value.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw WrongType(name, value, "true or false"),
            };
        }

        public string? String(string name)
        {
            if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
            {
                return null;
            }

            return value.ValueKind == JsonValueKind.String ? value.GetString() : throw WrongType(name, value, "a string");
        }

        public IReadOnlyList<int> IntOrList(string name)
        {
            var value = root.GetProperty(name);
            switch (value.ValueKind)
            {
                case JsonValueKind.Null:
                    return [];
                case JsonValueKind.Number when value.TryGetInt32(out var single):
                    return [single];
                case JsonValueKind.Array:
                    var ids = new List<int>();
                    foreach (var item in value.EnumerateArray())
                    {
                        if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt32(out var id))
                        {
                            throw WrongType(name, value, "an integer or a list of integers");
                        }

                        ids.Add(id);
                    }

                    return ids;
                default:
                    throw WrongType(name, value, "an integer or a list of integers");
            }
        }

        private static ArgumentException WrongType(string name, JsonElement value, string expected) =>
            new($"config.json field '{name}' must be {expected} but is {Describe(value)}.", "json");
    }
}
