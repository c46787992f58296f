using System.Globalization;
using System.Text.Json;

namespace NicheTune.Text;

/// <summary>The hints a Hugging Face model folder's <c>tokenizer_config.json</c> and <c>added_tokens.json</c> give; every field optional.</summary>
internal sealed class TokenizerConfig
{
    public const string FileName = "tokenizer_config.json";
    public const string AddedTokensFileName = "added_tokens.json";

    public static TokenizerConfig Empty { get; } = new();

    public string? TokenizerClass { get; private init; }

    public bool? LowerCase { get; private init; }

    public bool? AddBos { get; private init; }

    public bool? AddEos { get; private init; }

    public string? BosToken { get; private init; }

    public string? EosToken { get; private init; }

    public string? PadToken { get; private init; }

    public string? UnkToken { get; private init; }

    public string? MaskToken { get; private init; }

    /// <summary>RoBERTa-style byte-level BPE frames every text as &lt;s&gt; … &lt;/s&gt; (its post-processor), without add_bos_token.</summary>
    public bool FramesLikeRoberta => TokenizerClass?.Contains("Roberta", StringComparison.OrdinalIgnoreCase) == true;

    /// <summary>Added tokens from <c>added_tokens_decoder</c> and <c>added_tokens.json</c> (content → id).</summary>
    public IReadOnlyDictionary<string, int> AddedTokens { get; private init; } = new Dictionary<string, int>();

    public static TokenizerConfig Read(string folder)
    {
        string path = Path.Combine(folder, FileName);
        string addedPath = Path.Combine(folder, AddedTokensFileName);
        var added = new Dictionary<string, int>(StringComparer.Ordinal);
        TokenizerConfig config = Empty;
        if (File.Exists(path))
        {
            try
            {
                using var document = JsonDocument.Parse(File.ReadAllText(path));
                JsonElement root = document.RootElement;
                if (root.TryGetProperty("added_tokens_decoder", out JsonElement decoder) && decoder.ValueKind == JsonValueKind.Object)
                {
                    foreach (JsonProperty entry in decoder.EnumerateObject())
                    {
                        if (int.TryParse(entry.Name, NumberStyles.None, CultureInfo.InvariantCulture, out int id) && TokenText(entry.Value) is { } content)
                        {
                            added[content] = id;
                        }
                    }
                }

                config = new TokenizerConfig
                {
                    TokenizerClass = String(root, "tokenizer_class"),
                    LowerCase = Bool(root, "do_lower_case"),
                    AddBos = Bool(root, "add_bos_token"),
                    AddEos = Bool(root, "add_eos_token"),
                    BosToken = root.TryGetProperty("bos_token", out var b) ? TokenText(b) : null,
                    EosToken = root.TryGetProperty("eos_token", out var e) ? TokenText(e) : null,
                    PadToken = root.TryGetProperty("pad_token", out var p) ? TokenText(p) : null,
                    UnkToken = root.TryGetProperty("unk_token", out var u) ? TokenText(u) : null,
                    MaskToken = root.TryGetProperty("mask_token", out var m) ? TokenText(m) : null,
                };
            }
            catch (JsonException exception)
            {
                throw new InvalidDataException($"'{path}' is not valid JSON ({exception.Message}); fix or delete the file (it only carries hints).", exception);
            }
        }

        if (File.Exists(addedPath))
        {
            try
            {
                var tokens = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(addedPath))
                    ?? throw new InvalidDataException($"'{addedPath}' holds null; it must be a JSON object of token → id.");
                foreach (var (token, id) in tokens)
                {
                    added[token] = id;
                }
            }
            catch (JsonException exception)
            {
                throw new InvalidDataException($"'{addedPath}' must be a JSON object of token → id ({exception.Message}).", exception);
            }
        }

        return new TokenizerConfig
        {
            TokenizerClass = config.TokenizerClass,
            LowerCase = config.LowerCase,
            AddBos = config.AddBos,
            AddEos = config.AddEos,
            BosToken = config.BosToken,
            EosToken = config.EosToken,
            PadToken = config.PadToken,
            UnkToken = config.UnkToken,
            MaskToken = config.MaskToken,
            AddedTokens = added,
        };
    }

    private static string? String(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static bool? Bool(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind is JsonValueKind.True or JsonValueKind.False ? value.GetBoolean() : null;

    // A special token is written either as a string or as an AddedToken object {"content": "...", ...}.
    private static string? TokenText(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString(),
        JsonValueKind.Object when value.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String => content.GetString(),
        _ => null,
    };
}

internal static class TokenIds
{
    public static void Validate(IEnumerable<int> ids, int vocabularySize, out List<int> list)
    {
        ArgumentNullException.ThrowIfNull(ids);
        list = ids as List<int> ?? [.. ids];
        foreach (int id in list)
        {
            if (id < 0 || id >= vocabularySize)
            {
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id {id} is outside the vocabulary [0, {vocabularySize}); decode ids produced by this tokenizer (or by the model it belongs to).");
            }
        }
    }

    public static int[] Frame(int? first, ReadOnlySpan<int> content, int? last)
    {
        int length = content.Length + (first is null ? 0 : 1) + (last is null ? 0 : 1);
        var result = new int[length];
        int offset = 0;
        if (first is { } f)
        {
            result[offset++] = f;
        }

        content.CopyTo(result.AsSpan(offset));
        if (last is { } l)
        {
            result[^1] = l;
        }

        return result;
    }

    public static string RequireFile(string path, string what)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{what} '{path}' does not exist; give the path of the file from the model's folder (nothing is downloaded at run time).", path);
        }

        return path;
    }
}
