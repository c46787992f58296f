// The few-shot split of the FOLDOC category task: a test set drawn once with a fixed seed, so every method and every
// seed is scored on the same texts, and a stratified training draw plus a validation draw from the rest, which change
// with the seed. The three parts are disjoint.
using NicheTune.Augmentation;
using NicheTune.Prompting;

namespace NicheTune.Samples;

/// <summary>Disjoint training, validation and test parts of a labelled data set, for few-shot experiments.</summary>
/// <param name="Train">The labelled training examples (stratified: every label present when the draw allows it).</param>
/// <param name="Validation">Examples for early stopping, drawn at random from what the test set left.</param>
/// <param name="Test">The fixed test set.</param>
internal sealed record FewShotSplit(List<LabeledText> Train, List<LabeledText> Validation, List<LabeledText> Test)
{
    /// <summary>The seed of the test draw: the test set is the same for every training seed.</summary>
    public const int TestSeed = 42;

    /// <summary>
    /// Draws the test set with <see cref="TestSeed"/>, then <paramref name="train"/> stratified examples and
    /// <paramref name="validation"/> random ones from the rest with <paramref name="seed"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The parts do not fit in <paramref name="entries"/>, or a size is negative.</exception>
    public static FewShotSplit Create(IReadOnlyList<LabeledText> entries, int train, int validation, int test, int seed)
    {
        ArgumentNullException.ThrowIfNull(entries);
        if (train < 1 || validation < 0 || test < 1)
        {
            throw new ArgumentException($"Sizes must be train ≥ 1, validation ≥ 0, test ≥ 1; got {train}, {validation}, {test}.", nameof(train));
        }

        if (train + validation + test > entries.Count)
        {
            throw new ArgumentException($"The data has {entries.Count} entries; {train} training + {validation} validation + {test} test do not fit. Ask for fewer.", nameof(entries));
        }

        int[] order = [.. Enumerable.Range(0, entries.Count)];
        new Random(TestSeed).Shuffle(order);
        int[] testIndices = order[..test];
        int[] rest = [.. order[test..].Order()];

        // Stratified by label: the library's few-shot draw (at least one example of every label it can).
        IReadOnlyList<int> picked = FewShotSelection.RandomTotal(rest.Select(i => entries[i].Label).ToArray(), train, seed);
        var trainIndices = picked.Select(p => rest[p]).ToArray();
        var taken = trainIndices.ToHashSet();
        int[] remaining = [.. rest.Where(i => !taken.Contains(i))];
        new Random(seed).Shuffle(remaining);
        return new FewShotSplit(
            [.. trainIndices.Select(i => entries[i])],
            [.. remaining.Take(validation).Select(i => entries[i])],
            [.. testIndices.Select(i => entries[i])]);
    }
}
