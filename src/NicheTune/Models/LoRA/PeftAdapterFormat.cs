using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Models;

/// <summary>
/// PEFT's on-disk adapter layout: <c>adapter_config.json</c> (a <c>LoraConfig</c>, keys sorted as PEFT writes them) and
/// <c>adapter_model.safetensors</c> with keys prefixed <c>base_model.model.</c> and without the adapter name.
/// </summary>
internal static class PeftAdapterFormat
{
    public const string ConfigFile = "adapter_config.json";
    public const string WeightsFile = "adapter_model.safetensors";
    public const string Prefix = "base_model.model.";

    public static string BiasName(LoRABias bias) => bias switch
    {
        LoRABias.All => "all",
        LoRABias.LoRAOnly => "lora_only",
        _ => "none",
    };

    public static string? TaskName(LoRATaskType? task) => task switch
    {
        LoRATaskType.CausalLM => "CAUSAL_LM",
        LoRATaskType.SequenceClassification => "SEQ_CLS",
        _ => null,
    };

    public static string WriteConfig(LoRAOptions options, bool fanInFanOut, nn.Module model)
    {
        LoRATaskType? task = options.TaskType ?? (model is Gpt2LMHeadModel ? LoRATaskType.CausalLM : null);
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteStartObject("alpha_pattern");
            json.WriteEndObject();
            json.WriteNull("auto_mapping");
            WriteStringOrNull(json, "base_model_name_or_path", options.BaseModelNameOrPath);
            json.WriteString("bias", BiasName(options.Bias));
            json.WriteBoolean("fan_in_fan_out", fanInFanOut);
            json.WriteBoolean("inference_mode", true);
            json.WriteBoolean("init_lora_weights", true);
            json.WriteNull("layers_pattern");
            json.WriteNull("layers_to_transform");
            json.WritePropertyName("lora_alpha");
            // PEFT declares lora_alpha an int; write whole values as integers so strict readers accept them.
            if (options.Alpha == Math.Floor(options.Alpha) && Math.Abs(options.Alpha) < int.MaxValue)
            {
                json.WriteNumberValue((int)options.Alpha);
            }
            else
            {
                json.WriteNumberValue(options.Alpha);
            }

            json.WriteNumber("lora_dropout", options.Dropout);
            if (options.ModulesToSave.IsDefaultOrEmpty)
            {
                json.WriteNull("modules_to_save");
            }
            else
            {
                WriteArray(json, "modules_to_save", options.ModulesToSave);
            }

            json.WriteString("peft_type", "LORA");
            json.WriteNumber("r", options.Rank);
            json.WriteStartObject("rank_pattern");
            json.WriteEndObject();
            json.WriteNull("revision");
            WriteArray(json, "target_modules", options.Targets);
            WriteStringOrNull(json, "task_type", TaskName(task));
            json.WriteBoolean("use_dora", false);
            json.WriteBoolean("use_rslora", false);
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    public static LoRAOptions ReadConfig(string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"The adapter folder has no '{ConfigFile}' at '{path}'; save the adapter with LoRAAdapter.Save or PEFT's save_pretrained.", path);
        }

        try
        {
            using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(path));
            JsonElement root = doc.RootElement;
            string peftType = GetString(root, "peft_type") ?? "(missing)";
            if (peftType != "LORA")
            {
                throw Invalid(path, $"peft_type is '{peftType}', not 'LORA'");
            }

            var unsupported = new List<string>();
            if (GetBool(root, "use_rslora"))
            {
                unsupported.Add("use_rslora (scaling alpha/sqrt(r))");
            }

            if (GetBool(root, "use_dora"))
            {
                unsupported.Add("use_dora");
            }

            foreach (string pattern in new[] { "rank_pattern", "alpha_pattern" })
            {
                if (root.TryGetProperty(pattern, out JsonElement p) && p.ValueKind == JsonValueKind.Object && p.EnumerateObject().Any())
                {
                    unsupported.Add(pattern);
                }
            }

            if (root.TryGetProperty("layers_to_transform", out JsonElement layers) && layers.ValueKind != JsonValueKind.Null)
            {
                unsupported.Add("layers_to_transform");
            }

            if (!root.TryGetProperty("target_modules", out JsonElement targets) || targets.ValueKind != JsonValueKind.Array)
            {
                unsupported.Add("target_modules given as a regular expression (list the module names instead)");
            }

            if (unsupported.Count > 0)
            {
                throw Invalid(path, $"it uses settings this library does not apply: {string.Join(", ", unsupported)}");
            }

            string bias = GetString(root, "bias") ?? "none";
            return new LoRAOptions
            {
                Rank = root.GetProperty("r").GetInt32(),
                Alpha = root.GetProperty("lora_alpha").GetDouble(),
                Dropout = root.TryGetProperty("lora_dropout", out JsonElement dropout) && dropout.ValueKind == JsonValueKind.Number ? dropout.GetDouble() : 0.0,
                Targets = [.. targets.EnumerateArray().Select(t => t.GetString()!)],
                Bias = bias switch
                {
                    "none" => LoRABias.None,
                    "all" => LoRABias.All,
                    "lora_only" => LoRABias.LoRAOnly,
                    _ => throw Invalid(path, $"bias is '{bias}'; expected 'none', 'all' or 'lora_only'"),
                },
                ModulesToSave = root.TryGetProperty("modules_to_save", out JsonElement save) && save.ValueKind == JsonValueKind.Array
                    ? [.. save.EnumerateArray().Select(t => t.GetString()!)]
                    : ImmutableArray<string>.Empty,
                // Task types this library does not model (e.g. TOKEN_CLS) are read as null rather than refused.
                TaskType = GetString(root, "task_type") switch
                {
                    "CAUSAL_LM" => LoRATaskType.CausalLM,
                    "SEQ_CLS" => LoRATaskType.SequenceClassification,
                    _ => null,
                },
                BaseModelNameOrPath = GetString(root, "base_model_name_or_path"),
            };
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw Invalid(path, ex.Message, ex);
        }
    }

    private static InvalidDataException Invalid(string path, string detail, Exception? inner = null)
        => new(string.Create(CultureInfo.InvariantCulture, $"'{path}' is not a LoRA adapter config this library can load: {detail}."), inner);

    private static string? GetString(JsonElement root, string name)
        => root.TryGetProperty(name, out JsonElement value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static bool GetBool(JsonElement root, string name)
        => root.TryGetProperty(name, out JsonElement value) && value.ValueKind == JsonValueKind.True;

    private static void WriteStringOrNull(Utf8JsonWriter json, string name, string? value)
    {
        if (value is null)
        {
            json.WriteNull(name);
        }
        else
        {
            json.WriteString(name, value);
        }
    }

    private static void WriteArray(Utf8JsonWriter json, string name, ImmutableArray<string> values)
    {
        json.WriteStartArray(name);
        foreach (string value in values)
        {
            json.WriteStringValue(value);
        }

        json.WriteEndArray();
    }
}
