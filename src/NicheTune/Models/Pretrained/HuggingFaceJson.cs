using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace NicheTune.Models;

/// <summary>
/// Typed reads of a Hugging Face <c>config.json</c>: absent or <c>null</c> fields take the caller's default (the
/// default of the matching HF config class), fields of the wrong type fail with the field's name and the value seen.
/// Unknown fields are ignored, as Hugging Face does, because every config carries many that do not shape the weights.
/// </summary>
internal sealed class HuggingFaceJson
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    private readonly JsonObject _root;

    private HuggingFaceJson(JsonObject root) => _root = root;

    public static HuggingFaceJson Parse(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"config.json is not valid JSON: {ex.Message}", ex);
        }

        if (node is not JsonObject root)
        {
            throw new InvalidDataException($"config.json must hold a JSON object but holds {(node is null ? "null" : node.GetValueKind().ToString())}.");
        }

        return new HuggingFaceJson(root);
    }

    /// <summary>Serializes a config object the way <c>save_pretrained</c> does: indented, one field per line.</summary>
    public static string Write(JsonObject config) => config.ToJsonString(Indented) + "\n";

    public string? ModelType => OptionalString("model_type");

    /// <summary>The <c>architectures</c> list (HF class names such as <c>BertForMaskedLM</c>); empty when absent.</summary>
    public IReadOnlyList<string> Architectures
    {
        get
        {
            JsonNode? node = _root["architectures"];
            if (node is null)
            {
                return [];
            }

            if (node is not JsonArray array || array.Any(a => a is not JsonValue v || !v.TryGetValue<string>(out _)))
            {
                throw Wrong("architectures", "a list of class names", node);
            }

            return array.Select(a => a!.GetValue<string>()).ToArray();
        }
    }

    public bool Has(string name) => _root.ContainsKey(name);

    public int Int(string name, int fallback) => OptionalInt(name) ?? fallback;

    public int? OptionalInt(string name)
    {
        JsonNode? node = _root[name];
        if (node is null)
        {
            return null;
        }

        if (node is JsonValue value && value.TryGetValue(out int result))
        {
            return result;
        }

        // Python writes 12.0 for a float-typed integer field; accept it when it is whole.
        if (node is JsonValue dv && dv.TryGetValue(out double d) && d == Math.Floor(d) && d >= int.MinValue && d <= int.MaxValue)
        {
            return (int)d;
        }

        throw Wrong(name, "a whole number", node);
    }

    public double Double(string name, double fallback) => OptionalDouble(name) ?? fallback;

    public double? OptionalDouble(string name)
    {
        JsonNode? node = _root[name];
        if (node is null)
        {
            return null;
        }

        if (node is JsonValue value && value.TryGetValue(out double result))
        {
            return result;
        }

        throw Wrong(name, "a number", node);
    }

    public bool Bool(string name, bool fallback)
    {
        JsonNode? node = _root[name];
        if (node is null)
        {
            return fallback;
        }

        if (node is JsonValue value && value.TryGetValue(out bool result))
        {
            return result;
        }

        throw Wrong(name, "true or false", node);
    }

    public string String(string name, string fallback) => OptionalString(name) ?? fallback;

    public string? OptionalString(string name)
    {
        JsonNode? node = _root[name];
        if (node is null)
        {
            return null;
        }

        if (node is JsonValue value && value.TryGetValue(out string? result))
        {
            return result;
        }

        throw Wrong(name, "a string", node);
    }

    /// <summary>
    /// Reads <c>id2label</c> (an object from "0", "1", … to names) as a list ordered by id; null when absent.
    /// </summary>
    public IReadOnlyList<string>? Labels()
    {
        JsonNode? node = _root["id2label"];
        if (node is null)
        {
            return null;
        }

        if (node is not JsonObject map)
        {
            throw Wrong("id2label", "an object from class ids to names", node);
        }

        var labels = new string[map.Count];
        foreach ((string key, JsonNode? value) in map)
        {
            if (!int.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out int id) || id >= labels.Length
                || value is not JsonValue v || !v.TryGetValue(out string? label) || labels[id] is not null)
            {
                throw Wrong("id2label", $"an object whose keys are the ids 0..{labels.Length - 1}, each naming one class", node);
            }

            labels[id] = label!;
        }

        return labels;
    }

    /// <summary>Builds the <c>id2label</c> and <c>label2id</c> objects for <paramref name="labels"/>.</summary>
    public static (JsonObject IdToLabel, JsonObject LabelToId) LabelMaps(IReadOnlyList<string> labels)
    {
        var idToLabel = new JsonObject();
        var labelToId = new JsonObject();
        for (int i = 0; i < labels.Count; i++)
        {
            idToLabel[i.ToString(CultureInfo.InvariantCulture)] = labels[i];
            labelToId[labels[i]] = i;
        }

        return (idToLabel, labelToId);
    }

    private static InvalidDataException Wrong(string name, string expected, JsonNode node)
        => new($"config.json field '{name}' must be {expected} but is {node.ToJsonString()}; fix the value or remove the field to use the default.");
}
