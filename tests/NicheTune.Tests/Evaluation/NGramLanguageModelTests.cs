using FluentAssertions;
using NicheTune.Evaluation;
using Xunit;

namespace NicheTune.Tests.Evaluation;

public sealed class NGramLanguageModelTests
{
    [Fact]
    public void Unigram_HandCountedCase_MatchesAddOneFormula()
    {
        // Targets (positions ≥ 1) of [0,1,1,2]: 1, 1, 2 → counts {1: 2, 2: 1}, total 3, vocabulary 4.
        var model = new NGramLanguageModel(1, 4).Fit([[0, 1, 1, 2]]);
        model.Probability([0, 1], 1).Should().BeApproximately(3.0 / 7, 1e-12);
        model.Probability([0, 3], 1).Should().BeApproximately(1.0 / 7, 1e-12);
    }

    [Fact]
    public void Bigram_WittenBell_InterpolatesWithTheUnigram()
    {
        // Context 1 is followed by 1 once and 2 once: total 2, followers 2 → λ = 2 / 4 = 0.5.
        // P(2 | 1) = 0.5 · 1/2 + 0.5 · P_uni(2) = 0.25 + 0.5 · 2/7.
        var model = new NGramLanguageModel(2, 4).Fit([[0, 1, 1, 2]]);
        model.Probability([1, 2], 1).Should().BeApproximately(0.25 + 0.5 * 2.0 / 7, 1e-12);
    }

    [Fact]
    public void Probabilities_OverTheVocabulary_SumToOne()
    {
        var model = new NGramLanguageModel(3, 5).Fit([[0, 1, 2, 3, 1, 2, 4, 1, 2, 3]]);
        double sum = Enumerable.Range(0, 5).Sum(t => model.Probability([1, 2, t], 2));
        sum.Should().BeApproximately(1.0, 1e-12);
    }

    [Fact]
    public void HigherOrder_OnRepetitiveText_HasLowerPerplexity()
    {
        int[] text = [.. Enumerable.Repeat(new[] { 3, 4, 5, 6, 7 }, 40).SelectMany(x => x)];
        double unigram = new NGramLanguageModel(1, 10).Fit([text]).Perplexity([text]);
        double trigram = new NGramLanguageModel(3, 10).Fit([text]).Perplexity([text]);
        trigram.Should().BeLessThan(unigram / 3);
    }
}
