using System.Text;

namespace NicheTune.Augmentation;

/// <summary>How <see cref="AugmentationFilter"/> measures how close a variant stays to its original.</summary>
public enum SimilarityMeasure
{
    /// <summary>Jaccard index of the two sets of lower-cased word tokens: |A ∩ B| / |A ∪ B|. Blind to word order (a swap scores 1).</summary>
    TokenJaccard,

    /// <summary>Cosine of the two vectors of character n-gram counts (lower-cased, white space collapsed): sensitive to word order and spelling, robust to inflection.</summary>
    CharacterNGramCosine,
}

/// <summary>
/// Drops augmentations that add nothing or drift too far: identical to the original (ignoring case and white space),
/// too short, or with a similarity to the original outside [<see cref="MinSimilarity"/>, <see cref="MaxSimilarity"/>].
/// Apply it with <see cref="Augmenters.Filtered{T}(IAugmenter{T}, AugmentationFilter, Func{T, string})"/>; duplicate variants
/// of one example are dropped too.
/// </summary>
public sealed record AugmentationFilter
{
    /// <summary>Drop variants equal to the original up to case and white space.</summary>
    /// <value>Default <see langword="true"/>.</value>
    public bool DropIdentical { get; init; } = true;

    /// <summary>The fewest word tokens a variant may have.</summary>
    /// <value>Default 1.</value>
    public int MinTokens { get; init; } = 1;

    /// <summary>The smallest variant length, in word tokens, as a share of the original's.</summary>
    /// <value>Default 0.5 (a variant may lose at most half the words).</value>
    public double MinLengthRatio { get; init; } = 0.5;

    /// <summary>The similarity measure.</summary>
    /// <value>Default <see cref="SimilarityMeasure.CharacterNGramCosine"/> with <see cref="NGramSize"/> 3.</value>
    public SimilarityMeasure Measure { get; init; } = SimilarityMeasure.CharacterNGramCosine;

    /// <summary>Character n-gram size for <see cref="SimilarityMeasure.CharacterNGramCosine"/>.</summary>
    /// <value>Default 3.</value>
    public int NGramSize { get; init; } = 3;

    /// <summary>Lowest similarity kept: below it the variant has drifted (a paraphrase that changed the topic).</summary>
    /// <value>Default 0.3.</value>
    public double MinSimilarity { get; init; } = 0.3;

    /// <summary>Highest similarity kept: above it the variant teaches nothing new (set 0.95 for paraphrases).</summary>
    /// <value>Default 1.0 (only <see cref="DropIdentical"/> removes near-copies).</value>
    public double MaxSimilarity { get; init; } = 1.0;

    /// <summary>Whether <paramref name="variant"/> of <paramref name="original"/> passes every rule.</summary>
    /// <param name="original">The original text.</param>
    /// <param name="variant">The augmented text.</param>
    /// <returns><see langword="true"/> to keep the variant.</returns>
    /// <exception cref="ArgumentException">The filter's settings are inconsistent (the message names the setting).</exception>
    public bool Accepts(string original, string variant)
    {
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(variant);
        Validate();
        if (DropIdentical && Normalize(original) == Normalize(variant))
        {
            return false;
        }

        int tokens = TextSimilarity.CountTokens(variant);
        if (tokens < MinTokens || tokens < MinLengthRatio * TextSimilarity.CountTokens(original))
        {
            return false;
        }

        double similarity = Measure == SimilarityMeasure.TokenJaccard
            ? TextSimilarity.TokenJaccard(original, variant)
            : TextSimilarity.CharacterNGramCosine(original, variant, NGramSize);
        return similarity >= MinSimilarity && similarity <= MaxSimilarity;
    }

    internal void Validate()
    {
        if (MinTokens < 0)
        {
            throw new ArgumentException($"AugmentationFilter.MinTokens is {MinTokens}; it must be 0 or more.", nameof(MinTokens));
        }

        if (!(MinLengthRatio >= 0))
        {
            throw new ArgumentException($"AugmentationFilter.MinLengthRatio is {MinLengthRatio}; use a share ≥ 0 such as 0.5.", nameof(MinLengthRatio));
        }

        if (NGramSize < 1)
        {
            throw new ArgumentException($"AugmentationFilter.NGramSize is {NGramSize}; use 1 or more (3 is usual).", nameof(NGramSize));
        }

        if (!(MinSimilarity >= 0 && MinSimilarity <= MaxSimilarity && MaxSimilarity <= 1))
        {
            throw new ArgumentException($"AugmentationFilter similarity band [{MinSimilarity}, {MaxSimilarity}] must satisfy 0 ≤ MinSimilarity ≤ MaxSimilarity ≤ 1.", nameof(MinSimilarity));
        }
    }

    internal static string Normalize(string text)
    {
        var builder = new StringBuilder(text.Length);
        bool space = false;
        foreach (char c in text.AsSpan().Trim())
        {
            if (char.IsWhiteSpace(c))
            {
                space = true;
                continue;
            }

            if (space)
            {
                builder.Append(' ');
                space = false;
            }

            builder.Append(char.ToLowerInvariant(c));
        }

        return builder.ToString();
    }
}

/// <summary>Text similarity measures used by augmentation filters and near-duplicate removal.</summary>
public static class TextSimilarity
{
    /// <summary>Jaccard index of the sets of lower-cased word tokens (runs of letters or digits).</summary>
    /// <param name="a">A text.</param>
    /// <param name="b">Another text.</param>
    /// <returns>In [0, 1]; 1 when both have the same words (or both have none).</returns>
    public static double TokenJaccard(string a, string b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        HashSet<string> left = Tokens(a);
        HashSet<string> right = Tokens(b);
        if (left.Count == 0 && right.Count == 0)
        {
            return 1.0;
        }

        int shared = 0;
        foreach (string token in left)
        {
            shared += right.Contains(token) ? 1 : 0;
        }

        return (double)shared / (left.Count + right.Count - shared);
    }

    /// <summary>Cosine similarity of character n-gram count vectors (lower-cased, white space collapsed to one space, padded with a space at each end).</summary>
    /// <param name="a">A text.</param>
    /// <param name="b">Another text.</param>
    /// <param name="n">The n-gram size, at least 1.</param>
    /// <returns>In [0, 1]; 1 for texts equal up to case and white space.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="n"/> is below 1.</exception>
    public static double CharacterNGramCosine(string a, string b, int n = 3)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (n < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(n), n, "The n-gram size must be at least 1; 3 is usual.");
        }

        Dictionary<string, int> left = NGrams(a, n);
        Dictionary<string, int> right = NGrams(b, n);
        if (left.Count == 0 || right.Count == 0)
        {
            return left.Count == right.Count ? 1.0 : 0.0;
        }

        double dot = 0, normLeft = 0, normRight = 0;
        foreach ((string gram, int count) in left)
        {
            normLeft += (double)count * count;
            if (right.TryGetValue(gram, out int other))
            {
                dot += (double)count * other;
            }
        }

        foreach (int count in right.Values)
        {
            normRight += (double)count * count;
        }

        return dot / Math.Sqrt(normLeft * normRight);
    }

    internal static int CountTokens(string text)
    {
        int count = 0;
        bool inToken = false;
        foreach (char c in text)
        {
            bool part = char.IsLetterOrDigit(c);
            count += part && !inToken ? 1 : 0;
            inToken = part;
        }

        return count;
    }

    private static HashSet<string> Tokens(string text)
    {
        var tokens = new HashSet<string>(StringComparer.Ordinal);
        int start = -1;
        for (int i = 0; i <= text.Length; i++)
        {
            bool part = i < text.Length && char.IsLetterOrDigit(text[i]);
            if (part && start < 0)
            {
                start = i;
            }
            else if (!part && start >= 0)
            {
                tokens.Add(text[start..i].ToLowerInvariant());
                start = -1;
            }
        }

        return tokens;
    }

    private static Dictionary<string, int> NGrams(string text, int n)
    {
        string normalized = " " + AugmentationFilter.Normalize(text) + " ";
        var grams = new Dictionary<string, int>(StringComparer.Ordinal);
        if (normalized.Trim().Length == 0)
        {
            return grams;
        }

        for (int i = 0; i + n <= normalized.Length; i++)
        {
            string gram = normalized.Substring(i, n);
            grams[gram] = grams.TryGetValue(gram, out int count) ? count + 1 : 1;
        }

        return grams;
    }
}
