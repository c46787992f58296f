using Microsoft.ML.Tokenizers;

namespace NicheTune.Text;

/// <summary>
/// A SentencePiece tokenizer (Llama, Mistral, T5-style vocabularies) loaded from a model folder's
/// <c>tokenizer.model</c>, on top of Microsoft.ML.Tokenizers' <see cref="SentencePieceTokenizer"/> (BPE and unigram
/// models, byte fallback). Llama frames each text as <c>&lt;s&gt; …</c>.
/// </summary>
public sealed class SentencePieceModelTokenizer : ITextTokenizer
{
    private readonly bool _addBos;
    private readonly bool _addEos;

    private SentencePieceModelTokenizer(SentencePieceTokenizer inner, bool addBos, bool addEos, int? paddingId)
    {
        Inner = inner;
        _addBos = addBos;
        _addEos = addEos;
        VocabularySize = inner.Vocabulary.Count == 0 ? 0 : inner.Vocabulary.Values.Max() + 1;
        SpecialTokens = new SpecialTokenIds
        {
            BeginningOfSequence = inner.BeginningOfSentenceId,
            EndOfSequence = inner.EndOfSentenceId,
            Padding = paddingId,
            Unknown = inner.UnknownId,
        };
    }

    /// <summary>The Microsoft.ML.Tokenizers tokenizer doing the work, for its richer API.</summary>
    public SentencePieceTokenizer Inner { get; }

    /// <inheritdoc />
    public int VocabularySize { get; }

    /// <inheritdoc />
    public SpecialTokenIds SpecialTokens { get; }

    /// <summary>Loads a SentencePiece model file (a serialized <c>ModelProto</c>, usually named <c>tokenizer.model</c>).</summary>
    /// <param name="modelPath">The model file.</param>
    /// <param name="addBeginningOfSequence">Prefix encodings with the beginning-of-sequence token (Llama: yes).</param>
    /// <param name="addEndOfSequence">Suffix encodings with the end-of-sequence token (Llama: no).</param>
    /// <returns>The tokenizer.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a SentencePiece model this library can read.</exception>
    public static SentencePieceModelTokenizer FromFile(string modelPath, bool addBeginningOfSequence = true, bool addEndOfSequence = false) =>
        Load(modelPath, addBeginningOfSequence, addEndOfSequence, TokenizerConfig.Empty);

    /// <summary>Loads <c>tokenizer.model</c> from a model folder, taking <c>add_bos_token</c>, <c>add_eos_token</c> and <c>pad_token</c> from <c>tokenizer_config.json</c>.</summary>
    /// <param name="folder">The model folder.</param>
    /// <returns>The tokenizer.</returns>
    /// <exception cref="FileNotFoundException"><c>tokenizer.model</c> does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a SentencePiece model.</exception>
    public static SentencePieceModelTokenizer FromFolder(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        var config = TokenizerConfig.Read(folder);
        return Load(Path.Combine(folder, "tokenizer.model"), config.AddBos ?? true, config.AddEos ?? false, config);
    }

    internal static SentencePieceModelTokenizer Load(string modelPath, bool addBos, bool addEos, TokenizerConfig config)
    {
        TokenIds.RequireFile(modelPath, "The SentencePiece model (tokenizer.model)");
        SentencePieceTokenizer inner;
        try
        {
            using FileStream stream = File.OpenRead(modelPath);
            inner = SentencePieceTokenizer.Create(stream, addBos, addEos);
        }
        catch (Exception exception) when (exception is not OutOfMemoryException)
        {
            throw new InvalidDataException($"'{modelPath}' is not a SentencePiece model that Microsoft.ML.Tokenizers can read ({exception.GetType().Name}: {exception.Message}); use the tokenizer.model file saved with the checkpoint.", exception);
        }

        int? padding = config.PadToken is { } pad && inner.Vocabulary.TryGetValue(pad, out int padId) ? padId : null;
        return new SentencePieceModelTokenizer(inner, addBos, addEos, padding);
    }

    /// <inheritdoc />
    public int[] Encode(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        IReadOnlyList<int> ids = Inner.EncodeToIds(text, addBeginningOfSentence: addSpecialTokens && _addBos, addEndOfSentence: addSpecialTokens && _addEos);
        return ids as int[] ?? [.. ids];
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
        return Inner.Vocabulary.TryGetValue(token, out int id) ? id : null;
    }
}
