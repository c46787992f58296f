using FluentAssertions;
using NicheTune.Augmentation;
using NicheTune.Fairness;
using NicheTune.Refinement;
using Xunit;

namespace NicheTune.Tests.Refinement;

public sealed class PromotionGateTests
{
    private static readonly string[] Labels = ["A", "B", "C"];

    // a1–a4 are A, b1–b4 B, c1–c4 C.
    private static readonly LabeledText[] Evaluation = [.. Labels.SelectMany(l => Enumerable.Range(1, 4).Select(i => new LabeledText($"{l.ToLowerInvariant()}{i}", l)))];

    //              a1 a2 a3 a4 | b1 b2 b3 b4 | c1 c2 c3 c4
    // champion     A  A  A  A  | B  B  A  A  | C  C  C  B    accuracy 9/12
    // challenger   A  A  A  A  | B  B  B  B  | C  C  B  B    accuracy 10/12: better overall, worse on C (3/4 → 2/4)
    private static readonly string[] Champion = ["A", "A", "A", "A", "B", "B", "A", "A", "C", "C", "C", "B"];
    private static readonly string[] Challenger = ["A", "A", "A", "A", "B", "B", "B", "B", "C", "C", "B", "B"];

    [Fact]
    public void Evaluate_BetterOverallWorseOnOneClass_RefusesNamingTheSlice()
    {
        var gate = new PromotionGate(Evaluation, Labels);

        PromotionDecision decision = gate.Evaluate(texts => Predict(texts, Champion), texts => Predict(texts, Challenger));

        decision.Promote.Should().BeFalse();
        decision.Champion.Accuracy.Should().BeApproximately(9 / 12.0, 1e-12);
        decision.Challenger.Accuracy.Should().BeApproximately(10 / 12.0, 1e-12);

        // Class C (whole-set confusion): recall 3/4 → 2/4; F1 2·3/(3+4) = 6/7 → 2·2/(2+4) = 2/3.
        decision.Regressions.Select(r => (r.Slice, r.Metric)).Should().Equal(("label = C", "recall"), ("label = C", "f1"));
        MetricComparison worst = decision.Regressions[0];
        worst.Should().BeEquivalentTo(new { Examples = 4, Champion = 0.75, Challenger = 0.5, Tolerance = 0.02, Gated = true });
        worst.Change.Should().BeApproximately(-0.25, 1e-12);
        decision.Regressions[1].Champion.Should().BeApproximately(6 / 7.0, 1e-12);
        decision.Regressions[1].Challenger.Should().BeApproximately(2 / 3.0, 1e-12);

        // Class B improved: recall 1/2 → 1, F1 4/7 → 0.8.
        decision.Comparisons.Where(c => c.Slice == "label = B").Select(c => (c.Metric, Math.Round(c.Champion, 6), Math.Round(c.Challenger, 6)))
            .Should().Equal(("recall", 0.5, 1.0), ("f1", Math.Round(4 / 7.0, 6), 0.8));

        // Whole set: macro-F1 (0.8 + 4/7 + 6/7) / 3 → (1 + 0.8 + 2/3) / 3, an improvement.
        MetricComparison overall = decision.Comparisons.Single(c => c.Slice == "all" && c.Metric == "f1.macro");
        overall.Champion.Should().BeApproximately((0.8 + (4 / 7.0) + (6 / 7.0)) / 3, 1e-12);
        overall.Challenger.Should().BeApproximately((1 + 0.8 + (2 / 3.0)) / 3, 1e-12);
        overall.Regressed.Should().BeFalse();
        decision.Summary.Should().Be("Refuse: 2 regression(s); worst: slice 'label = C' (4 examples) recall 0.7500 → 0.5000 (-0.2500, tolerance 0.0200).");
    }

    // Tolerances wide enough that the challenger's drop on class C passes.
    private static PromotionGate TolerantGate() => new(Evaluation, Labels, new PromotionGateOptions
    {
        Metrics = [PromotionMetric.Accuracy(0.25), PromotionMetric.MacroF1(0.1)],
        ClassTolerance = 0.25,
    });

    [Fact]
    public void Evaluate_DropsWithinTolerance_Promotes()
    {
        var gate = TolerantGate();

        PromotionDecision decision = gate.Compare(Champion, Challenger);

        decision.Promote.Should().BeTrue();
        decision.Regressions.Should().BeEmpty();
        decision.Comparisons.Should().HaveCount(2 * 4, "two metrics on the whole set, recall and F1 of three classes");
        decision.Summary.Should().StartWith("Promote: no regression beyond tolerance on 4 slice(s); accuracy on all 0.7500 → 0.8333 (+0.0833)");
    }

    [Fact]
    public void RequireBiasChecks_AccurateButBiasedChallenger_IsRefusedNamingTheCheck_AndAFairOneIsPromoted()
    {
        var gate = TolerantGate();
        PromotionDecision onMetrics = gate.Compare(Champion, Challenger);
        onMetrics.Promote.Should().BeTrue("every drop is within tolerance");

        // The challenger flips 30 % of its predictions when "she" becomes "he": above the default 10 % flip-rate limit.
        var biased = new BiasReport(new CounterfactualReport(CounterfactualModelKind.Classifier,
            [new CounterfactualPairResult("gender (pronoun)", "female", "male", 40, 0.3, double.NaN, 0.05, 0.4, [])]));
        PromotionDecision refused = onMetrics.RequireBiasChecks(biased);

        refused.Promote.Should().BeFalse();
        refused.Regressions.Should().BeEmpty("the metrics did not regress; the bias check refused it");
        refused.Bias.Should().BeSameAs(biased);
        refused.Summary.Should().StartWith("Refuse: no regression beyond tolerance").And.Contain("Bias checks: 1 failed; worst: ").And.Contain("female");
        refused.ToMarkdown().Should().Contain("### Bias checks that failed");
        onMetrics.Promote.Should().BeTrue("RequireBiasChecks returns a new decision");

        var fair = new BiasReport(new CounterfactualReport(CounterfactualModelKind.Classifier,
            [new CounterfactualPairResult("gender (pronoun)", "female", "male", 40, 0.025, double.NaN, 0.01, 0.1, [])]));
        PromotionDecision promoted = onMetrics.RequireBiasChecks(fair);
        promoted.Promote.Should().BeTrue();
        promoted.Summary.Should().StartWith("Promote:").And.EndWith("Bias checks: 2 passed.");
        promoted.ToMarkdown().Should().NotContain("Bias checks that failed");
        FluentActions.Invoking(() => onMetrics.RequireBiasChecks(null!)).Should().Throw<ArgumentNullException>().WithParameterName("challengerBias");
    }

    [Fact]
    public void Evaluate_MinimumSliceSize_SmallSlicesReportedButNotGated()
    {
        var gate = new PromotionGate(Evaluation, Labels, new PromotionGateOptions { MinimumSliceSize = 5 });

        PromotionDecision decision = gate.Compare(Champion, Challenger);

        decision.Promote.Should().BeTrue("the 4-example label slices are below the minimum size; the whole set improved");
        decision.Comparisons.Where(c => c.Slice == "label = C").Should().OnlyContain(c => !c.Gated && !c.Regressed && c.Change < 0);
        decision.ToMarkdown().Should().Contain("too small to gate");
    }

    [Fact]
    public void Evaluate_OwnSlice_RegressionThereBlocks()
    {
        // "last" = a4, b4, c4. Champion right on a4 only (1/3); this challenger is wrong on all three (0/3).
        string[] challenger = ["A", "A", "A", "C", "B", "B", "A", "C", "C", "C", "C", "B"];
        var gate = new PromotionGate(Evaluation, Labels, new PromotionGateOptions
        {
            SliceByLabel = false,
            SliceOf = e => e.Text.EndsWith('4') ? "last" : null,
            Metrics = [PromotionMetric.Accuracy(0.1)],
        });

        PromotionDecision decision = gate.Compare(Champion, challenger);

        gate.Slices.Should().Equal(("last", 3));
        decision.Comparisons.Select(c => (c.Slice, c.Examples)).Should().Equal(("all", 12), ("last", 3));
        decision.Promote.Should().BeFalse();
        decision.Regressions.Should().ContainSingle().Which.Should().BeEquivalentTo(new { Slice = "last", Metric = "accuracy", Champion = 1 / 3.0, Challenger = 0.0 });
        decision.Comparisons[0].Change.Should().BeApproximately(-1 / 12.0, 1e-12, "9 → 8 of 12 on the whole set, within the 0.1 tolerance");
    }

    [Fact]
    public void Compare_LabelOutsideTheSet_CountsAsWrong()
    {
        string[] garbled = [.. Champion];
        garbled[0] = "banana";
        var gate = new PromotionGate(Evaluation, Labels, new PromotionGateOptions { Metrics = [PromotionMetric.Accuracy(0)] });

        PromotionDecision decision = gate.Compare(Champion, garbled);

        decision.Challenger.Accuracy.Should().BeApproximately(8 / 12.0, 1e-12);
        decision.Challenger.ClassNames.Should().Equal("A", "B", "C", "(other)");
        // Class A: recall 1 → 3/4 (−0.25); F1 0.8 → 2·3/(4+5) = 2/3 (−0.13); the whole set's accuracy 9/12 → 8/12 (−0.08).
        decision.Regressions.Select(r => (r.Slice, r.Metric)).Should().Equal(("label = A", "recall"), ("label = A", "f1"), ("all", "accuracy"));
    }

    [Fact]
    public void ToMarkdown_Refused_ListsTheRegressionsAndEveryComparison()
    {
        string markdown = new PromotionGate(Evaluation, Labels).Compare(Champion, Challenger).ToMarkdown();

        markdown.Should().Contain("Refuse: 2 regression(s)")
            .And.Contain("### Regressions beyond tolerance")
            .And.Contain("| label = C | 4 | recall | 0.7500 | 0.5000 | -0.2500 | 0.0200 |")
            .And.Contain("| label = C | 4 | recall | 0.7500 | 0.5000 | -0.2500 | 0.0200 | **regressed** |")
            .And.Contain("| label = B | 4 | recall | 0.5000 | 1.0000 | +0.5000 | 0.0200 | ok |")
            .And.Contain("| all | 12 | f1.macro |");
    }

    [Fact]
    public void Create_And_Evaluate_BadInput_Throws()
    {
        FluentActions.Invoking(() => new PromotionGate([], Labels)).Should().Throw<ArgumentException>().WithParameterName("evaluationSet");
        FluentActions.Invoking(() => new PromotionGate([new LabeledText("x", "D")], Labels)).Should().Throw<ArgumentException>().WithMessage("*label 'D'*not in the label set*");
        FluentActions.Invoking(() => new PromotionGate(Evaluation, ["A", "A"])).Should().Throw<ArgumentException>().WithParameterName("labels");
        FluentActions.Invoking(() => new PromotionGate(Evaluation, Labels, new PromotionGateOptions { Metrics = [PromotionMetric.Accuracy(), PromotionMetric.Accuracy()] }))
            .Should().Throw<ArgumentException>().WithMessage("*repeat a name*");
        FluentActions.Invoking(() => PromotionMetric.MacroF1(-0.1)).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("tolerance");

        var gate = new PromotionGate(Evaluation, Labels);
        gate.Invoking(g => g.Evaluate(t => Predict(t, Champion), t => ["A"])).Should().Throw<InvalidOperationException>().WithMessage("*challenger returned 1 predictions for 12*");
        gate.Invoking(g => g.Compare(Champion, ["A"])).Should().Throw<ArgumentException>().WithParameterName("challengerPredictions");
    }

    [Fact]
    public void Custom_Metric_ComparedLikeABuiltIn()
    {
        var recallOfB = PromotionMetric.Custom("recall.B", r => r.Classes[1].Recall, tolerance: 0);
        var gate = new PromotionGate(Evaluation, Labels, new PromotionGateOptions { Metrics = [recallOfB], SliceByLabel = false });

        MetricComparison only = gate.Compare(Champion, Challenger).Comparisons.Single();

        only.Should().BeEquivalentTo(new { Slice = "all", Metric = "recall.B", Champion = 0.5, Challenger = 1.0 });
    }

    // The evaluation texts are the keys: a "model" that answers from a fixed table, checking it got the texts in order.
    private static IReadOnlyList<string> Predict(IReadOnlyList<string> texts, string[] answers)
    {
        texts.Should().Equal(Evaluation.Select(e => e.Text));
        return answers;
    }
}
