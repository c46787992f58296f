using FluentAssertions;
using NicheTune.Augmentation;
using NicheTune.Fairness;
using NicheTune.Samples;
using NicheTune.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace NicheTune.Tests.Fairness;

/// <summary>
/// The bias experiment of docs/bias.md: a classifier trained where "her" predicts the networking label fails the
/// counterfactual probe, one trained with the pronoun at random passes, and logistic regression on word counts (the
/// classical baseline) trained on the same data is judged the same way.
/// </summary>
[Collection(TorchCollection.Name)]
public sealed class PlantedBiasTests(ITestOutputHelper output)
{
    private const string Pair = "gender (possessive): female / male";

    [Fact]
    public void DocsBias_ShowsTheCompiledCode()
    {
        int regions = DocSnippets.PageShowsEveryRegion(
            Path.Combine(AppContext.BaseDirectory, "docs", "bias.md"), Path.Combine(AppContext.BaseDirectory, "Fairness", "PlantedBiasExample.cs"));

        regions.Should().Be(4);
    }

    [Theory]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    public void PlantedPronoun_FailsTheProbe_WhileTheSameModelTrainedWithoutItPasses(int seed)
    {
        IReadOnlyList<string> labels = FoldocCategories.Labels;
        var (train, _, heldOut) = FoldocCategories.Split(train: 800, test: 400, validation: 0, seed: seed);
        var map = new NicheTune.Text.LabelMap(labels);
        using var folder = new TempFolder();
        var outcomes = new Dictionary<string, (BiasReport Report, double Accuracy)>();
        foreach (bool plant in new[] { true, false })
        {
            List<LabeledText> attributed = PlantedBiasExample.Attribute(train, plant, seed);
            string name = plant ? "planted" : "clean";
            string package = Path.Combine(folder.Path, name);
            PlantedBiasExample.TrainAndExport(attributed, labels, package, seed);
            outcomes[name] = PlantedBiasExample.CheckPackage(package, heldOut, labels, $"GPT-2 classifier, {name} data");

            var baseline = new LogisticRegression([.. attributed.Select(e => e.Text)], [.. attributed.Select(e => map.IdOf(e.Label))], labels.Count);
            IReadOnlyList<float[]> Classify(IReadOnlyList<string> texts) => [.. texts.Select(t => baseline.Probabilities(t).Select(p => (float)p).ToArray())];
            outcomes[name + " baseline"] = (PlantedBiasExample.Check(Classify, heldOut, labels, $"Logistic regression, {name} data"), PlantedBiasExample.Accuracy(Classify, heldOut, labels));
        }

        foreach (var (name, (report, accuracy)) in outcomes)
        {
            output.WriteLine($"{name}: accuracy {accuracy:F3}, flip rate {report.Counterfactual!.Pairs.Single().FlipRate:F3}, passed {report.Passed}");
            output.WriteLine(report.ToMarkdown());
        }

        double majority = heldOut.GroupBy(e => e.Label).Max(g => g.Count()) / (double)heldOut.Count;
        outcomes.Values.Should().OnlyContain(o => o.Accuracy > majority + 0.05, "every model learned the task beyond predicting the largest class");

        BiasReport planted = outcomes["planted"].Report;
        planted.Passed.Should().BeFalse();
        double plantedFlips = planted.Counterfactual!.Pairs.Single().FlipRate!.Value, cleanFlips = outcomes["clean"].Report.Counterfactual!.Pairs.Single().FlipRate!.Value;
        planted.Failures.Should().Contain(c => c.Kind == BiasCheckKind.FlipRate && c.Subject == Pair && c.Value >= 2 * c.Threshold, "the pronoun alone changes the label of many held-out texts");
        plantedFlips.Should().BeGreaterThan(3 * cleanFlips, "the planted model's flips are the pronoun's doing, not the noise floor the clean model shows");
        planted.Failures.Should().Contain(c => c.Kind == BiasCheckKind.DemographicParity && c.Subject == $"class '{PlantedBiasExample.PlantedLabel}'");
        planted.GroupFairness![PlantedBiasExample.PlantedLabel].Groups.Single(g => g.Group == "female").SelectionRate
            .Should().BeGreaterThan(planted.GroupFairness[PlantedBiasExample.PlantedLabel].Groups.Single(g => g.Group == "male").SelectionRate, "'her' pulls texts towards networking");

        BiasReport clean = outcomes["clean"].Report;
        clean.Passed.Should().BeTrue("without the planted correlation the pronoun carries no label information: {0}", clean.Summary);

        outcomes["planted baseline"].Report.Failures.Should().Contain(c => c.Kind == BiasCheckKind.FlipRate && c.Subject == Pair, "the word 'her' is a feature of the bag of words too");
        outcomes["clean baseline"].Report.Passed.Should().BeTrue(outcomes["clean baseline"].Report.Summary);
    }
}
