namespace NicheTune.Text;

/// <summary>One part of a train/validation/test split.</summary>
public enum SplitPart
{
    /// <summary>Items to train on.</summary>
    Train,

    /// <summary>Items for early stopping and model selection.</summary>
    Validation,

    /// <summary>Items held out for the final report.</summary>
    Test,
}

/// <summary>A dataset cut into train, validation and test parts; each keeps the original order of its items.</summary>
/// <typeparam name="T">The item type.</typeparam>
/// <param name="Train">Items to train on.</param>
/// <param name="Validation">Items for early stopping and model selection.</param>
/// <param name="Test">Items held out for the final report.</param>
public sealed record DatasetSplit<T>(IReadOnlyList<T> Train, IReadOnlyList<T> Validation, IReadOnlyList<T> Test);

/// <summary>
/// Seeded train/validation/test splits. The same items, fractions and seed always give the same split, so results
/// are reproducible; the stratified split keeps each class's share in every part, which matters for the small,
/// skewed label sets of niche domains (a rare class must not vanish from validation).
/// </summary>
public static class DatasetSplits
{
    /// <summary>Splits <paramref name="items"/> at random.</summary>
    /// <typeparam name="T">The item type.</typeparam>
    /// <param name="items">The dataset.</param>
    /// <param name="validationFraction">Share for validation, in [0, 1).</param>
    /// <param name="testFraction">Share for test, in [0, 1); the two shares must sum below 1.</param>
    /// <param name="seed">The random seed.</param>
    /// <returns>The split; part sizes are the rounded shares.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A fraction is outside [0, 1) or they sum to 1 or more.</exception>
    public static DatasetSplit<T> Random<T>(IReadOnlyList<T> items, double validationFraction, double testFraction, int seed)
    {
        ArgumentNullException.ThrowIfNull(items);
        return Stratified(items, _ => string.Empty, validationFraction, testFraction, seed);
    }

    /// <summary>
    /// Splits <paramref name="items"/> so that every class has (after rounding) the same share in each part: within each
    /// class the items are shuffled with the seed and cut by the fractions; a class keeps at least one item in train.
    /// </summary>
    /// <typeparam name="T">The item type.</typeparam>
    /// <param name="items">The dataset.</param>
    /// <param name="labelOf">The class of an item.</param>
    /// <param name="validationFraction">Share for validation, in [0, 1).</param>
    /// <param name="testFraction">Share for test, in [0, 1); the two shares must sum below 1.</param>
    /// <param name="seed">The random seed.</param>
    /// <returns>The split.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A fraction is outside [0, 1) or they sum to 1 or more.</exception>
    /// <exception cref="ArgumentException"><paramref name="labelOf"/> returned <see langword="null"/> for an item.</exception>
    public static DatasetSplit<T> Stratified<T>(IReadOnlyList<T> items, Func<T, string> labelOf, double validationFraction, double testFraction, int seed)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(labelOf);
        CheckFraction(validationFraction, nameof(validationFraction));
        CheckFraction(testFraction, nameof(testFraction));
        if (validationFraction + testFraction >= 1)
        {
            throw new ArgumentOutOfRangeException(nameof(testFraction), testFraction, $"validationFraction ({validationFraction}) + testFraction ({testFraction}) must be below 1 to leave items for training.");
        }

        var classes = new SortedDictionary<string, List<int>>(StringComparer.Ordinal);
        for (int i = 0; i < items.Count; i++)
        {
            string label = labelOf(items[i]) ?? throw new ArgumentException($"labelOf returned null for item {i}; give every item a class (or use DatasetSplits.Random).", nameof(labelOf));
            if (!classes.TryGetValue(label, out List<int>? members))
            {
                classes[label] = members = [];
            }

            members.Add(i);
        }

        // One generator over the classes in sorted order: the split depends only on the items, fractions and seed.
        var random = new System.Random(seed);
        var part = new byte[items.Count];
        foreach (List<int> members in classes.Values)
        {
            int[] shuffled = [.. members];
            random.Shuffle(shuffled);
            int n = shuffled.Length;
            int test = (int)Math.Round(n * testFraction, MidpointRounding.AwayFromZero);
            int validation = (int)Math.Round(n * validationFraction, MidpointRounding.AwayFromZero);
            while (test + validation >= n && test + validation > 0)
            {
                if (validation >= test && validation > 0)
                {
                    validation--;
                }
                else
                {
                    test--;
                }
            }

            for (int k = 0; k < test; k++)
            {
                part[shuffled[k]] = 2;
            }

            for (int k = test; k < test + validation; k++)
            {
                part[shuffled[k]] = 1;
            }
        }

        var train = new List<T>();
        var valid = new List<T>();
        var held = new List<T>();
        for (int i = 0; i < items.Count; i++)
        {
            (part[i] switch { 0 => train, 1 => valid, _ => held }).Add(items[i]);
        }

        return new DatasetSplit<T>(train, valid, held);
    }

    /// <summary>
    /// The items of one part of a split decided per item from a hash of its key and the seed, for datasets read as a
    /// stream (<see cref="TextDatasets"/> readers over files larger than memory): nothing is held in memory, the
    /// decision does not depend on order or on the other items, and the three parts partition any input. Shares are
    /// met in expectation rather than exactly, and there is no stratification; use <see cref="Stratified"/> when the
    /// dataset fits in memory.
    /// </summary>
    /// <typeparam name="T">The item type.</typeparam>
    /// <param name="items">The items, read lazily.</param>
    /// <param name="keyOf">A stable, distinct key per item (an id, or the text itself).</param>
    /// <param name="part">Which part to yield.</param>
    /// <param name="validationFraction">Share for validation, in [0, 1).</param>
    /// <param name="testFraction">Share for test, in [0, 1); the two shares must sum below 1.</param>
    /// <param name="seed">The seed; another seed gives an independent split.</param>
    /// <returns>The items that fall in <paramref name="part"/>, lazily.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A fraction is outside [0, 1), they sum to 1 or more, or <paramref name="part"/> is not defined.</exception>
    public static IEnumerable<T> StreamingPart<T>(IEnumerable<T> items, Func<T, string> keyOf, SplitPart part, double validationFraction, double testFraction, int seed)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(keyOf);
        CheckFraction(validationFraction, nameof(validationFraction));
        CheckFraction(testFraction, nameof(testFraction));
        if (validationFraction + testFraction >= 1)
        {
            throw new ArgumentOutOfRangeException(nameof(testFraction), testFraction, $"validationFraction ({validationFraction}) + testFraction ({testFraction}) must be below 1 to leave items for training.");
        }

        if (!Enum.IsDefined(part))
        {
            throw new ArgumentOutOfRangeException(nameof(part), part, "Use SplitPart.Train, SplitPart.Validation or SplitPart.Test.");
        }

        return items.Where(item => PartOf(keyOf(item), validationFraction, testFraction, seed) == part);
    }

    private static SplitPart PartOf(string key, double validationFraction, double testFraction, int seed)
    {
        ArgumentNullException.ThrowIfNull(key, nameof(key));

        // 64-bit FNV-1a over the seed and the key's UTF-16 code units, then a final avalanche (splitmix64): stable
        // across processes and .NET versions, unlike string.GetHashCode.
        ulong hash = 14695981039346656037UL;
        foreach (char c in seed.ToString(System.Globalization.CultureInfo.InvariantCulture) + "\u0001" + key)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }

        hash ^= hash >> 30;
        hash *= 0xBF58476D1CE4E5B9UL;
        hash ^= hash >> 27;
        hash *= 0x94D049BB133111EBUL;
        hash ^= hash >> 31;
        double u = (hash >> 11) * (1.0 / (1UL << 53));
        return u < testFraction ? SplitPart.Test : u < testFraction + validationFraction ? SplitPart.Validation : SplitPart.Train;
    }

    private static void CheckFraction(double value, string name)
    {
        if (!(value >= 0 && value < 1))
        {
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be in [0, 1), e.g. 0.1 for 10 %.");
        }
    }
}
