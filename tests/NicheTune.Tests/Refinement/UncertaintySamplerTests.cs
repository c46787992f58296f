using FluentAssertions;
using NicheTune.Deployment;
using NicheTune.Prompting;
using NicheTune.Refinement;
using Xunit;

namespace NicheTune.Tests.Refinement;

public sealed class UncertaintySamplerTests
{
    [Fact]
    public void Measures_HandMadeDistributions_MatchTheFormulas()
    {
        float[] p = [0.5f, 0.3f, 0.2f];

        Uncertainty.LeastConfidence().Score(p).Should().BeApproximately(0.5, 1e-6);
        Uncertainty.Margin().Score(p).Should().BeApproximately(1 - (0.5 - 0.3), 1e-6);
        double entropy = -((0.5 * Math.Log(0.5)) + (0.3 * Math.Log(0.3)) + (0.2 * Math.Log(0.2))) / Math.Log(3);
        Uncertainty.Entropy().Score(p).Should().BeApproximately(entropy, 1e-6).And.BeApproximately(0.93723, 1e-5);

        float[] uniform = [0.25f, 0.25f, 0.25f, 0.25f];
        Uncertainty.LeastConfidence().Score(uniform).Should().BeApproximately(0.75, 1e-6);
        Uncertainty.Margin().Score(uniform).Should().BeApproximately(1, 1e-6);
        Uncertainty.Entropy().Score(uniform).Should().BeApproximately(1, 1e-6);

        float[] certain = [0f, 1f, 0f];
        Uncertainty.LeastConfidence().Score(certain).Should().Be(0);
        Uncertainty.Margin().Score(certain).Should().Be(0);
        Uncertainty.Entropy().Score(certain).Should().Be(0);
    }

    [Theory]
    [InlineData("least confidence", 1)]
    [InlineData("margin", 0)]
    [InlineData("entropy", 1)]
    public void Select_TwoShapesOfDoubt_EachMeasurePicksItsOwn(string measure, int expected)
    {
        // [0.5, 0.49, 0.01] hesitates between two classes (margin 0.99 vs 0.9); [0.4, 0.3, 0.3] is flatter
        // (least confidence 0.6 vs 0.5; entropy 0.991 vs 0.676).
        float[][] pool = [[0.5f, 0.49f, 0.01f], [0.4f, 0.3f, 0.3f]];
        IUncertaintyMeasure m = measure switch
        {
            "least confidence" => Uncertainty.LeastConfidence(),
            "margin" => Uncertainty.Margin(),
            _ => Uncertainty.Entropy(),
        };
        var sampler = new UncertaintySampler(new UncertaintySamplerOptions { Measure = m, DiversityWeight = 0 });

        IReadOnlyList<SelectedItem<float[]>> picked = sampler.Select(pool, p => p, k: 2);

        m.Name.Should().Be(measure);
        picked.Select(s => s.Index).Should().Equal(expected, 1 - expected);
        picked[0].Uncertainty.Should().BeGreaterThan(picked[1].Uncertainty);
        picked[0].Score.Should().Be(picked[0].Uncertainty, "with no diversity weight the score is the uncertainty");
    }

    [Fact]
    public void Select_NearDuplicateTexts_DiversityTermSpreadsThePicks()
    {
        string[] texts =
        [
            "The Transmission Control Protocol sends a stream of bytes over a network.",
            "The Transmission Control Protocol sends a stream of bytes over a network!",
            "the transmission control protocol sends a stream of bytes over a network",
            "A compiler translates source code into machine instructions.",
        ];
        float[][] probabilities = [[0.34f, 0.33f, 0.33f], [0.35f, 0.33f, 0.32f], [0.36f, 0.33f, 0.31f], [0.6f, 0.3f, 0.1f]];
        int[] pool = [0, 1, 2, 3];

        var plain = new UncertaintySampler(new UncertaintySamplerOptions { Measure = Uncertainty.LeastConfidence(), DiversityWeight = 0 });
        var diverse = new UncertaintySampler(new UncertaintySamplerOptions { Measure = Uncertainty.LeastConfidence(), DiversityWeight = 0.5 });

        plain.Select(pool, i => probabilities[i], 2, i => texts[i]).Select(s => s.Index).Should().Equal(0, 1);
        IReadOnlyList<SelectedItem<int>> spread = diverse.Select(pool, i => probabilities[i], 2, i => texts[i]);

        spread.Select(s => s.Index).Should().Equal(0, 3);
        spread[0].Novelty.Should().Be(1);
        spread[1].Novelty.Should().BeApproximately(1 - NearDuplicates.Similarity(texts[3], texts[0]), 1e-12);
        spread[1].Score.Should().BeApproximately((0.5 * 0.4) + (0.5 * spread[1].Novelty), 1e-6);
    }

    [Fact]
    public void Select_Embeddings_NoveltyIsOneMinusCosineToTheNearestPick()
    {
        // Least confidence: 0.5, 0.5, 0.4. With λ = 0.5 the first pick scores 0.5·0.5 + 0.5·1 = 0.75 (tie → index 0); then
        // item 1 (same direction as 0) has novelty 0 → 0.25, item 2 (orthogonal) novelty 1 → 0.2 + 0.5 = 0.7.
        float[][] probabilities = [[0.5f, 0.5f], [0.5f, 0.5f], [0.6f, 0.4f]];
        float[][] embeddings = [[1, 0], [2, 0], [0, 3]];
        var sampler = new UncertaintySampler(new UncertaintySamplerOptions { Measure = Uncertainty.LeastConfidence(), DiversityWeight = 0.5 });

        IReadOnlyList<SelectedItem<int>> picked = sampler.Select([0, 1, 2], i => probabilities[i], 3, embedding: i => embeddings[i]);

        picked.Select(p => (p.Index, Math.Round(p.Novelty, 6), Math.Round(p.Score, 6))).Should().Equal((0, 1.0, 0.75), (2, 1.0, 0.7), (1, 0.0, 0.25));
    }

    [Fact]
    public void Select_FeedbackItems_UsesStoredProbabilitiesAndInputs()
    {
        FeedbackItem Item(long id, string input, params float[] p)
            => new(id, DateTimeOffset.UnixEpoch, PredictionKind.Classify, input, "networking", [.. p], [], null, "observed", false, null, null, null);
        FeedbackItem[] pool =
        [
            Item(1, "sure about this packet", 0.9f, 0.05f, 0.05f),
            Item(2, "no idea what this is", 0.34f, 0.33f, 0.33f),
            Item(3, "somewhat unsure", 0.6f, 0.3f, 0.1f),
        ];

        IReadOnlyList<SelectedItem<FeedbackItem>> picked = new UncertaintySampler().Select(pool, 2);

        picked.Select(p => p.Item.Id).Should().Equal(2, 3);
    }

    [Fact]
    public void Select_OwnMeasure_PlugsInLikeABuiltIn()
    {
        var sampler = new UncertaintySampler(new UncertaintySamplerOptions { Measure = new SecondClassProbability(), DiversityWeight = 0 });
        float[][] pool = [[0.7f, 0.1f, 0.2f], [0.2f, 0.7f, 0.1f], [0.5f, 0.3f, 0.2f]];

        sampler.Select(pool, p => p, 2).Select(s => (s.Index, Math.Round(s.Uncertainty, 6))).Should().Equal((1, 0.7), (2, 0.3));
    }

    [Fact]
    public void Select_BadInput_ThrowsNamingTheProblem()
    {
        var sampler = new UncertaintySampler(new UncertaintySamplerOptions { DiversityWeight = 0 });
        float[][] pool = [[0.5f, 0.5f], [0.9f, 0.3f]];

        sampler.Invoking(s => s.Select(pool, p => p, 1)).Should().Throw<ArgumentException>().WithMessage("*Item 1*sum to 1.2000*softmax*");
        sampler.Invoking(s => s.Select(pool, p => p, 3)).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("k");
        sampler.Invoking(s => s.Select([new float[] { 1f }], p => p, 1)).Should().Throw<ArgumentException>().WithMessage("*1 class probabilities*two classes*");
        new UncertaintySampler().Invoking(s => s.Select([new float[] { 0.5f, 0.5f }], p => p, 1)).Should().Throw<ArgumentException>().WithMessage("*diversity weight is 0.3*text nor embedding*");
        FluentActions.Invoking(() => new UncertaintySampler(new UncertaintySamplerOptions { DiversityWeight = 1.5, ShingleSize = 0 }))
            .Should().Throw<ArgumentException>().WithMessage("*DiversityWeight is 1.5*ShingleSize is 0*");
    }

    /// <summary>A user's own measure: the second class's probability.</summary>
    private sealed class SecondClassProbability : IUncertaintyMeasure
    {
        public string Name => "second class";

        public double Score(ReadOnlySpan<float> probabilities) => probabilities[1];
    }
}
