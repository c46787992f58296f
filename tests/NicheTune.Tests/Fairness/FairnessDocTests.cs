using FluentAssertions;
using NicheTune.Fairness;
using NicheTune.Models;
using NicheTune.Prompting;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;

namespace NicheTune.Tests.Fairness;

[Collection(TorchCollection.Name)]
public sealed class FairnessDocTests(ITestOutputHelper output)
{
    [Fact]
    public void DocsFairness_ShowsTheCompiledCodeAndProbesATrainedGpt2()
    {
        DocSnippets.PageShows("fairness.md", "Fairness/FairnessDocExample.cs");
        torch.manual_seed(7);
        using var model = new Gpt2LMHeadModel(new Gpt2Config { VocabularySize = ByteTokenizer.VocabularySize, ContextLength = 64, EmbeddingSize = 32, LayerCount = 1, HeadCount = 2 });
        var scorer = new LabelScorer(model, new ByteTokenizer().Encode);
        var vocabulary = new CounterfactualProbe([new PromptTemplate("The {word} failed again.")],
            [new CounterfactualAttribute("vocabulary", "word", [new AttributeGroup("computing", ["compiler", "program", "network"]), new AttributeGroup("gibberish", ["qzxjvk", "xqjzvw", "zvqxjk"])])]);
        double before = vocabulary.ProbeLanguageModel(texts => scorer.Score("\n", texts)).Pairs[0].MeanGap;

        var (train, _) = TestData.FoldocLanguageModeling(length: 64, trainEntries: 400, validationEntries: 0);
        FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling()).WithLearningRate(3e-3).WithBatchSize(16).WithMaxSteps(150).Fit(train);
        double after = vocabulary.ProbeLanguageModel(texts => scorer.Score("\n", texts)).Pairs[0].MeanGap;
        output.WriteLine($"log-likelihood gap computing − gibberish: {before:F2} nats untrained, {after:F2} nats after 150 steps");
        after.Should().BeGreaterThan(5, "a model trained on FOLDOC finds computing words far likelier than gibberish of the same length");
        after.Should().BeGreaterThan(before + 5);

        // A classifier biased on "she" (and nothing else): the pronoun pair flips every time, names and nationalities never.
        static IReadOnlyList<float[]> Biased(IReadOnlyList<string> texts) => [.. texts.Select(t => t.Contains(" she ", StringComparison.Ordinal) ? new[] { 0.1f, 0.9f } : new[] { 0.8f, 0.2f })];
        int[] targets = [1, 1, 0, 0, 1, 1, 0, 0];
        int[] predictions = [1, 0, 1, 0, 1, 1, 1, 0];
        string[] groups = ["female", "female", "female", "female", "male", "male", "male", "male"];
        var (lm, classifier, fairness, report) = FairnessDocExample.Probe(model, Biased, targets, predictions, groups);
        output.WriteLine(lm.ToMarkdown());
        output.WriteLine(classifier.ToMarkdown());
        output.WriteLine(fairness.ToMarkdown());

        lm.Pairs.Should().HaveCount(1 + 1 + 66).And.OnlyContain(p => double.IsFinite(p.MeanGap));
        classifier.Pair("gender (subject pronoun)", "female", "male").FlipRate.Should().Be(1.0);
        classifier.Pair("gender (given name)", "female", "male").FlipRate.Should().Be(0.0, "other slots take their first group's term, so both sides of a name pair say \"she\"");
        classifier.Pairs.Where(p => p.Attribute == "nationality").Should().OnlyContain(p => p.FlipRate == 0);
        fairness["flagged"].EqualizedOddsDifference.Should().BeApproximately(0.5, 1e-12);
        report.Passed.Should().BeFalse();
        report.Failures.Should().Contain(c => c.Kind == BiasCheckKind.FlipRate && c.Subject == "gender (subject pronoun): female / male" && c.Value == 1.0);
        report.Failures.Should().Contain(c => c.Kind == BiasCheckKind.DemographicParity && c.Subject == "class 'flagged'" && Math.Abs(c.Value - 0.25) < 1e-12,
            "flagged 2 of 4 female and 3 of 4 male examples; groups of 4 are checked with MinimumGroupSize = 4");
        report.Failures.Should().NotContain(c => c.Subject.StartsWith("nationality", StringComparison.Ordinal));
    }
}
