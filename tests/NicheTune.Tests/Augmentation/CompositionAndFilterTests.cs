using FluentAssertions;
using NicheTune.Augmentation;
using Xunit;

namespace NicheTune.Tests.Augmentation;

public sealed class CompositionAndFilterTests
{
    // A user's own augmenter: appends a marker. Plugs into every combinator like a built-in.
    private sealed class Append(string marker) : IAugmenter<string>
    {
        public IEnumerable<string> Augment(string example, Random random) => [example + marker];
    }

    [Fact]
    public void Sequence_AppliesStepsInOrder_SkippedStepsPassThrough()
    {
        IAugmenter<string> sequence = Augmenters.Sequence<string>(new Append("a"), new Append("b").WithProbability(0), new Append("c"));
        sequence.Augment("x", new Random(1)).Should().Equal("xac");
    }

    [Fact]
    public void WithProbability_ManyRuns_AppliesAboutThatOften()
    {
        IAugmenter<string> sometimes = new Append("!").WithProbability(0.3);
        var random = new Random(5);
        int applied = Enumerable.Range(0, 4000).Count(_ => sometimes.Augment("x", random).Any());
        (applied / 4000.0).Should().BeApproximately(0.3, 0.03);
    }

    [Fact]
    public void OneOf_Weighted_PicksInProportion()
    {
        IAugmenter<string> choice = Augmenters.OneOf<string>((new Append("a"), 3), (new Append("b"), 1));
        var random = new Random(6);
        int a = Enumerable.Range(0, 4000).Count(_ => choice.Augment("", random).Single() == "a");
        (a / 4000.0).Should().BeApproximately(0.75, 0.03);
    }

    [Fact]
    public void CopiesForLabeled_KeepsLabelAndMakesNVariants()
    {
        IAugmenter<LabeledText> augmenter = Augmenters.SynonymReplacement(0.2).Copies(3).ForLabeled();
        var example = new LabeledText("The program stores large files on the disk quickly", "storage");
        LabeledText[] variants = [.. augmenter.Augment(example, new Random(8))];
        variants.Should().HaveCount(3).And.OnlyContain(v => v.Label == "storage" && v.Text != example.Text);
    }

    [Fact]
    public void AugmentAll_Seeded_IsReproducibleAndKeepsOriginalsFirst()
    {
        LabeledText[] data = [new("The compiler translates code quickly", "programming"), new("Routers forward packets between networks", "networking")];
        IAugmenter<LabeledText> eda = Augmenters.Eda(new EdaOptions { Copies = 2 }).ForLabeled();
        List<LabeledText> first = data.AugmentAll(eda, seed: 3);
        first.Should().Equal(data.AugmentAll(eda, seed: 3));
        first[0].Should().Be(data[0]);
        first.Should().HaveCountGreaterThan(4).And.Contain(data[1]);
        first.Count(e => e.Label == "networking").Should().BeGreaterThan(1);
    }

    [Fact]
    public void Filter_DropsIdenticalShortAndDriftedVariants()
    {
        const string original = "The router forwards packets between two networks";
        var filter = new AugmentationFilter { MinSimilarity = 0.4, MaxSimilarity = 0.98 };
        filter.Accepts(original, "the router  forwards packets between two networks").Should().BeFalse("identical up to case and spacing");
        filter.Accepts(original, "The router").Should().BeFalse("too short");
        filter.Accepts(original, "Bananas grow on tall tropical plants in warm places").Should().BeFalse("drifted");
        filter.Accepts(original, "The router sends packets between two networks").Should().BeTrue();

        IAugmenter<string> filtered = Augmenters.OneOf<string>(new Append(""), new Append(" between two networks")).Copies(6).Filtered(filter);
        filtered.Augment(original, new Random(1)).Should().Equal(original + " between two networks");
    }

    [Fact]
    public void Similarity_KnownValues()
    {
        TextSimilarity.TokenJaccard("a b c", "b c d").Should().BeApproximately(0.5, 1e-12);
        TextSimilarity.TokenJaccard("swap these", "these swap").Should().Be(1.0);
        TextSimilarity.CharacterNGramCosine("Hello  World", "hello world").Should().BeApproximately(1.0, 1e-12);
        TextSimilarity.CharacterNGramCosine("abc", "xyz").Should().Be(0.0);
        TextSimilarity.CharacterNGramCosine("swap these", "these swap").Should().BeInRange(0.5, 0.95);
    }

    [Fact]
    public void Filter_InvalidBand_ThrowsNamingTheSetting()
    {
        var act = () => Augmenters.SynonymReplacement().Filtered(new AugmentationFilter { MinSimilarity = 0.9, MaxSimilarity = 0.5 });
        act.Should().Throw<ArgumentException>().WithMessage("*band [0.9, 0.5]*");
    }
}
