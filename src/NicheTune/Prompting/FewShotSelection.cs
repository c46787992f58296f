namespace NicheTune.Prompting;

/// <summary>
/// Chooses which few examples to label, train on or show as demonstrations: <c>k</c> per class or <c>n</c> in total, at
/// random (stratified) or for diversity (k-center greedy over embeddings). Every method returns indices into the input,
/// in selection order, and is deterministic for its seed.
/// </summary>
public static class FewShotSelection
{
    /// <summary>Up to <paramref name="perClass"/> indices per class, uniformly at random within each class (classes in order of first appearance).</summary>
    /// <typeparam name="TLabel">The label type.</typeparam>
    /// <param name="labels">The label of each item.</param>
    /// <param name="perClass">At least 1; a class with fewer items contributes all of them.</param>
    /// <param name="seed">The seed.</param>
    /// <returns>The selected indices.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="perClass"/> is below 1.</exception>
    public static IReadOnlyList<int> RandomPerClass<TLabel>(IReadOnlyList<TLabel> labels, int perClass, int seed)
        where TLabel : notnull
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentOutOfRangeException.ThrowIfLessThan(perClass, 1);
        var random = new Random(seed);
        var result = new List<int>();
        foreach (List<int> members in Groups(labels))
        {
            Shuffle(members, random);
            result.AddRange(members.Take(perClass));
        }

        return result;
    }

    /// <summary>
    /// <paramref name="total"/> indices, stratified: each class gets a share proportional to its size (largest remainders
    /// round), at least one per class while <paramref name="total"/> allows, drawn at random within the class.
    /// </summary>
    /// <typeparam name="TLabel">The label type.</typeparam>
    /// <param name="labels">The label of each item.</param>
    /// <param name="total">At least 1, at most the number of items.</param>
    /// <param name="seed">The seed.</param>
    /// <returns>The selected indices.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="total"/> is below 1 or above the number of items.</exception>
    public static IReadOnlyList<int> RandomTotal<TLabel>(IReadOnlyList<TLabel> labels, int total, int seed)
        where TLabel : notnull
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (total < 1 || total > labels.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(total), total, $"Select between 1 and {labels.Count} items (the number available).");
        }

        var random = new Random(seed);
        List<List<int>> groups = Groups(labels);
        int[] quota = Allocate(groups.Select(g => g.Count).ToArray(), total);
        var result = new List<int>(total);
        for (int g = 0; g < groups.Count; g++)
        {
            Shuffle(groups[g], random);
            result.AddRange(groups[g].Take(quota[g]));
        }

        return result;
    }

    /// <summary>
    /// k-center greedy (Sener &amp; Savarese 2018, core-sets): starts from the point nearest the centroid, then repeatedly takes the
    /// point farthest (Euclidean) from everything chosen — a spread-out, representative subset, outliers early.
    /// </summary>
    /// <param name="embeddings">One vector per item, all the same length (e.g. mean-pooled hidden states from <see cref="TextEmbeddings.MeanPooled"/>).</param>
    /// <param name="k">How many to choose, 1 to the number of items.</param>
    /// <returns>The selected indices, in the order chosen.</returns>
    /// <exception cref="ArgumentException">The vectors are missing, empty or of different lengths.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="k"/> is below 1 or above the number of items.</exception>
    public static IReadOnlyList<int> KCenterGreedy(IReadOnlyList<float[]> embeddings, int k)
    {
        ArgumentNullException.ThrowIfNull(embeddings);
        return KCenter(embeddings, Enumerable.Range(0, embeddings.Count).ToList(), k, nameof(k));
    }

    /// <summary>k-center greedy within each class: up to <paramref name="perClass"/> diverse items per class.</summary>
    /// <typeparam name="TLabel">The label type.</typeparam>
    /// <param name="labels">The label of each item.</param>
    /// <param name="embeddings">One vector per item.</param>
    /// <param name="perClass">At least 1.</param>
    /// <returns>The selected indices.</returns>
    /// <exception cref="ArgumentException"><paramref name="labels"/> and <paramref name="embeddings"/> differ in length, or the vectors are invalid.</exception>
    public static IReadOnlyList<int> DiversePerClass<TLabel>(IReadOnlyList<TLabel> labels, IReadOnlyList<float[]> embeddings, int perClass)
        where TLabel : notnull
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(embeddings);
        ArgumentOutOfRangeException.ThrowIfLessThan(perClass, 1);
        if (labels.Count != embeddings.Count)
        {
            throw new ArgumentException($"There are {labels.Count} labels but {embeddings.Count} embeddings; give one of each per item.", nameof(embeddings));
        }

        var result = new List<int>();
        foreach (List<int> members in Groups(labels))
        {
            result.AddRange(KCenter(embeddings, members, Math.Min(perClass, members.Count), nameof(perClass)));
        }

        return result;
    }

    /// <summary>Picks the items at <paramref name="indices"/>: <c>FewShotSelection.Pick(data, FewShotSelection.RandomPerClass(labels, 8, seed))</c>.</summary>
    /// <typeparam name="T">The item type.</typeparam>
    /// <param name="items">The items.</param>
    /// <param name="indices">Indices into <paramref name="items"/>.</param>
    /// <returns>The items, in the order of <paramref name="indices"/>.</returns>
    public static List<T> Pick<T>(IReadOnlyList<T> items, IEnumerable<int> indices)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(indices);
        return [.. indices.Select(i => items[i])];
    }

    internal static int[] Allocate(int[] sizes, int total)
    {
        int n = sizes.Sum();
        var quota = new int[sizes.Length];
        var remainders = new (double Remainder, int Group)[sizes.Length];
        int given = 0;
        for (int g = 0; g < sizes.Length; g++)
        {
            double exact = (double)total * sizes[g] / n;
            quota[g] = Math.Min(sizes[g], (int)exact);
            remainders[g] = (exact - quota[g], g);
            given += quota[g];
        }

        // Every class at least once while the budget allows, then the largest remainders.
        foreach (int g in Enumerable.Range(0, sizes.Length).OrderByDescending(g => sizes[g]))
        {
            if (given < total && quota[g] == 0 && sizes[g] > 0)
            {
                quota[g] = 1;
                given++;
            }
        }

        foreach ((_, int g) in remainders.OrderByDescending(r => r.Remainder).ThenBy(r => r.Group))
        {
            if (given == total)
            {
                break;
            }

            if (quota[g] < sizes[g])
            {
                quota[g]++;
                given++;
            }
        }

        for (int g = 0; given < total; g = (g + 1) % sizes.Length)
        {
            if (quota[g] < sizes[g])
            {
                quota[g]++;
                given++;
            }
        }

        return quota;
    }

    private static List<int> KCenter(IReadOnlyList<float[]> embeddings, List<int> members, int k, string parameter)
    {
        if (k < 1 || k > members.Count)
        {
            throw new ArgumentOutOfRangeException(parameter, k, $"Select between 1 and {members.Count} items (the number available).");
        }

        int dim = embeddings[members[0]]?.Length ?? 0;
        foreach (int m in members)
        {
            if (embeddings[m] is null || embeddings[m].Length != dim || dim == 0)
            {
                throw new ArgumentException($"Embedding {m} has {embeddings[m]?.Length ?? 0} values but the first has {dim}; give every item a non-empty vector of the same length.", nameof(embeddings));
            }
        }

        var centroid = new double[dim];
        foreach (int m in members)
        {
            for (int d = 0; d < dim; d++)
            {
                centroid[d] += embeddings[m][d] / (double)members.Count;
            }
        }

        var nearest = new double[members.Count];
        int first = 0;
        double best = double.MaxValue;
        for (int i = 0; i < members.Count; i++)
        {
            double distance = Distance(embeddings[members[i]], centroid);
            if (distance < best)
            {
                best = distance;
                first = i;
            }
        }

        var chosen = new List<int>(k) { members[first] };
        for (int i = 0; i < members.Count; i++)
        {
            nearest[i] = Distance(embeddings[members[i]], embeddings[members[first]]);
        }

        while (chosen.Count < k)
        {
            int far = 0;
            for (int i = 1; i < members.Count; i++)
            {
                if (nearest[i] > nearest[far])
                {
                    far = i;
                }
            }

            chosen.Add(members[far]);
            float[] added = embeddings[members[far]];
            for (int i = 0; i < members.Count; i++)
            {
                nearest[i] = Math.Min(nearest[i], Distance(embeddings[members[i]], added));
            }
        }

        return chosen;
    }

    private static double Distance(float[] a, float[] b)
    {
        double sum = 0;
        for (int d = 0; d < a.Length; d++)
        {
            double diff = a[d] - b[d];
            sum += diff * diff;
        }

        return sum;
    }

    private static double Distance(float[] a, double[] b)
    {
        double sum = 0;
        for (int d = 0; d < a.Length; d++)
        {
            double diff = a[d] - b[d];
            sum += diff * diff;
        }

        return sum;
    }

    private static List<List<int>> Groups<TLabel>(IReadOnlyList<TLabel> labels)
        where TLabel : notnull
    {
        var byLabel = new Dictionary<TLabel, List<int>>();
        var order = new List<List<int>>();
        for (int i = 0; i < labels.Count; i++)
        {
            if (!byLabel.TryGetValue(labels[i], out List<int>? members))
            {
                byLabel[labels[i]] = members = [];
                order.Add(members);
            }

            members.Add(i);
        }

        return order;
    }

    private static void Shuffle(List<int> items, Random random)
    {
        for (int i = items.Count - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}
