namespace NicheTune.Prompting;

/// <summary>
/// Near-duplicate removal by character shingles: each text becomes the set of its character n-grams (lower-cased, white
/// space collapsed; hashed with FNV-1a so results do not depend on the process), and two texts are near-duplicates when the
/// Jaccard index of their sets reaches the threshold. Exact pairwise comparison with a size filter (|A|/|B| must reach the
/// threshold for the index to), fine for the few thousand examples of a few-shot pool.
/// </summary>
public static class NearDuplicates
{
    /// <summary>Keeps the first of every group of near-duplicates, in the original order.</summary>
    /// <typeparam name="T">The item type.</typeparam>
    /// <param name="items">The items.</param>
    /// <param name="text">The text of an item.</param>
    /// <param name="threshold">Jaccard index in (0, 1] at or above which two items are duplicates; 0.8 is usual for 5-character shingles.</param>
    /// <param name="shingleSize">Characters per shingle, at least 1.</param>
    /// <returns>The kept items.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="threshold"/> is outside (0, 1] or <paramref name="shingleSize"/> is below 1.</exception>
    public static List<T> Remove<T>(IReadOnlyList<T> items, Func<T, string> text, double threshold = 0.8, int shingleSize = 5)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(text);
        Check(threshold, shingleSize);
        var kept = new List<T>();
        var keptShingles = new List<int[]>();
        foreach (T item in items)
        {
            int[] shingles = Shingles(text(item), shingleSize);
            bool duplicate = false;
            foreach (int[] other in keptShingles)
            {
                if (Jaccard(shingles, other, threshold) >= threshold)
                {
                    duplicate = true;
                    break;
                }
            }

            if (!duplicate)
            {
                kept.Add(item);
                keptShingles.Add(shingles);
            }
        }

        return kept;
    }

    /// <summary>The shingle Jaccard index of two texts.</summary>
    /// <param name="a">A text.</param>
    /// <param name="b">Another text.</param>
    /// <param name="shingleSize">Characters per shingle, at least 1.</param>
    /// <returns>In [0, 1].</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="shingleSize"/> is below 1.</exception>
    public static double Similarity(string a, string b, int shingleSize = 5)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        Check(1.0, shingleSize);
        return Jaccard(Shingles(a, shingleSize), Shingles(b, shingleSize), 0.0);
    }

    private static void Check(double threshold, int shingleSize)
    {
        if (!(threshold > 0 && threshold <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(threshold), threshold, "The near-duplicate threshold is a Jaccard index in (0, 1]; 0.8 is usual.");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(shingleSize, 1);
    }

    internal static double Jaccard(int[] a, int[] b, double threshold)
    {
        if (a.Length == 0 && b.Length == 0)
        {
            return 1.0;
        }

        if (Math.Min(a.Length, b.Length) < threshold * Math.Max(a.Length, b.Length))
        {
            return 0.0;
        }

        int i = 0, j = 0, shared = 0;
        while (i < a.Length && j < b.Length)
        {
            if (a[i] == b[j])
            {
                shared++;
                i++;
                j++;
            }
            else if (a[i] < b[j])
            {
                i++;
            }
            else
            {
                j++;
            }
        }

        return (double)shared / (a.Length + b.Length - shared);
    }

    internal static int[] Shingles(string text, int size)
    {
        string normalized = Augmentation.AugmentationFilter.Normalize(text);
        if (normalized.Length < size)
        {
            return normalized.Length == 0 ? [] : [Hash(normalized, 0, normalized.Length)];
        }

        var set = new HashSet<int>();
        for (int i = 0; i + size <= normalized.Length; i++)
        {
            set.Add(Hash(normalized, i, size));
        }

        int[] result = [.. set];
        Array.Sort(result);
        return result;
    }

    private static int Hash(string text, int start, int length)
    {
        uint hash = 2166136261;
        for (int i = start; i < start + length; i++)
        {
            hash = (hash ^ text[i]) * 16777619;
        }

        return unchecked((int)hash);
    }
}
