using System.Globalization;
using NicheTune.Prompting;

namespace NicheTune.Refinement;

/// <summary>Settings of an <see cref="UncertaintySampler"/>.</summary>
public sealed class UncertaintySamplerOptions
{
    /// <summary>How uncertainty is measured.</summary>
    /// <value><see cref="Uncertainty.Entropy"/>.</value>
    public IUncertaintyMeasure Measure { get; init; } = Uncertainty.Entropy();

    /// <summary>
    /// λ in [0, 1]: each pick maximises (1 − λ) · uncertainty + λ · novelty, where novelty is how unlike the item is to
    /// everything picked before it. 0 is pure uncertainty sampling (which tends to pick many near-copies of one confusing
    /// input); 1 ignores uncertainty (k-center greedy).
    /// </summary>
    /// <value>0.3.</value>
    public double DiversityWeight { get; init; } = 0.3;

    /// <summary>Characters per shingle when novelty is measured on text (see <see cref="NearDuplicates"/>).</summary>
    /// <value>5.</value>
    public int ShingleSize { get; init; } = 5;

    internal void Validate()
    {
        var problems = new List<string>();
        if (Measure is null)
        {
            problems.Add("Measure is null; use Uncertainty.Entropy(), Uncertainty.Margin() or Uncertainty.LeastConfidence().");
        }

        if (!(DiversityWeight >= 0 && DiversityWeight <= 1))
        {
            problems.Add(string.Create(CultureInfo.InvariantCulture, $"DiversityWeight is {DiversityWeight}; use a weight in [0, 1] (0 = uncertainty only, 0.3 is usual)."));
        }

        if (ShingleSize < 1)
        {
            problems.Add(string.Create(CultureInfo.InvariantCulture, $"ShingleSize is {ShingleSize}; use at least 1 (5 is usual)."));
        }

        if (problems.Count > 0)
        {
            throw new ArgumentException("Invalid uncertainty sampler options: " + string.Join(" ", problems), "options");
        }
    }
}

/// <summary>One item an <see cref="UncertaintySampler"/> chose, with the scores that chose it.</summary>
/// <typeparam name="T">The item type.</typeparam>
/// <param name="Index">Its index in the pool.</param>
/// <param name="Item">The item.</param>
/// <param name="Uncertainty">Its uncertainty under the sampler's measure.</param>
/// <param name="Novelty">How unlike it was to the items picked before it, in [0, 1] (1 for the first pick).</param>
/// <param name="Score">(1 − λ) · uncertainty + λ · novelty at the moment it was picked.</param>
public sealed record SelectedItem<T>(int Index, T Item, double Uncertainty, double Novelty, double Score);

/// <summary>
/// Active learning: chooses which unlabelled inputs to label next, those the model is least sure of, spread out so the
/// budget is not spent on near-copies of one confusing input. Greedy: each pick maximises
/// (1 − λ) · uncertainty + λ · novelty, novelty being one minus the largest similarity to an earlier pick (character-shingle
/// Jaccard for texts, cosine for embeddings). Deterministic: ties go to the lower index.
/// </summary>
public sealed class UncertaintySampler
{
    private readonly UncertaintySamplerOptions _options;

    /// <summary>Creates a sampler.</summary>
    /// <param name="options">Measure and diversity weight; defaults (entropy, λ = 0.3) when <see langword="null"/>.</param>
    /// <exception cref="ArgumentException">The options are invalid (every problem is listed).</exception>
    public UncertaintySampler(UncertaintySamplerOptions? options = null)
    {
        _options = options ?? new UncertaintySamplerOptions();
        _options.Validate();
    }

    /// <summary>The sampler's settings.</summary>
    public UncertaintySamplerOptions Options => _options;

    /// <summary>
    /// Chooses <paramref name="k"/> items of the store's pool to label next: uncertainty from the stored probabilities,
    /// novelty from the stored embedding when every item has one, else from the input text. Items without probabilities
    /// (not classifications) cannot be ranked and are refused.
    /// </summary>
    /// <param name="pool">Unlabelled items, e.g. <see cref="FeedbackStore.GetUnlabelled"/>.</param>
    /// <param name="k">How many to choose, 1 to the pool's size.</param>
    /// <returns>The chosen items in the order picked, with their scores.</returns>
    /// <exception cref="ArgumentException">An item has no or invalid probabilities.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="k"/> is below 1 or above the pool's size.</exception>
    public IReadOnlyList<SelectedItem<FeedbackItem>> Select(IReadOnlyList<FeedbackItem> pool, int k)
    {
        ArgumentNullException.ThrowIfNull(pool);
        bool embeddings = pool.Count > 0 && pool.All(i => !i.Embedding.IsDefaultOrEmpty);
        return Select(
            pool,
            i => i.Probabilities.IsDefaultOrEmpty ? [] : i.Probabilities,
            k,
            embeddings ? null : i => i.Input,
            embeddings ? i => i.Embedding : null);
    }

    /// <summary>Chooses <paramref name="k"/> items of <paramref name="pool"/> to label next.</summary>
    /// <typeparam name="T">The item type.</typeparam>
    /// <param name="pool">The unlabelled items.</param>
    /// <param name="probabilities">The model's class probabilities for an item (at least two, summing to 1).</param>
    /// <param name="k">How many to choose, 1 to the pool's size.</param>
    /// <param name="text">An item's text, for novelty by character shingles; or <see langword="null"/>.</param>
    /// <param name="embedding">An item's embedding, for novelty by cosine similarity (preferred over text when both are given); or <see langword="null"/>.</param>
    /// <returns>The chosen items in the order picked, with their scores.</returns>
    /// <exception cref="ArgumentException">
    /// Probabilities are missing, negative or do not sum to 1; embeddings differ in length; or the diversity weight is
    /// above 0 but neither <paramref name="text"/> nor <paramref name="embedding"/> was given.
    /// </exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="k"/> is below 1 or above the pool's size.</exception>
    public IReadOnlyList<SelectedItem<T>> Select<T>(
        IReadOnlyList<T> pool,
        Func<T, IReadOnlyList<float>> probabilities,
        int k,
        Func<T, string>? text = null,
        Func<T, IReadOnlyList<float>>? embedding = null)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(probabilities);
        if (k < 1 || k > pool.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(k), k, $"Select between 1 and {pool.Count} items (the pool's size).");
        }

        double lambda = _options.DiversityWeight;
        if (lambda > 0 && text is null && embedding is null)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"The diversity weight is {lambda} but neither text nor embedding was given to compare items; pass one, or set DiversityWeight = 0 for pure uncertainty sampling."), nameof(text));
        }

        int n = pool.Count;
        var uncertainty = new double[n];
        for (int i = 0; i < n; i++)
        {
            float[] p = [.. probabilities(pool[i]) ?? []];
            CheckProbabilities(p, i);
            uncertainty[i] = _options.Measure.Score(p);
        }

        Func<int, int, double>? similarity = lambda == 0 ? null : embedding is not null ? CosineSimilarity(pool, embedding) : ShingleSimilarity(pool, text!, _options.ShingleSize);
        var novelty = new double[n];
        Array.Fill(novelty, 1.0);
        var taken = new bool[n];
        var picked = new List<SelectedItem<T>>(k);
        while (picked.Count < k)
        {
            int best = -1;
            double bestScore = double.NegativeInfinity;
            for (int i = 0; i < n; i++)
            {
                double score = ((1 - lambda) * uncertainty[i]) + (lambda * novelty[i]);
                if (!taken[i] && score > bestScore)
                {
                    best = i;
                    bestScore = score;
                }
            }

            taken[best] = true;
            picked.Add(new SelectedItem<T>(best, pool[best], uncertainty[best], novelty[best], bestScore));
            if (similarity is not null && picked.Count < k)
            {
                for (int i = 0; i < n; i++)
                {
                    if (!taken[i])
                    {
                        novelty[i] = Math.Min(novelty[i], 1.0 - Math.Clamp(similarity(i, best), 0.0, 1.0));
                    }
                }
            }
        }

        return picked;
    }

    private static void CheckProbabilities(float[] p, int index)
    {
        if (p.Length < 2)
        {
            throw new ArgumentException($"Item {index} has {p.Length} class probabilities; uncertainty needs a distribution over at least two classes (classification outputs).", "probabilities");
        }

        double sum = 0;
        foreach (float value in p)
        {
            if (!(value >= 0 && value <= 1.0001f))
            {
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"Item {index} has probability {value}; probabilities lie in [0, 1] (apply softmax to logits first)."), "probabilities");
            }

            sum += value;
        }

        if (Math.Abs(sum - 1) > 1e-2)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"Item {index}'s probabilities sum to {sum:F4}, not 1; pass a softmax output."), "probabilities");
        }
    }

    private static Func<int, int, double> ShingleSimilarity<T>(IReadOnlyList<T> pool, Func<T, string> text, int shingleSize)
    {
        int[][] shingles = new int[pool.Count][];
        for (int i = 0; i < pool.Count; i++)
        {
            shingles[i] = NearDuplicates.Shingles(text(pool[i]) ?? string.Empty, shingleSize);
        }

        return (a, b) => NearDuplicates.Jaccard(shingles[a], shingles[b], 0.0);
    }

    private static Func<int, int, double> CosineSimilarity<T>(IReadOnlyList<T> pool, Func<T, IReadOnlyList<float>> embedding)
    {
        var unit = new double[pool.Count][];
        for (int i = 0; i < pool.Count; i++)
        {
            IReadOnlyList<float> e = embedding(pool[i]) ?? [];
            if (e.Count == 0 || (i > 0 && e.Count != unit[0].Length))
            {
                throw new ArgumentException($"Embedding {i} has {e.Count} values but the first has {unit[0]?.Length ?? e.Count}; give every item a non-empty vector of the same length.", nameof(embedding));
            }

            double norm = Math.Sqrt(e.Sum(v => (double)v * v));
            unit[i] = [.. e.Select(v => norm > 0 ? v / norm : 0.0)];
        }

        return (a, b) =>
        {
            double dot = 0;
            double[] x = unit[a], y = unit[b];
            for (int d = 0; d < x.Length; d++)
            {
                dot += x[d] * y[d];
            }

            return dot;
        };
    }
}
