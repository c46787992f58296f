using System.Globalization;
using FluentAssertions;
using NicheTune.Augmentation;
using NicheTune.Evaluation;
using NicheTune.Refinement;
using NicheTune.Tests.Support;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;

namespace NicheTune.Tests.Refinement;

[Collection(TorchCollection.Name)]
public sealed class RefinementTrainingTests(ITestOutputHelper output)
{
    [Fact]
    public void Measure_UncertaintyVersusRandom()
    {
        foreach (int seed in new[] { 1, 2, 3, 4, 5 })
        {
            var (initial, pool, test) = FoldocCategories.Split(train: 40, validation: 600, test: 500, seed: seed);
            using TinyClassifier champion = FoldocRefinement.NewModel(seed);
            FoldocRefinement.Train(champion, initial, seed);
            var start = Weights.Snapshot(champion);
            ClassificationReport before = FoldocRefinement.Evaluate(champion, test);
            float[][] probabilities = FoldocRefinement.Probabilities(champion, [.. pool.Select(p => p.Text)]);
            int[] order = [.. Enumerable.Range(0, pool.Count)];
            var results = new List<string> { $"seed {seed}: before acc {before.Accuracy:F3} f1 {before.F1(Average.Macro):F3}" };
            foreach ((string name, Func<IReadOnlyList<int>> pick) in new (string, Func<IReadOnlyList<int>>)[]
            {
                ("entropy λ0.3", () => new UncertaintySampler().Select(order, i => probabilities[i], 80, i => pool[i].Text).Select(s => s.Index).ToList()),
                ("entropy λ0", () => new UncertaintySampler(new UncertaintySamplerOptions { DiversityWeight = 0 }).Select(order, i => probabilities[i], 80).Select(s => s.Index).ToList()),
                ("margin λ0.3", () => new UncertaintySampler(new UncertaintySamplerOptions { Measure = Uncertainty.Margin() }).Select(order, i => probabilities[i], 80, i => pool[i].Text).Select(s => s.Index).ToList()),
                ("random", () => order.OrderBy(_ => 0).ToList() is var l ? Shuffle(l, seed).Take(80).ToList() : []),
            })
            {
                using TinyClassifier challenger = FoldocRefinement.NewModel(seed);
                challenger.load_state_dict(start);
                List<LabeledText> labelled = [.. pick().Select(i => pool[i])];
                FoldocRefinement.Train(challenger, RefinementData.MixWithReplay(labelled, initial, 1.0, seed), seed);
                ClassificationReport after = FoldocRefinement.Evaluate(challenger, test);
                results.Add(string.Create(CultureInfo.InvariantCulture, $"{name}: acc {after.Accuracy:F3} f1 {after.F1(Average.Macro):F3}"));
            }

            output.WriteLine(string.Join(" | ", results));
        }
    }

    private static List<int> Shuffle(List<int> list, int seed)
    {
        new Random(seed).Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(list));
        return list;
    }
}
