using Microsoft.ML.Tokenizers;

namespace NicheTune.Text;

/// <summary>
/// BERT's WordPiece tokenizer (basic tokenization: optional lower-casing and accent stripping, splitting on
/// whitespace and punctuation; then greedy longest-match sub-words marked <c>##</c>) loaded from a model folder's
/// <c>vocab.txt</c>, on top of Microsoft.ML.Tokenizers' <see cref="BertTokenizer"/>. Encodes single texts as
/// <c>[CLS] a [SEP]</c> and pairs as <c>[CLS] a [SEP] b [SEP]</c> with token type ids.
/// </summary>
public sealed class BertWordPieceTokenizer : ITextTokenizer
{
    private readonly Dictionary<string, int> _vocabulary;

    private BertWordPieceTokenizer(BertTokenizer inner, Dictionary<string, int> vocabulary)
    {
        Inner = inner;
        _vocabulary = vocabulary;
        VocabularySize = vocabulary.Values.Max() + 1;
        SpecialTokens = new SpecialTokenIds
        {
            BeginningOfSequence = inner.ClassificationTokenId,
            EndOfSequence = inner.SeparatorTokenId,
            Padding = inner.PaddingTokenId,
            Unknown = inner.UnknownTokenId,
        };
    }

    /// <summary>The Microsoft.ML.Tokenizers tokenizer doing the work, for its richer API (offsets, special-token masks).</summary>
    public BertTokenizer Inner { get; }

    /// <inheritdoc />
    public int VocabularySize { get; }

    /// <summary>[CLS] as beginning, [SEP] as end of sequence, [PAD] and [UNK].</summary>
    public SpecialTokenIds SpecialTokens { get; }

    /// <summary>Whether text is lower-cased (and accents stripped) before WordPiece, as in the "uncased" checkpoints.</summary>
    public bool LowerCase => Inner.LowerCaseBeforeTokenization;

    /// <summary>The id of <c>[CLS]</c>, the token whose final hidden state feeds sequence classification.</summary>
    public int ClassificationId => Inner.ClassificationTokenId;

    /// <summary>The id of <c>[SEP]</c>, which ends each segment.</summary>
    public int SeparatorId => Inner.SeparatorTokenId;

    /// <summary>The id of <c>[PAD]</c>.</summary>
    public int PaddingId => Inner.PaddingTokenId;

    /// <summary>The id of <c>[UNK]</c>, given to words no sub-word sequence covers.</summary>
    public int UnknownId => Inner.UnknownTokenId;

    /// <summary>The id of <c>[MASK]</c>, the token masked-language-model training predicts.</summary>
    public int MaskId => Inner.MaskingTokenId;

    /// <summary>Loads a WordPiece vocabulary (<c>vocab.txt</c>: one token per line, the line index is its id).</summary>
    /// <param name="vocabularyPath">The <c>vocab.txt</c> file; it must contain [CLS], [SEP], [PAD], [UNK] and [MASK].</param>
    /// <param name="lowerCase">Lower-case (and strip accents) first: <see langword="true"/> for "uncased" checkpoints.</param>
    /// <returns>The tokenizer.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The vocabulary lacks a special token or has a duplicate line.</exception>
    public static BertWordPieceTokenizer FromVocabulary(string vocabularyPath, bool lowerCase = true)
    {
        TokenIds.RequireFile(vocabularyPath, "The WordPiece vocabulary (vocab.txt)");
        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        int id = 0;
        foreach (string line in File.ReadLines(vocabularyPath))
        {
            string token = line.TrimEnd('\r');
            if (!vocabulary.TryAdd(token, id))
            {
                throw new InvalidDataException($"'{vocabularyPath}' line {id + 1} repeats the token \"{token}\" (first on line {vocabulary[token] + 1}); every line of vocab.txt must be a distinct token.");
            }

            id++;
        }

        string[] required = ["[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"];
        string[] missing = [.. required.Where(t => !vocabulary.ContainsKey(t))];
        if (vocabulary.Count == 0 || missing.Length > 0)
        {
            throw new InvalidDataException($"'{vocabularyPath}' lacks the BERT special token(s) {string.Join(", ", missing.DefaultIfEmpty("(file is empty)"))}; a BERT vocab.txt lists [PAD], [UNK], [CLS], [SEP] and [MASK] among its lines.");
        }

        using FileStream stream = File.OpenRead(vocabularyPath);
        var inner = BertTokenizer.Create(stream, new BertOptions { LowerCaseBeforeTokenization = lowerCase, RemoveNonSpacingMarks = lowerCase });
        return new BertWordPieceTokenizer(inner, vocabulary);
    }

    /// <summary>Loads <c>vocab.txt</c> from a model folder, taking <c>do_lower_case</c> from <c>tokenizer_config.json</c> (default: lower-case).</summary>
    /// <param name="folder">The model folder.</param>
    /// <returns>The tokenizer.</returns>
    /// <exception cref="FileNotFoundException"><c>vocab.txt</c> does not exist.</exception>
    /// <exception cref="InvalidDataException">The vocabulary is not valid.</exception>
    public static BertWordPieceTokenizer FromFolder(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        return FromVocabulary(Path.Combine(folder, "vocab.txt"), TokenizerConfig.Read(folder).LowerCase ?? true);
    }

    /// <inheritdoc />
    public int[] Encode(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        IReadOnlyList<int> ids = Inner.EncodeToIds(text, addSpecialTokens, considerPreTokenization: true, considerNormalization: true);
        return ids as int[] ?? [.. ids];
    }

    /// <summary>Wraps content ids as <c>[CLS] … [SEP]</c>.</summary>
    /// <param name="contentIds">Ids encoded without special tokens.</param>
    /// <returns>The framed ids.</returns>
    public int[] AddSpecialTokens(ReadOnlySpan<int> contentIds) => TokenIds.Frame(ClassificationId, contentIds, SeparatorId);

    /// <summary>
    /// Encodes a text pair (question and passage, premise and hypothesis) as <c>[CLS] a [SEP] b [SEP]</c> with token
    /// type ids 0 for the first segment (its [CLS] and [SEP] included) and 1 for the second.
    /// </summary>
    /// <param name="first">The first segment.</param>
    /// <param name="second">The second segment.</param>
    /// <returns>The ids and their token type ids, of equal length.</returns>
    /// <exception cref="ArgumentNullException">A text is <see langword="null"/>.</exception>
    public EncodedPair EncodePair(string first, string second)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        IReadOnlyList<int> a = Inner.EncodeToIds(first, addSpecialTokens: false, considerPreTokenization: true, considerNormalization: true);
        IReadOnlyList<int> b = Inner.EncodeToIds(second, addSpecialTokens: false, considerPreTokenization: true, considerNormalization: true);
        IReadOnlyList<int> ids = Inner.BuildInputsWithSpecialTokens(a, b);
        IReadOnlyList<int> types = Inner.CreateTokenTypeIdsFromSequences(a, b);
        return new EncodedPair([.. ids], [.. types]);
    }

    /// <summary>The WordPiece tokens of <paramref name="text"/> without special tokens (e.g. <c>un ##aff ##able</c>), for inspecting how a domain term is split.</summary>
    /// <param name="text">Any text.</param>
    /// <returns>The token strings.</returns>
    public IReadOnlyList<string> Tokenize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        IReadOnlyList<EncodedToken> tokens = Inner.EncodeToTokens(text, out _);
        var result = new List<string>(tokens.Count);
        foreach (EncodedToken token in tokens)
        {
            if (token.Id != ClassificationId && token.Id != SeparatorId)
            {
                result.Add(token.Value);
            }
        }

        return result;
    }

    /// <inheritdoc />
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true)
    {
        TokenIds.Validate(ids, VocabularySize, out List<int> list);
        return Inner.Decode(list, skipSpecialTokens);
    }

    /// <inheritdoc />
    public int? TokenToId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        return _vocabulary.TryGetValue(token, out int id) ? id : null;
    }
}

/// <summary>A BERT text pair: input ids and the segment (token type) id of each, 0 for the first text and 1 for the second.</summary>
/// <param name="InputIds">The ids, <c>[CLS] a [SEP] b [SEP]</c>.</param>
/// <param name="TokenTypeIds">0 or 1 per id, same length as <paramref name="InputIds"/>.</param>
public sealed record EncodedPair(int[] InputIds, int[] TokenTypeIds);
