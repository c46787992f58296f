using System.Globalization;

namespace NicheTune.Refinement;

/// <summary>Builds the training set of a refinement round.</summary>
public static class RefinementData
{
    /// <summary>
    /// The training set for re-fine-tuning on new labels without forgetting the old task (experience replay): every new
    /// example plus a random sample of the original training data, shuffled together. With
    /// <paramref name="replayRatio"/> r the sample holds round(r · new) originals (all of them when there are fewer), so
    /// r = 1 gives as many old examples as new ones. Deterministic for a seed.
    /// </summary>
    /// <typeparam name="T">The example type.</typeparam>
    /// <param name="newExamples">The newly labelled examples, at least one.</param>
    /// <param name="originalTraining">The data the current model was trained on.</param>
    /// <param name="replayRatio">Original examples per new example, 0 or more (0 = no replay); 1 is a usual start.</param>
    /// <param name="seed">Seeds the sample and the shuffle.</param>
    /// <returns>The mixed, shuffled examples.</returns>
    /// <exception cref="ArgumentException"><paramref name="newExamples"/> is empty.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="replayRatio"/> is negative or not finite.</exception>
    public static List<T> MixWithReplay<T>(IReadOnlyList<T> newExamples, IReadOnlyList<T> originalTraining, double replayRatio, int seed)
    {
        ArgumentNullException.ThrowIfNull(newExamples);
        ArgumentNullException.ThrowIfNull(originalTraining);
        if (newExamples.Count == 0)
        {
            throw new ArgumentException("There are no new examples to refine on; label some first (FeedbackStore.AddLabel).", nameof(newExamples));
        }

        if (!(replayRatio >= 0) || double.IsInfinity(replayRatio))
        {
            throw new ArgumentOutOfRangeException(nameof(replayRatio), replayRatio, string.Create(CultureInfo.InvariantCulture, $"The replay ratio is original examples per new example: use 0 or more, e.g. 1."));
        }

        int replay = (int)Math.Min(originalTraining.Count, Math.Round(replayRatio * newExamples.Count, MidpointRounding.AwayFromZero));
        var random = new Random(seed);

        // A partial Fisher–Yates shuffle of the indices: the first `replay` are a uniform sample without replacement.
        int[] order = new int[originalTraining.Count];
        for (int i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }

        for (int i = 0; i < replay; i++)
        {
            int j = random.Next(i, order.Length);
            (order[i], order[j]) = (order[j], order[i]);
        }

        var mixed = new List<T>(newExamples.Count + replay);
        mixed.AddRange(newExamples);
        for (int i = 0; i < replay; i++)
        {
            mixed.Add(originalTraining[order[i]]);
        }

        for (int i = mixed.Count - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (mixed[i], mixed[j]) = (mixed[j], mixed[i]);
        }

        return mixed;
    }
}
