using FluentAssertions;
using NicheTune.Evaluation;
using NicheTune.Tests.Support;
using Xunit;

namespace NicheTune.Tests.Evaluation;

public sealed class TextMetricTests
{
    [Theory]
    [InlineData("The  Quick, brown fox!", "quick brown fox")]
    [InlineData("An apple a day", "apple day")]
    [InlineData("Don't re-run the\tthe theory", "dont rerun theory")] // punctuation is deleted, not spaced; "theory" keeps its "the"
    [InlineData("  ", "")]
    public void Normalize_SquadRules_LowercasesStripsPunctuationAndArticles(string text, string expected)
        => TextMetrics.Normalize(text).Should().Be(expected);

    [Theory]
    [InlineData("The Eiffel Tower", "eiffel tower.", true)]
    [InlineData("Eiffel Towers", "Eiffel Tower", false)]
    [InlineData("e-mail", "email", true)]
    [InlineData("the", "", true)]
    public void ExactMatch_Pair_ComparesNormalisedAnswers(string prediction, string reference, bool expected)
        => TextMetrics.ExactMatch(prediction, reference).Should().Be(expected);

    [Theory]
    // "cat sat on mat" vs "cat sat on red mat": 4 common; P = 4/4, R = 4/5, F1 = 2·1·0.8 / 1.8 = 8/9
    [InlineData("the cat sat on the mat", "a cat sat on a red mat", 8.0 / 9)]
    // bags {x:2, y:1} and {x:1, y:2}: common = min(2,1) + min(1,2) = 2; P = R = 2/3 → F1 = 2/3
    [InlineData("x x y", "x y y", 2.0 / 3)]
    // no common token
    [InlineData("red", "blue", 0.0)]
    // both normalise to no tokens ("the" is an article) → 1; one empty → 0
    [InlineData("", "The", 1.0)]
    [InlineData("", "cat", 0.0)]
    [InlineData("Cat!", "cat", 1.0)]
    public void TokenF1_Pair_MatchesSquadDefinition(string prediction, string reference, double expected)
        => TextMetrics.TokenF1(prediction, reference).Should().BeApproximately(expected, 1e-12);

    [Fact]
    public void PairMetrics_OverASet_AreTheMeanOverPairs()
    {
        (string, string)[] pairs = [("The Eiffel Tower", "Eiffel Tower"), ("x x y", "x y y"), ("Paris", "Paris, France")];

        // Exact match: 1, 0, 0 → 1/3.   Token F1: 1, 2/3, and "paris" vs "paris france" = 2·1·0.5/1.5 = 2/3 → mean 7/9.
        TextMetrics.ExactMatch(pairs).Should().BeApproximately(1.0 / 3, 1e-12);
        TextMetrics.TokenF1(pairs).Should().BeApproximately((1 + 2.0 / 3 + 2.0 / 3) / 3, 1e-12);
        TextMetrics.TokenF1([]).Should().Be(double.NaN);
    }

    [Fact]
    public void PairMetrics_NullInAPair_ThrowsNamingTheFix()
    {
        var run = () => TextMetrics.ExactMatch([("a", "b"), (null!, "c")]);
        run.Should().Throw<ArgumentException>().WithParameterName("pairs").WithMessage("Pair 1 has a null prediction*empty string*");
    }

    [Fact]
    public void GlossaryTermMetric_MultiWordAndOverlappingTerms_MatchesLongestFirstAndWholeWords()
    {
        var metric = new GlossaryTermMetric(["network", "neural network", "network protocol", "TCP/IP", "C++", "compiler", "Neural  Network"]);

        metric.Terms.Should().Equal("network", "neural network", "network protocol", "TCP/IP", "C++", "compiler");
        // "Neural\n Network" matches across whitespace and case; the plain "network" inside both longer terms is not counted again.
        metric.FindTerms("A Neural\n Network uses a network protocol over TCP/IP, written in C++.")
            .Should().Equal("neural network", "network protocol", "TCP/IP", "C++");
        metric.FindTerms("compilers and a recompiler are not the compiler's job").Should().Equal("compiler");
        new GlossaryTermMetric(["machine learning", "learning rate"]).FindTerms("machine learning rate").Should().Equal("machine learning");
    }

    [Fact]
    public void GlossaryTermMetric_Pairs_PoolsClippedCountsIntoPrecisionAndRecall()
    {
        // pair  prediction terms             reference terms     correct (min per term)
        //  1    neural network, network      neural network      1
        //  2    network ×2                   network             1 (clipped: the reference uses it once)
        //  3    —                            network protocol    0
        // predicted 4, referenced 3, correct 2 → precision 1/2, recall 2/3, F1 = 2·2/(4+3) = 4/7
        var metric = new GlossaryTermMetric(["network", "neural network", "network protocol"]);
        GlossaryTermReport report = metric.Evaluate(
        [
            ("the neural network and the network", "a neural network"),
            ("network network", "network"),
            ("nothing relevant", "a network protocol"),
        ]);

        report.Pairs.Should().Be(3);
        (report.PredictedTerms, report.ReferenceTerms, report.CorrectTerms).Should().Be((4L, 3L, 2L));
        report.Precision.Should().BeApproximately(0.5, 1e-12);
        report.Recall.Should().BeApproximately(2.0 / 3, 1e-12);
        report.F1.Should().BeApproximately(4.0 / 7, 1e-12);
        report.PerTerm.Should().Equal(
            new GlossaryTermCount("network", 3, 1, 1),
            new GlossaryTermCount("neural network", 1, 1, 1),
            new GlossaryTermCount("network protocol", 0, 1, 0));
        report.PerTerm[0].Precision.Should().BeApproximately(1.0 / 3, 1e-12);
        report.ToMarkdown().Should().Contain("| network | 3 | 1 | 1 | 0.3333 | 1.0000 |");
    }

    [Fact]
    public void GlossaryTermMetric_FoldocGlossary_ScoresGeneratedDefinitions()
    {
        // The glossary is every term of the FOLDOC subset (1,501 real computing terms, noise included: "FAST", "to", "go").
        // The sentences avoid the noisy short terms; the terms they contain are:
        //   pair 1 prediction: bit stuffing, back door           reference: bit stuffing, Border Gateway Protocol
        //   pair 2 prediction: compiler, server, compiler        reference: server, compiler
        // predicted 5, referenced 4, correct 1 + (min(2,1) + 1) = 3 → precision 3/5, recall 3/4, F1 = 6/9
        string[] glossary = [.. TestData.FoldocEntries.Select(e => e.Term)];
        glossary.Should().Contain(["bit stuffing", "back door", "Border Gateway Protocol", "compiler", "server"]);
        var metric = new GlossaryTermMetric(glossary);

        GlossaryTermReport report = metric.Evaluate(
        [
            ("The sender uses bit stuffing; routers speak BGP through a back door.",
             "Bit stuffing keeps the receiver's clock in sync, and the Border Gateway Protocol routes between networks."),
            ("The compiler runs on a server; the compiler is slow.", "The server runs a compiler."),
        ]);

        (report.PredictedTerms, report.ReferenceTerms, report.CorrectTerms).Should().Be((5L, 4L, 3L));
        report.Precision.Should().BeApproximately(0.6, 1e-12);
        report.Recall.Should().BeApproximately(0.75, 1e-12);
        report.F1.Should().BeApproximately(2.0 / 3, 1e-12);
        report.PerTerm.Single(t => t.Term == "Border Gateway Protocol").Should().Be(new GlossaryTermCount("Border Gateway Protocol", 0, 1, 0));
        report.PerTerm.Single(t => t.Term == "compiler").Should().Be(new GlossaryTermCount("compiler", 2, 1, 1));
    }

    [Fact]
    public void GlossaryTermMetric_ResetAndNoTerms_GivesZeroScores()
    {
        var metric = new GlossaryTermMetric(["kernel"]);
        metric.Update("kernel", "kernel");
        metric.Reset();
        metric.Update("no terms here", "none either");
        GlossaryTermReport report = metric.Compute();
        (report.Pairs, report.Precision, report.Recall, report.F1).Should().Be((1, 0.0, 0.0, 0.0));
        report.PerTerm.Should().BeEmpty();
    }

    [Fact]
    public void GlossaryTermMetric_BlankTerm_ThrowsNamingTheTerm()
    {
        var create = () => new GlossaryTermMetric(["kernel", "  "]);
        create.Should().Throw<ArgumentException>().WithParameterName("terms").WithMessage("Glossary term 1 is '  '*");
        var empty = () => new GlossaryTermMetric([]);
        empty.Should().Throw<ArgumentException>().WithMessage("*glossary is empty*");
    }
}
