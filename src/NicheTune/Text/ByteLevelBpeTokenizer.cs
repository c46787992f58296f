using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace NicheTune.Text;

/// <summary>
/// GPT-2's byte-level byte-pair encoding (also used by GPT-Neo, Pythia, RoBERTa-style vocabularies) loaded from a
/// model folder's <c>vocab.json</c> + <c>merges.txt</c>, on top of Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/>
/// with GPT-2's pre-tokenization pattern. Every byte sequence is encodable, so there is no unknown token.
/// </summary>
public sealed partial class ByteLevelBpeTokenizer : ITextTokenizer
{
    private readonly Dictionary<string, int> _vocabulary;
    private readonly bool _addBos;
    private readonly bool _addEos;

    private ByteLevelBpeTokenizer(BpeTokenizer inner, Dictionary<string, int> vocabulary, SpecialTokenIds specialTokens, bool addBos, bool addEos)
    {
        Inner = inner;
        _vocabulary = vocabulary;
        SpecialTokens = specialTokens;
        _addBos = addBos && specialTokens.BeginningOfSequence is not null;
        _addEos = addEos && specialTokens.EndOfSequence is not null;
        VocabularySize = vocabulary.Count == 0 ? 0 : vocabulary.Values.Max() + 1;
    }

    /// <summary>The Microsoft.ML.Tokenizers tokenizer doing the work, for its richer API (offsets, token counts).</summary>
    public BpeTokenizer Inner { get; }

    /// <inheritdoc />
    public int VocabularySize { get; }

    /// <inheritdoc />
    public SpecialTokenIds SpecialTokens { get; }

    /// <summary>
    /// Loads a byte-level BPE from <c>vocab.json</c> and <c>merges.txt</c>. Tokens written like <c>&lt;|endoftext|&gt;</c>
    /// are special: matched whole in the text and skipped on decoding. Without <paramref name="specialTokens"/>,
    /// <c>&lt;|endoftext|&gt;</c> (when present) is taken as beginning, end of sequence and nothing is padding, as in GPT-2.
    /// </summary>
    /// <param name="vocabularyPath">The <c>vocab.json</c> file (token → id).</param>
    /// <param name="mergesPath">The <c>merges.txt</c> file (one merge per line, optional <c>#version</c> header).</param>
    /// <param name="specialTokens">The special ids, or <see langword="null"/> for GPT-2's.</param>
    /// <returns>The tokenizer.</returns>
    /// <exception cref="FileNotFoundException">A file does not exist.</exception>
    /// <exception cref="InvalidDataException">A file is not a valid vocabulary or merge list.</exception>
    public static ByteLevelBpeTokenizer FromFiles(string vocabularyPath, string mergesPath, SpecialTokenIds? specialTokens = null) =>
        Load(vocabularyPath, mergesPath, specialTokens, TokenizerConfig.Empty);

    /// <summary>
    /// Loads <c>vocab.json</c> + <c>merges.txt</c> from a model folder, taking special tokens and
    /// <c>add_bos_token</c>/<c>add_eos_token</c> from its <c>tokenizer_config.json</c> when present (a
    /// <c>RobertaTokenizer</c> frames texts as <c>&lt;s&gt; … &lt;/s&gt;</c> unless those say otherwise). Added tokens
    /// beyond the vocabulary are not included: <see cref="Tokenizers.FromFolder"/> adds them.
    /// </summary>
    /// <param name="folder">The model folder.</param>
    /// <returns>The tokenizer.</returns>
    /// <exception cref="FileNotFoundException">A file does not exist.</exception>
    /// <exception cref="InvalidDataException">A file is not valid.</exception>
    public static ByteLevelBpeTokenizer FromFolder(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        return Load(Path.Combine(folder, "vocab.json"), Path.Combine(folder, "merges.txt"), null, TokenizerConfig.Read(folder));
    }

    internal static ByteLevelBpeTokenizer Load(string vocabularyPath, string mergesPath, SpecialTokenIds? specialTokens, TokenizerConfig config)
    {
        TokenIds.RequireFile(vocabularyPath, "The byte-level BPE vocabulary (vocab.json)");
        TokenIds.RequireFile(mergesPath, "The byte-level BPE merge list (merges.txt)");
        Dictionary<string, int> vocabulary;
        try
        {
            using FileStream stream = File.OpenRead(vocabularyPath);
            vocabulary = JsonSerializer.Deserialize<Dictionary<string, int>>(stream)
                ?? throw new InvalidDataException($"'{vocabularyPath}' holds null; it must be a JSON object of token → id.");
        }
        catch (JsonException exception)
        {
            throw new InvalidDataException($"'{vocabularyPath}' is not a vocab.json (a JSON object of token → id): {exception.Message}", exception);
        }

        var merges = new List<string>();
        int lineNumber = 0;
        foreach (string line in File.ReadLines(mergesPath))
        {
            lineNumber++;
            if (line.Length == 0 || (lineNumber == 1 && line.StartsWith("#version", StringComparison.Ordinal)))
            {
                continue;
            }

            int space = line.IndexOf(' ');
            if (space <= 0 || space == line.Length - 1 || line.IndexOf(' ', space + 1) >= 0)
            {
                throw new InvalidDataException($"'{mergesPath}' line {lineNumber} is \"{line}\"; every merge line must be two tokens separated by one space.");
            }

            merges.Add(line);
        }

        var specialStrings = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (token, id) in vocabulary)
        {
            if (SpecialPattern().IsMatch(token) || token == config.BosToken || token == config.EosToken || token == config.PadToken || token == config.UnkToken || token == config.MaskToken)
            {
                specialStrings[token] = id;
            }
        }

        SpecialTokenIds specials = specialTokens ?? DefaultSpecials(vocabulary, config);
        BpeTokenizer inner;
        try
        {
            inner = BpeTokenizer.Create(new BpeOptions(vocabulary)
            {
                Merges = merges,
                ByteLevel = true,
                PreTokenizer = new RegexPreTokenizer(Gpt2Pattern(), specialStrings),
                SpecialTokens = specialStrings,
            });
        }
        catch (Exception exception) when (exception is ArgumentException or InvalidOperationException or KeyNotFoundException)
        {
            throw new InvalidDataException($"'{vocabularyPath}' and '{mergesPath}' do not form a byte-level BPE: {exception.Message}", exception);
        }

        bool roberta = config.FramesLikeRoberta;
        return new ByteLevelBpeTokenizer(inner, vocabulary, specials, config.AddBos ?? roberta, config.AddEos ?? roberta);
    }

    private static SpecialTokenIds DefaultSpecials(Dictionary<string, int> vocabulary, TokenizerConfig config)
    {
        int? Lookup(string? token) => token is not null && vocabulary.TryGetValue(token, out int id) ? id : null;
        int? endOfText = Lookup("<|endoftext|>");
        return new SpecialTokenIds
        {
            BeginningOfSequence = Lookup(config.BosToken) ?? endOfText,
            EndOfSequence = Lookup(config.EosToken) ?? endOfText,
            Padding = Lookup(config.PadToken),
            Unknown = Lookup(config.UnkToken) ?? endOfText,
        };
    }

    /// <inheritdoc />
    public int[] Encode(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        IReadOnlyList<int> ids = Inner.EncodeToIds(text);
        var content = ids as int[] ?? [.. ids];
        return addSpecialTokens && (_addBos || _addEos) ? AddSpecialTokens(content) : content;
    }

    /// <inheritdoc />
    public int[] AddSpecialTokens(ReadOnlySpan<int> contentIds) =>
        TokenIds.Frame(_addBos ? SpecialTokens.BeginningOfSequence : null, contentIds, _addEos ? SpecialTokens.EndOfSequence : null);

    /// <inheritdoc />
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true)
    {
        TokenIds.Validate(ids, VocabularySize, out List<int> list);
        return Inner.Decode(list, considerSpecialTokens: !skipSpecialTokens);
    }

    /// <inheritdoc />
    public int? TokenToId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        return _vocabulary.TryGetValue(token, out int id) ? id : null;
    }

    // GPT-2's pre-tokenization (OpenAI's encoder.py): contractions, letters, digits and other runs, each with at most one
    // leading space, and whitespace not followed by a word.
    [GeneratedRegex(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")]
    private static partial Regex Gpt2Pattern();

    [GeneratedRegex(@"^<\|[^|\s]+\|>$")]
    private static partial Regex SpecialPattern();
}
