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
    public static List<TokenExample> Pack(IEnumerable<int[]> documents, int length, int? separatorId, bool keepRemainder = false)
    {
        ArgumentNullException.ThrowIfNull(documents);
        if (length < 2)
        {
            throw new ArgumentOutOfRangeException(nameof(length), length, "Packed sequences need at least 2 tokens (one input and its next-token target).");
        }

        var examples = new List<TokenExample>();
        var window = new int[length];
        int filled = 0;
        foreach (int[] document in documents)
        {
            ArgumentNullException.ThrowIfNull(document, nameof(documents));
            for (int i = 0; i <= document.Length; i++)
            {
                if (i == document.Length && separatorId is null)
                {
                    break;
                }

                window[filled++] = i < document.Length ? document[i] : separatorId!.Value;
                if (filled == length)
                {
                    examples.Add(new TokenExample((int[])window.Clone()));
                    filled = 0;
                }
            }
        }

        if (keepRemainder && filled >= 2)
        {
            examples.Add(new TokenExample(window[..filled]));
        }

        return examples;
    }
}
