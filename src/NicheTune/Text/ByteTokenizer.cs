using System.Text;

namespace NicheTune.Text;

/// <summary>
/// A byte-level tokenizer: every UTF-8 byte is one token, after two special tokens (padding = 0, end of text = 1).
/// Needs no vocabulary file and never meets an unknown word, which makes it the tokenizer for small models trained
/// from scratch, tests and quick experiments; pretrained models use their own tokenizer.
/// </summary>
public sealed class ByteTokenizer : ITextTokenizer
{
    /// <summary>The padding token id.</summary>
    public const int PaddingId = 0;

    /// <summary>The end-of-text token id, placed between packed documents.</summary>
    public const int EndOfTextId = 1;

    private const int Offset = 2;

    /// <summary>The number of token ids: 256 bytes plus the two special tokens.</summary>
    public const int VocabularySize = 256 + Offset;

    private static readonly SpecialTokenIds Specials = new() { EndOfSequence = EndOfTextId, Padding = PaddingId };

    /// <inheritdoc />
    int ITextTokenizer.VocabularySize => VocabularySize;

    /// <summary>Padding = 0 and end of sequence = 1; there is no beginning-of-sequence or unknown token.</summary>
    public SpecialTokenIds SpecialTokens => Specials;

    /// <summary>Encodes <paramref name="text"/> as one token per UTF-8 byte.</summary>
    /// <param name="text">Any text.</param>
    /// <returns>Token ids in [2, 258).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is <see langword="null"/>.</exception>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        var ids = new int[bytes.Length];
        for (int i = 0; i < bytes.Length; i++)
        {
            ids[i] = bytes[i] + Offset;
        }

        return ids;
    }

    /// <summary>Encodes <paramref name="text"/> as one token per UTF-8 byte; bytes have no framing tokens, so <paramref name="addSpecialTokens"/> changes nothing.</summary>
    /// <param name="text">Any text.</param>
    /// <param name="addSpecialTokens">Ignored: the byte vocabulary frames nothing.</param>
    /// <returns>Token ids in [2, 258).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is <see langword="null"/>.</exception>
    public int[] Encode(string text, bool addSpecialTokens) => Encode(text);

    /// <summary>Returns the ids unchanged: byte sequences are not framed.</summary>
    /// <param name="contentIds">Encoded content.</param>
    /// <returns>A copy of <paramref name="contentIds"/>.</returns>
    public int[] AddSpecialTokens(ReadOnlySpan<int> contentIds) => contentIds.ToArray();

    /// <summary>Decodes token ids back to text, skipping special tokens.</summary>
    /// <param name="ids">Token ids.</param>
    /// <returns>The text (invalid UTF-8 sequences become U+FFFD).</returns>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary.</exception>
    public string Decode(IEnumerable<int> ids) => Decode(ids, skipSpecialTokens: true);

    /// <summary>Decodes token ids back to text; the two special tokens never have text, so they are always skipped.</summary>
    /// <param name="ids">Token ids.</param>
    /// <param name="skipSpecialTokens">Ignored: padding and end of text have no bytes to write.</param>
    /// <returns>The text (invalid UTF-8 sequences become U+FFFD).</returns>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary.</exception>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var bytes = new List<byte>();
        foreach (int id in ids)
        {
            if (id is < 0 or >= VocabularySize)
            {
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id {id} is outside the byte vocabulary [0, {VocabularySize}).");
            }

            if (id >= Offset)
            {
                bytes.Add((byte)(id - Offset));
            }
        }

        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    /// <summary>The id of a one-character token whose UTF-8 form is a single byte (ASCII), or <see langword="null"/>.</summary>
    /// <param name="token">The token string.</param>
    /// <returns>Its id, or <see langword="null"/>.</returns>
    public int? TokenToId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        return token.Length == 1 && token[0] < 0x80 ? token[0] + Offset : null;
    }
}
