using System.Text;
using System.Text.Json;

namespace NicheTune.Text;

/// <summary>
/// A tokenizer with extra whole-string tokens on top of another one (Hugging Face's "added tokens"): domain terms,
/// new control tokens. Added tokens are found in the text first, longest match first and case-sensitively; the text
/// between them goes to the base tokenizer. Created by <see cref="VocabularyExtension"/>, saved as
/// <c>added_tokens.json</c> and read back by <see cref="Tokenizers.FromFolder"/>.
/// </summary>
public sealed class AddedTokensTokenizer : ITextTokenizer
{
    private readonly Dictionary<string, int> _tokens;
    private readonly Dictionary<int, string> _byId;

    // Candidates per first character, longest first, so one scan position checks only the tokens that can start there.
    private readonly Dictionary<char, string[]> _byFirstChar;

    /// <summary>Wraps <paramref name="inner"/> with <paramref name="addedTokens"/>.</summary>
    /// <param name="inner">The base tokenizer; an <see cref="AddedTokensTokenizer"/> is flattened into its base and tokens.</param>
    /// <param name="addedTokens">Token text → id. Ids must be distinct and at least the base's <see cref="ITextTokenizer.VocabularySize"/>, or equal the id the base already gives that exact token.</param>
    /// <exception cref="ArgumentException">A token is empty, an id is negative, taken by another token or collides with a base id.</exception>
    public AddedTokensTokenizer(ITextTokenizer inner, IEnumerable<KeyValuePair<string, int>> addedTokens)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(addedTokens);
        _tokens = new Dictionary<string, int>(StringComparer.Ordinal);
        _byId = [];
        if (inner is AddedTokensTokenizer added)
        {
            inner = added.Inner;
            foreach (var (token, id) in added._tokens)
            {
                _tokens[token] = id;
                _byId[id] = token;
            }
        }

        Inner = inner;
        foreach (var (token, id) in addedTokens)
        {
            if (string.IsNullOrEmpty(token))
            {
                throw new ArgumentException("An added token is empty; every added token needs at least one character.", nameof(addedTokens));
            }

            bool baseToken = id < inner.VocabularySize && inner.TokenToId(token) == id;
            if (id < 0 || (id < inner.VocabularySize && !baseToken))
            {
                throw new ArgumentException(
                    $"Added token \"{token}\" has id {id}, which the base vocabulary already uses for another token; give added tokens ids from {inner.VocabularySize} on.",
                    nameof(addedTokens));
            }

            if (_byId.TryGetValue(id, out string? other) && other != token)
            {
                throw new ArgumentException($"Added tokens \"{other}\" and \"{token}\" share id {id}; every added token needs its own id.", nameof(addedTokens));
            }

            if (_tokens.TryGetValue(token, out int previous) && previous != id)
            {
                throw new ArgumentException($"Added token \"{token}\" is given ids {previous} and {id}; give it one id.", nameof(addedTokens));
            }

            _tokens[token] = id;
            _byId[id] = token;
        }

        _byFirstChar = _tokens.Keys
            .GroupBy(t => t[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Length).ThenBy(t => t, StringComparer.Ordinal).ToArray());
        VocabularySize = Math.Max(inner.VocabularySize, _byId.Count == 0 ? 0 : _byId.Keys.Max() + 1);
    }

    /// <summary>The base tokenizer.</summary>
    public ITextTokenizer Inner { get; }

    /// <summary>The added tokens (text → id).</summary>
    public IReadOnlyDictionary<string, int> AddedTokens => _tokens;

    /// <summary>The base vocabulary size or one past the largest added id, whichever is larger.</summary>
    public int VocabularySize { get; }

    /// <inheritdoc />
    public SpecialTokenIds SpecialTokens => Inner.SpecialTokens;

    /// <inheritdoc />
    public int[] Encode(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>();
        int segmentStart = 0;
        int i = 0;
        while (i < text.Length)
        {
            string? match = null;
            if (_byFirstChar.TryGetValue(text[i], out string[]? candidates))
            {
                foreach (string candidate in candidates)
                {
                    if (text.AsSpan(i).StartsWith(candidate, StringComparison.Ordinal))
                    {
                        match = candidate;
                        break;
                    }
                }
            }

            if (match is null)
            {
                i++;
                continue;
            }

            if (i > segmentStart)
            {
                ids.AddRange(Inner.Encode(text[segmentStart..i], addSpecialTokens: false));
            }

            ids.Add(_tokens[match]);
            i += match.Length;
            segmentStart = i;
        }

        if (segmentStart < text.Length)
        {
            ids.AddRange(Inner.Encode(text[segmentStart..], addSpecialTokens: false));
        }

        return addSpecialTokens ? Inner.AddSpecialTokens(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(ids)) : [.. ids];
    }

    /// <inheritdoc />
    public int[] AddSpecialTokens(ReadOnlySpan<int> contentIds) => Inner.AddSpecialTokens(contentIds);

    /// <summary>Decodes ids: runs of base ids through the base tokenizer, added tokens as their text.</summary>
    /// <param name="ids">Token ids below <see cref="VocabularySize"/>.</param>
    /// <param name="skipSpecialTokens">Leave the base's special tokens out.</param>
    /// <returns>The text; segments are concatenated as they are (WordPiece spacing around an added token is not restored).</returns>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary.</exception>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true)
    {
        TokenIds.Validate(ids, VocabularySize, out List<int> list);
        var text = new StringBuilder();
        var run = new List<int>();
        foreach (int id in list)
        {
            if (_byId.TryGetValue(id, out string? token) && !(id < Inner.VocabularySize))
            {
                if (run.Count > 0)
                {
                    text.Append(Inner.Decode(run, skipSpecialTokens));
                    run.Clear();
                }

                text.Append(token);
            }
            else if (id >= Inner.VocabularySize)
            {
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id {id} is neither a base id (below {Inner.VocabularySize}) nor an added token.");
            }
            else
            {
                run.Add(id);
            }
        }

        if (run.Count > 0)
        {
            text.Append(Inner.Decode(run, skipSpecialTokens));
        }

        return text.ToString();
    }

    /// <inheritdoc />
    public int? TokenToId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        return _tokens.TryGetValue(token, out int id) ? id : Inner.TokenToId(token);
    }

    /// <summary>Writes the added tokens as <c>added_tokens.json</c> (token → id, Hugging Face's format) into <paramref name="folder"/>, beside the base tokenizer's files.</summary>
    /// <param name="folder">The model folder; created when missing.</param>
    /// <returns>The path of the file written.</returns>
    public string Save(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        Directory.CreateDirectory(folder);
        string path = Path.Combine(folder, TokenizerConfig.AddedTokensFileName);
        var ordered = _tokens.OrderBy(kv => kv.Value).ToDictionary(kv => kv.Key, kv => kv.Value);
        File.WriteAllText(path, JsonSerializer.Serialize(ordered, new JsonSerializerOptions { WriteIndented = true }));
        return path;
    }
}
