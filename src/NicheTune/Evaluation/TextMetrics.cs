using System.Text;
using System.Text.RegularExpressions;

namespace NicheTune.Evaluation;

/// <summary>
/// Metrics for generated text, on strings rather than tensors, with the SQuAD evaluation script's definitions:
/// answers are normalised (lower-cased, ASCII punctuation removed, the articles a/an/the removed, whitespace
/// collapsed) before exact match, and token F1 is the bag-of-tokens overlap of the normalised answers.
/// </summary>
public static class TextMetrics
{
    // Python's string.punctuation: SQuAD strips exactly these characters (deleting them, not replacing with a space).
    private const string AsciiPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

    private static readonly Regex Articles = new(@"\b(a|an|the)\b", RegexOptions.CultureInvariant);

    /// <summary>SQuAD's <c>normalize_answer</c>: lower-case, remove ASCII punctuation, remove a/an/the, collapse whitespace.</summary>
    /// <param name="text">The text.</param>
    /// <returns>The normalised text (single spaces, no leading or trailing space).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is <see langword="null"/>.</exception>
    public static string Normalize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var sb = new StringBuilder(text.Length);
        foreach (char c in text.ToLowerInvariant())
        {
            if (!AsciiPunctuation.Contains(c, StringComparison.Ordinal))
            {
                sb.Append(c);
            }
        }

        return string.Join(' ', Tokens(Articles.Replace(sb.ToString(), " ")));
    }

    /// <summary>Whether the normalised prediction equals the normalised reference (SQuAD exact match).</summary>
    /// <param name="prediction">The generated text.</param>
    /// <param name="reference">The expected text.</param>
    /// <returns><see langword="true"/> when they match after normalisation.</returns>
    /// <exception cref="ArgumentNullException">An argument is <see langword="null"/>.</exception>
    public static bool ExactMatch(string prediction, string reference)
    {
        ArgumentNullException.ThrowIfNull(prediction);
        ArgumentNullException.ThrowIfNull(reference);
        return string.Equals(Normalize(prediction), Normalize(reference), StringComparison.Ordinal);
    }

    /// <summary>Share of pairs whose prediction exactly matches the reference after SQuAD normalisation.</summary>
    /// <param name="pairs">(prediction, reference) pairs.</param>
    /// <returns>The mean exact match in [0, 1]; <see cref="double.NaN"/> for no pairs.</returns>
    /// <exception cref="ArgumentException">A pair holds a <see langword="null"/> string.</exception>
    public static double ExactMatch(IEnumerable<(string Prediction, string Reference)> pairs)
        => Mean(pairs, static (p, r) => ExactMatch(p, r) ? 1.0 : 0.0);

    /// <summary>
    /// SQuAD token F1 of one pair: precision and recall of the normalised prediction's tokens against the reference's,
    /// counting each token as often as it occurs in both (multiset overlap). Both empty → 1; one empty → 0.
    /// </summary>
    /// <param name="prediction">The generated text.</param>
    /// <param name="reference">The expected text.</param>
    /// <returns>F1 in [0, 1].</returns>
    /// <exception cref="ArgumentNullException">An argument is <see langword="null"/>.</exception>
    public static double TokenF1(string prediction, string reference)
    {
        ArgumentNullException.ThrowIfNull(prediction);
        ArgumentNullException.ThrowIfNull(reference);
        string[] predicted = Tokens(Normalize(prediction));
        string[] expected = Tokens(Normalize(reference));
        if (predicted.Length == 0 || expected.Length == 0)
        {
            return predicted.Length == expected.Length ? 1.0 : 0.0;
        }

        var remaining = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (string token in expected)
        {
            remaining[token] = remaining.GetValueOrDefault(token) + 1;
        }

        int common = 0;
        foreach (string token in predicted)
        {
            if (remaining.TryGetValue(token, out int left) && left > 0)
            {
                remaining[token] = left - 1;
                common++;
            }
        }

        if (common == 0)
        {
            return 0.0;
        }

        double precision = common / (double)predicted.Length;
        double recall = common / (double)expected.Length;
        return 2 * precision * recall / (precision + recall);
    }

    /// <summary>The mean SQuAD token F1 over pairs (each pair weighs the same, however long).</summary>
    /// <param name="pairs">(prediction, reference) pairs.</param>
    /// <returns>The mean F1 in [0, 1]; <see cref="double.NaN"/> for no pairs.</returns>
    /// <exception cref="ArgumentException">A pair holds a <see langword="null"/> string.</exception>
    public static double TokenF1(IEnumerable<(string Prediction, string Reference)> pairs) => Mean(pairs, TokenF1);

    private static string[] Tokens(string text) => text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);

    private static double Mean(IEnumerable<(string Prediction, string Reference)> pairs, Func<string, string, double> score)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        double sum = 0;
        int count = 0;
        foreach ((string prediction, string reference) in pairs)
        {
            if (prediction is null || reference is null)
            {
                throw new ArgumentException($"Pair {count} has a null {(prediction is null ? "prediction" : "reference")}; pass an empty string for an empty answer.", nameof(pairs));
            }

            sum += score(prediction, reference);
            count++;
        }

        return count == 0 ? double.NaN : sum / count;
    }
}
