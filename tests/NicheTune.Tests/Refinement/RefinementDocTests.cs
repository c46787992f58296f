using System.Collections.Immutable;
using FluentAssertions;
using NicheTune.Augmentation;
using NicheTune.Deployment;
using NicheTune.Refinement;
using NicheTune.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace NicheTune.Tests.Refinement;

[Collection(TorchCollection.Name)]
public sealed class RefinementDocTests(ITestOutputHelper output)
{
    [Fact]
    public void RefinementPage_ShowsExactlyTheCompiledRegions()
    {
        int regions = DocSnippets.PageShowsEveryRegion(RepositoryFile("docs/refinement.md"), RepositoryFile("tests/NicheTune.Tests/Refinement/RefinementDocExample.cs"));

        regions.Should().Be(4);
    }

    [Fact]
    public void Round_FoldocCategories_RefinedModelBeatsTheChampion()
    {
        // The champion learned from 40 labelled FOLDOC entries; 600 others arrive as production traffic; 500 more are the
        // fixed evaluation set. The round labels 80 of the traffic (from the gold labels) and re-fine-tunes with replay.
        const int Seed = 1;
        var (initial, traffic, evaluation) = FoldocCategories.Split(train: 40, validation: 600, test: 500, seed: Seed);
        using TinyClassifier champion = FoldocRefinement.NewModel(Seed);
        FoldocRefinement.Train(champion, initial, Seed);
        var championWeights = Weights.Snapshot(champion);
        float[][] probabilities = FoldocRefinement.Probabilities(champion, [.. traffic.Select(t => t.Text)]);
        PredictionRecord[] records = [.. traffic.Select((t, i) => new PredictionRecord(
            DateTimeOffset.UnixEpoch.AddSeconds(i), PredictionKind.Classify, t.Text, t.Text.Length, 0, [.. probabilities[i]],
            FoldocRefinement.Labels[Array.IndexOf(probabilities[i], probabilities[i].Max())], null, [], null, TimeSpan.FromMilliseconds(2)))];
        var gold = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (LabeledText t in traffic)
        {
            gold.TryAdd(t.Text, t.Label);
        }

        var challengers = new List<TinyClassifier>();
        using var folder = new TempFolder();
        try
        {
            var (store, picked, trainingSize, decision) = RefinementDocExample.Round(
                Path.Combine(folder.Path, "feedback.db"),
                records,
                text => gold[text],
                initial,
                training =>
                {
                    TinyClassifier challenger = FoldocRefinement.NewModel(Seed);
                    challengers.Add(challenger);
                    challenger.load_state_dict(championWeights);
                    FoldocRefinement.Train(challenger, training, Seed);
                    return texts => FoldocRefinement.Predict(challenger, texts);
                },
                texts => FoldocRefinement.Predict(champion, texts),
                evaluation,
                FoldocRefinement.Labels);

            output.WriteLine($"store: {store}");
            output.WriteLine(decision.ToMarkdown());
            int unsure = records.Count(r => r.Probabilities.Max() < 0.6f);
            store.Should().BeEquivalentTo(new { Observed = 600L, Matched = (long)unsure, Written = (long)unsure, Items = (long)unsure, Labelled = 80L, Dropped = 0L });
            picked.Should().HaveCount(80);
            picked.Select(p => p.Item.Id).Should().OnlyHaveUniqueItems();
            trainingSize.Should().Be(120, "80 new labels and all 40 original examples (replay ratio 1 asks for 80)");

            MetricComparison accuracy = decision.Comparisons.Single(c => c.Slice == "all" && c.Metric == "accuracy");
            MetricComparison macroF1 = decision.Comparisons.Single(c => c.Slice == "all" && c.Metric == "f1.macro");
            accuracy.Change.Should().BeGreaterThan(0.04, "80 more labels of the right inputs improve the model on the fixed evaluation set");
            macroF1.Change.Should().BeGreaterThan(0.06);
            decision.Comparisons.Select(c => c.Slice).Distinct().Should().HaveCount(1 + 8, "the whole set and one slice per label");
        }
        finally
        {
            challengers.ForEach(c => c.Dispose());
        }
    }

    private static string RepositoryFile(string relative)
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            string candidate = Path.Combine(directory.FullName, relative);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException($"{relative} not found above {AppContext.BaseDirectory}.");
    }

    // Indentation differs between a method body and a Markdown block; compare line contents.
}
