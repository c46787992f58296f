using FluentAssertions;
using NicheTune.Fairness;
using NicheTune.Prompting;
using Xunit;

namespace NicheTune.Tests.Fairness;

public sealed class CounterfactualProbeTests
{
    private static readonly CounterfactualAttribute Pronoun = new("pronoun", "pronoun",
        [new AttributeGroup("female", ["she"]), new AttributeGroup("male", ["he"]), new AttributeGroup("neutral", ["they"])]);

    private static readonly CounterfactualAttribute Name = new("name", "name",
        [new AttributeGroup("F", ["Ann", "Beth", "Cara", "Dora"]), new AttributeGroup("M", ["Al", "Bob", "Carl", "Dan"])]);

    private static readonly PromptTemplate[] Templates =
    [
        new("{pronoun} fixed the compiler bug."),
        new("Yesterday {pronoun} wrote the parser."),
        new("{name} reviewed the kernel patch."),
    ];

    // Biased on purpose: "she", "Ann" and "Cara" push the text to class 1 (0.8); everything else is class 0 (0.3 for class 1).
    private static IReadOnlyList<float[]> BiasedClassifier(IReadOnlyList<string> texts)
        => [.. texts.Select(t => t.StartsWith("she ", StringComparison.Ordinal) || t.Contains(" she ", StringComparison.Ordinal) || t.StartsWith("Ann ", StringComparison.Ordinal) || t.StartsWith("Cara ", StringComparison.Ordinal)
            ? new[] { 0.2f, 0.8f } : new[] { 0.7f, 0.3f })];

    [Fact]
    public void ProbeClassifier_BiasedDelegate_ReportsTheExactFlipRates()
    {
        var probe = new CounterfactualProbe(Templates, [Pronoun, Name], new CounterfactualProbeOptions { ScoreClass = 1, BatchSize = 3 });
        CounterfactualReport report = probe.ProbeClassifier(BiasedClassifier, ["ok", "flagged"]);

        report.Pairs.Should().HaveCount(4, "three pronoun pairs and one name pair");
        report.Pair("pronoun", "female", "male").FlipRate.Should().Be(1.0);
        report.Pair("pronoun", "female", "neutral").FlipRate.Should().Be(1.0);
        report.Pair("pronoun", "male", "neutral").FlipRate.Should().Be(0.0);
        CounterfactualPairResult names = report.Pair("name", "F", "M");
        names.Comparisons.Should().Be(4);
        names.FlipRate.Should().Be(0.5, "Ann and Cara flip against Al and Carl; Beth and Dora do not");
        names.MeanGap.Should().BeApproximately(0.25, 1e-6, "(0.5 + 0 + 0.5 + 0) / 4");
        names.MaxAbsoluteGap.Should().BeApproximately(0.5, 1e-6);
        report.Pair("pronoun", "female", "male").MeanGap.Should().BeApproximately(0.5, 1e-6);
        report.Pair("pronoun", "female", "male").WorstExamples.Should().HaveCount(2)
            .And.Contain(e => e.TextA == "she fixed the compiler bug." && e.TextB == "he fixed the compiler bug." && e.LabelA == "flagged" && e.LabelB == "ok");
        report.OverallFlipRate.Should().BeApproximately((2 + 2 + 0 + 2) / 10.0, 1e-12);
        report.ToMarkdown().Should().Contain("| pronoun | female | male | 2 | 1.000 | 0.500 | 0.500 | 0.500 |");
    }

    [Fact]
    public void ProbeClassifier_NoScoreClass_UsesTheLargestProbabilityChange()
    {
        var probe = new CounterfactualProbe(Templates, [Pronoun, Name]);
        CounterfactualPairResult pair = probe.ProbeClassifier(BiasedClassifier).Pair("pronoun", "male", "female");
        pair.MeanAbsoluteGap.Should().BeApproximately(0.5, 1e-6);
        double.IsNaN(pair.MeanGap).Should().BeTrue("an unsigned gap has no direction");
    }

    [Fact]
    public void ProbeLanguageModel_LengthScorer_GivesTheExactGap()
    {
        var probe = new CounterfactualProbe(Templates.Take(2), [Pronoun]);
        CounterfactualReport report = probe.ProbeLanguageModel(texts => [.. texts.Select(t => -0.5 * t.Length)]);
        report.Pair("pronoun", "female", "male").MeanGap.Should().BeApproximately(-0.5, 1e-12, "\"she\" is one character longer than \"he\"");
        report.Pair("pronoun", "male", "neutral").MaxAbsoluteGap.Should().BeApproximately(1.0, 1e-12);
        report.OverallFlipRate.Should().BeNull();
    }

    [Fact]
    public void Constructor_SlotWithoutAttribute_NamesIt()
        => FluentActions.Invoking(() => new CounterfactualProbe([new PromptTemplate("{pronoun} met {city}.")], [Pronoun]))
            .Should().Throw<ArgumentException>().WithMessage("*{city}*no attribute fills*");

    [Fact]
    public void Defaults_ShippedLists_LoadAndProbe()
    {
        var defaults = CounterfactualAttribute.Defaults();
        defaults.Select(a => a.Slot).Should().Equal("pronoun", "object_pronoun", "possessive", "name", "nationality");
        defaults.Single(a => a.Slot == "name").Groups.Should().OnlyContain(g => g.Terms.Length == 10);
        defaults.Single(a => a.Slot == "nationality").Groups.Should().HaveCount(12);

        var probe = new CounterfactualProbe([new PromptTemplate("{name} said {pronoun} is {nationality}.")], defaults);
        CounterfactualReport report = probe.ProbeClassifier(BiasedClassifier);
        report.Pairs.Should().HaveCount(1 + 1 + 66, "pronoun, name and 12·11/2 nationality pairs (the template has no object or possessive slot)");
        report.Pair("gender (given name)", "female", "male").Comparisons.Should().Be(10);
    }

    [Fact]
    public void Parse_InvalidList_SaysWhatIsWrong()
    {
        FluentActions.Invoking(() => CounterfactualAttribute.Parse("{\"attributes\": [{\"name\": \"x\", \"slot\": \"x\", \"groups\": [{\"name\": \"only\", \"terms\": [\"a\"]}]}]}"))
            .Should().Throw<InvalidDataException>().WithMessage("*at least two named groups*");
        FluentActions.Invoking(() => CounterfactualAttribute.Parse("{}")).Should().Throw<InvalidDataException>().WithMessage("*no \"attributes\" array*");
    }
}
