namespace NicheTune.Text;

/// <summary>
/// Text to token ids and back: the one tokenizer shape the datasets, packing, collators and
/// <see cref="VocabularyExtension"/> work with, whatever algorithm (byte-level BPE, WordPiece, SentencePiece, bytes)
/// sits behind it. Create one with <see cref="Tokenizers.FromFolder"/> for a model folder.
/// </summary>
public interface ITextTokenizer
{
    /// <summary>
    /// The number of token ids, added tokens included: every id this tokenizer can produce is below it, so the model's
    /// token embedding needs at least this many rows (check with <see cref="Tokenizers.EnsureFits"/>).
    /// </summary>
    int VocabularySize { get; }

    /// <summary>The ids of the beginning/end-of-sequence, padding and unknown tokens, where the vocabulary defines them.</summary>
    SpecialTokenIds SpecialTokens { get; }

    /// <summary>Encodes <paramref name="text"/> into token ids.</summary>
    /// <param name="text">Any text.</param>
    /// <param name="addSpecialTokens">
    /// Frame the ids the way the model was trained (<see cref="AddSpecialTokens"/>: BERT <c>[CLS] … [SEP]</c>, Llama
    /// <c>&lt;s&gt; …</c>, GPT-2 nothing); <see langword="false"/> gives the content tokens only.
    /// </param>
    /// <returns>The token ids.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is <see langword="null"/>.</exception>
    int[] Encode(string text, bool addSpecialTokens = true);

    /// <summary>Adds the model's framing tokens around already encoded content ids (see <see cref="Encode"/>).</summary>
    /// <param name="contentIds">Ids encoded without special tokens.</param>
    /// <returns>The framed ids; equal to <c>Encode(text, true)</c> when <paramref name="contentIds"/> is <c>Encode(text, false)</c>.</returns>
    int[] AddSpecialTokens(ReadOnlySpan<int> contentIds);

    /// <summary>Decodes token ids back to text.</summary>
    /// <param name="ids">Token ids below <see cref="VocabularySize"/>.</param>
    /// <param name="skipSpecialTokens">Leave special tokens (end of text, [CLS], padding…) out of the text.</param>
    /// <returns>The text.</returns>
    /// <exception cref="ArgumentOutOfRangeException">An id is negative or not below <see cref="VocabularySize"/>.</exception>
    string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true);

    /// <summary>The id of one whole token as the vocabulary spells it (GPT-2: <c>"Ġworld"</c>; BERT: <c>"##able"</c>), or <see langword="null"/>.</summary>
    /// <param name="token">The token string.</param>
    /// <returns>Its id, or <see langword="null"/> when the vocabulary has no such token.</returns>
    int? TokenToId(string token);
}

/// <summary>
/// The special token ids a tokenizer defines; <see langword="null"/> where the vocabulary has no such token
/// (GPT-2 has no padding token, for example). Collators pad with <see cref="Padding"/> (or the end of sequence), packing
/// separates documents with <see cref="EndOfSequence"/>.
/// </summary>
public sealed record SpecialTokenIds
{
    /// <summary>No special tokens.</summary>
    public static SpecialTokenIds None { get; } = new();

    /// <summary>Beginning of sequence (Llama <c>&lt;s&gt;</c>, BERT <c>[CLS]</c>, GPT-2 <c>&lt;|endoftext|&gt;</c>).</summary>
    /// <value>Default <see langword="null"/>.</value>
    public int? BeginningOfSequence { get; init; }

    /// <summary>End of sequence / end of text (Llama <c>&lt;/s&gt;</c>, BERT <c>[SEP]</c>, GPT-2 <c>&lt;|endoftext|&gt;</c>).</summary>
    /// <value>Default <see langword="null"/>.</value>
    public int? EndOfSequence { get; init; }

    /// <summary>Padding (BERT <c>[PAD]</c>); GPT-2 and Llama define none.</summary>
    /// <value>Default <see langword="null"/>.</value>
    public int? Padding { get; init; }

    /// <summary>Unknown token (BERT <c>[UNK]</c>, Llama <c>&lt;unk&gt;</c>).</summary>
    /// <value>Default <see langword="null"/>.</value>
    public int? Unknown { get; init; }

    /// <summary>The id a collator should pad with: <see cref="Padding"/>, else <see cref="EndOfSequence"/> (the GPT-2 convention), else 0.</summary>
    public int PaddingOrFallback => Padding ?? EndOfSequence ?? 0;
}
