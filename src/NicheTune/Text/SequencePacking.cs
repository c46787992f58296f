using NicheTune.Training;

namespace NicheTune.Text;

/// <summary>
/// Packs tokenised documents into fixed-length training sequences for causal language modelling: documents are
/// concatenated with a separator and cut into windows, so no position is wasted on padding.
/// </summary>
public static class SequencePacking
{
    /// <summary>Concatenates <paramref name="documents"/> (each followed by <paramref name="separatorId"/>) and cuts the stream into examples of <paramref name="length"/> tokens.</summary>
    /// <param name="documents">Token ids of each document.</param>
    /// <param name="length">Tokens per example (the model's context length or less), at least 2.</param>
    /// <param name="separatorId">Token placed after each document (e.g. end of text), or <see langword="null"/> for none.</param>
    /// <param name="keepRemainder">Keep the last, shorter window (it will be padded in its batch).</param>
    /// <returns>The packed examples, in order.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is below 2.</exception>
    public static List<TokenExample> Pack(IEnumerable<int[]> documents, int length, int? separatorId, bool keepRemainder = false) =>
        [.. PackLazily(documents, length, separatorId, keepRemainder)];

    /// <summary>
    /// Like <see cref="Pack"/>, but yields each window as soon as it is full, reading <paramref name="documents"/> only
    /// as far as needed: a corpus larger than memory streams through in constant space.
    /// </summary>
    /// <param name="documents">Token ids of each document (may be a lazy sequence).</param>
    /// <param name="length">Tokens per example, at least 2.</param>
    /// <param name="separatorId">Token placed after each document, or <see langword="null"/> for none.</param>
    /// <param name="keepRemainder">Keep the last, shorter window.</param>
    /// <returns>The packed examples, lazily.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is below 2 (thrown at once).</exception>
    public static IEnumerable<TokenExample> PackLazily(IEnumerable<int[]> documents, int length, int? separatorId, bool keepRemainder = false)
    {
        ArgumentNullException.ThrowIfNull(documents);
        if (length < 2)
        {
            throw new ArgumentOutOfRangeException(nameof(length), length, "Packed sequences need at least 2 tokens (one input and its next-token target).");
        }

        return PackCore(documents, length, separatorId, keepRemainder);
    }

    private static IEnumerable<TokenExample> PackCore(IEnumerable<int[]> documents, int length, int? separatorId, bool keepRemainder)
    {
        var window = new int[length];
        int filled = 0;
        foreach (int[] document in documents)
        {
            ArgumentNullException.ThrowIfNull(document, nameof(documents));
            int offset = 0;
            while (offset < document.Length)
            {
                int take = Math.Min(length - filled, document.Length - offset);
                Array.Copy(document, offset, window, filled, take);
                filled += take;
                offset += take;
                if (filled == length)
                {
                    yield return new TokenExample((int[])window.Clone());
                    filled = 0;
                }
            }

            if (separatorId is { } separator)
            {
                window[filled++] = separator;
                if (filled == length)
                {
                    yield return new TokenExample((int[])window.Clone());
                    filled = 0;
                }
            }
        }

        if (keepRemainder && filled >= 2)
        {
            yield return new TokenExample(window[..filled]);
        }
    }
}
