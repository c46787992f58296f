using FluentAssertions;
using NicheTune.Evaluation;
using NicheTune.Tests.Support;
using NicheTune.Training;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace NicheTune.Tests.Evaluation;

[Collection(TorchCollection.Name)]
public sealed class ErrorAnalysisTests
{
    private static readonly string[] Names = ["alpha", "beta", "gamma"];

    // A classifier whose output depends only on the first token: row id of the table holds ln p, so softmax = p and
    // every example's loss is −ln p(target). Ids 0, 7, 8, 9 are uniform filler.
    private static readonly double[,] ClassProbabilities =
    {
        { 1 / 3.0, 1 / 3.0, 1 / 3.0 },
        { 0.7, 0.2, 0.1 },    // id 1
        { 0.1, 0.8, 0.1 },    // id 2
        { 0.6, 0.3, 0.1 },    // id 3
        { 0.5, 0.1, 0.4 },    // id 4
        { 0.2, 0.1, 0.7 },    // id 5
        { 0.05, 0.9, 0.05 },  // id 6
        { 1 / 3.0, 1 / 3.0, 1 / 3.0 },
        { 1 / 3.0, 1 / 3.0, 1 / 3.0 },
        { 1 / 3.0, 1 / 3.0, 1 / 3.0 },
    };

    //  example  first id  target  p(target)  loss       predicted  slice
    //  0        1         0       0.7        0.356675   0 ✓        A
    //  1        2         1       0.8        0.223144   1 ✓        A
    //  2        3         1       0.3        1.203973   0 ✗        A
    //  3        4         2       0.4        0.916291   0 ✗        A
    //  4        5         2       0.7        0.356675   2 ✓        B
    //  5        6         0       0.05       2.995732   1 ✗        B
    //  6        3         1       0.3        1.203973   0 ✗        B
    private static readonly List<TokenExample> Examples =
    [
        new([1, 9], 0), new([2], 1), new([3, 7, 7], 1), new([4], 2),
        new([5], 2), new([6, 8], 0), new([3], 1),
    ];

    private static readonly ErrorAnalysisOptions SliceOptions = new()
    {
        BatchSize = 3,
        ClassNames = Names,
        SliceOf = i => i < 4 ? "A" : "B",
        SliceMetrics = [Metrics.Loss, Metrics.Accuracy, Metrics.MacroF1],
    };

    [Fact]
    public void Run_FixedClassifier_OrdersWorstExamplesByLoss()
    {
        using var model = new LookupClassifier(ClassProbabilities);
        ErrorReport report = ErrorAnalysis.Run(model, Objectives.SequenceClassification(), Examples, SliceOptions);

        // Losses −ln p: 5 (2.996) > 2 = 6 (1.204, tie kept in index order) > 3 (0.916) > 0 = 4 (0.357) > 1 (0.223).
        report.WorstExamples(7).Select(e => e.Index).Should().Equal(5, 2, 6, 3, 0, 4, 1);
        ExampleResult worst = report.WorstExamples(1).Single();
        worst.Should().Be(new ExampleResult(5, worst.Loss, 1, 0, 1, 0, "B"));
        worst.Loss.Should().BeApproximately(-Math.Log(0.05), 1e-5);
        report.Examples.Select(e => e.Loss).Should().Equal(
            [-Math.Log(0.7), -Math.Log(0.8), -Math.Log(0.3), -Math.Log(0.4), -Math.Log(0.7), -Math.Log(0.05), -Math.Log(0.3)],
            (a, b) => Math.Abs(a - b) < 1e-5);
        report.Examples.Select(e => e.Predicted).Should().Equal(0, 1, 0, 0, 2, 1, 0);
        report.Accuracy.Should().BeApproximately(3.0 / 7, 1e-12);
        report.Loss.Should().BeApproximately(report.Examples.Average(e => e.Loss), 1e-9, "one target per example");
    }

    [Fact]
    public void Run_FixedClassifier_FindsConfusedPairsAndPerClassScores()
    {
        using var model = new LookupClassifier(ClassProbabilities);
        ErrorReport report = ErrorAnalysis.Run(model, Objectives.SequenceClassification(), Examples, SliceOptions);

        // Confusion (rows target): alpha [1 1 0], beta [2 1 0], gamma [1 0 1].
        // Off-diagonal: beta→alpha 2 (examples 2, 6), alpha→beta 1 (5), gamma→alpha 1 (3); ties by target index.
        report.MostConfusedPairs(10).Select(p => (p.TrueName, p.PredictedName, p.Count)).Should().Equal(
            ("beta", "alpha", 2L), ("alpha", "beta", 1L), ("gamma", "alpha", 1L));
        ClassificationReport classes = report.Classes!;
        classes.ToMatrix().Should().BeEquivalentTo(new long[,] { { 1, 1, 0 }, { 2, 1, 0 }, { 1, 0, 1 } });

        // support 2, 3, 2; predicted 4, 2, 1; TP 1, 1, 1 → precision 1/4, 1/2, 1; recall 1/2, 1/3, 1/2; F1 = 2/6, 2/5, 2/3.
        classes.Classes.Select(c => c.Support).Should().Equal(2, 3, 2);
        classes.Classes.Select(c => c.Precision).Should().Equal([0.25, 0.5, 1.0], (a, b) => Math.Abs(a - b) < 1e-12);
        classes.Classes.Select(c => c.Recall).Should().Equal([0.5, 1.0 / 3, 0.5], (a, b) => Math.Abs(a - b) < 1e-12);
        classes.Classes.Select(c => c.F1).Should().Equal([1.0 / 3, 0.4, 2.0 / 3], (a, b) => Math.Abs(a - b) < 1e-12);
        classes.F1(Average.Macro).Should().BeApproximately(1.4 / 3, 1e-12);
    }

    [Fact]
    public void Run_TwoSlices_ReportsMetricsAndGapsToTheWholeSet()
    {
        using var model = new LookupClassifier(ClassProbabilities);
        ErrorReport report = ErrorAnalysis.Run(model, Objectives.SequenceClassification(), Examples, SliceOptions);

        // Whole set: accuracy 3/7; loss = mean of the seven losses; macro F1 = (1/3 + 2/5 + 2/3) / 3 = 7/15.
        double lossA = -(Math.Log(0.7) + Math.Log(0.8) + Math.Log(0.3) + Math.Log(0.4)) / 4;
        double lossB = -(Math.Log(0.7) + Math.Log(0.05) + Math.Log(0.3)) / 3;
        double lossAll = ((4 * lossA) + (3 * lossB)) / 7;
        report.Overall["accuracy"].Should().BeApproximately(3.0 / 7, 1e-12);
        report.Overall["loss"].Should().BeApproximately(lossAll, 1e-5);
        report.Overall["f1.macro"].Should().BeApproximately(7.0 / 15, 1e-12);

        report.Slices.Select(s => (s.Slice, s.Examples)).Should().Equal(("A", 4), ("B", 3));
        SliceResult a = report.Slices[0], b = report.Slices[1];

        // A = examples 0–3: 2 of 4 right. Its confusion: alpha [1 0 0], beta [1 1 0], gamma [1 0 0]
        //   → F1 alpha 2/(3+1) = 1/2, beta 2/(1+2) = 2/3, gamma 0 (support 1, never predicted) → macro 7/18.
        a.Metrics["accuracy"].Should().BeApproximately(0.5, 1e-12);
        a.Gaps["accuracy"].Should().BeApproximately(0.5 - (3.0 / 7), 1e-12);           // +1/14
        a.Metrics["loss"].Should().BeApproximately(lossA, 1e-5);
        a.Gaps["loss"].Should().BeApproximately(lossA - lossAll, 1e-5);
        a.Metrics["f1.macro"].Should().BeApproximately(7.0 / 18, 1e-12);
        a.Gaps["f1.macro"].Should().BeApproximately((7.0 / 18) - (7.0 / 15), 1e-12);  // −7/90

        // B = examples 4–6: 1 of 3 right. Confusion: alpha [0 1 0], beta [1 0 0], gamma [0 0 1] → F1 0, 0, 1 → macro 1/3.
        b.Metrics["accuracy"].Should().BeApproximately(1.0 / 3, 1e-12);
        b.Gaps["accuracy"].Should().BeApproximately((1.0 / 3) - (3.0 / 7), 1e-12);     // −2/21
        b.Metrics["loss"].Should().BeApproximately(lossB, 1e-5);
        b.Metrics["f1.macro"].Should().BeApproximately(1.0 / 3, 1e-12);
        b.Gaps["f1.macro"].Should().BeApproximately((1.0 / 3) - (7.0 / 15), 1e-12);   // −2/15
    }

    [Fact]
    public void Run_BatchSize_DoesNotChangeTheReport()
    {
        using var model = new LookupClassifier(ClassProbabilities);
        ErrorReport small = ErrorAnalysis.Run(model, Objectives.SequenceClassification(), Examples, SliceOptions);
        ErrorReport whole = ErrorAnalysis.Run(model, Objectives.SequenceClassification(), Examples, new ErrorAnalysisOptions
        {
            BatchSize = 64, ClassNames = Names, SliceOf = SliceOptions.SliceOf, SliceMetrics = SliceOptions.SliceMetrics,
        });

        whole.Examples.Select(e => e.Loss).Should().Equal(small.Examples.Select(e => e.Loss), (x, y) => Math.Abs(x - y) < 1e-9);
        whole.Classes!.ToMatrix().Should().BeEquivalentTo(small.Classes!.ToMatrix());
        foreach ((SliceResult x, SliceResult y) in whole.Slices.Zip(small.Slices))
        {
            foreach (string name in x.Metrics.Keys)
            {
                x.Metrics[name].Should().BeApproximately(y.Metrics[name], 1e-6, name);
            }
        }
    }

    [Fact]
    public void ToMarkdown_FixedClassifier_RendersEveryTable()
    {
        using var model = new LookupClassifier(ClassProbabilities);
        string markdown = ErrorAnalysis.Run(model, Objectives.SequenceClassification(), Examples, SliceOptions).ToMarkdown(worstExamples: 2, confusedPairs: 1);

        markdown.Should().Contain("7 examples; loss")
            .And.Contain("| 5 | 2.9957 | alpha | beta | B |")
            .And.Contain("| 2 | 1.2040 | beta | alpha | A |")
            .And.NotContain("| 6 | 1.2040 |", "only the two worst examples are listed")
            .And.Contain("| beta | alpha | 2 |")
            .And.Contain("| gamma | 1.0000 | 0.5000 | 0.6667 | 2 |")
            .And.Contain("| A | 4 |")
            .And.Contain("+0.0714");
    }

    [Fact]
    public void Run_CausalLm_ReportsMeanTokenLossPerExample()
    {
        // Bigram model: logits at a position are ln p(next | current token).
        //   A = [1, 2, 3]: −(ln p(2|1) + ln p(3|2)) / 2 = −(ln 0.5 + ln 0.25) / 2 = 1.039721, 2 targets
        //   B = [1, 2]:    −ln p(2|1) = −ln 0.5 = 0.693147, 1 target
        //   C = [3, 1]:    −ln p(1|3) = −ln 0.1 = 2.302585, 1 target
        // Arg-max: after 1 → 2 (right in A and B), after 2 → 0 (uniform row, ties to index 0; wrong), after 3 → 2 (wrong).
        double[,] next =
        {
            { 0.25, 0.25, 0.25, 0.25 },
            { 0.1, 0.1, 0.5, 0.3 },
            { 0.25, 0.25, 0.25, 0.25 },
            { 0.1, 0.1, 0.5, 0.3 },
        };
        using var model = new BigramLm(next);
        List<TokenExample> data = [new([1, 2, 3]), new([1, 2]), new([3, 1])];

        ErrorReport report = ErrorAnalysis.Run(model, Objectives.CausalLanguageModeling(), data, new ErrorAnalysisOptions { BatchSize = 2 });

        report.WorstExamples(3).Select(e => e.Index).Should().Equal(2, 0, 1);
        report.Examples.Select(e => (e.TargetCount, e.CorrectCount, e.Predicted, e.Target)).Should().Equal(
            (2L, 1L, (int?)null, (int?)null), (1L, 1L, null, null), (1L, 0L, null, null));
        report.Examples.Select(e => e.Loss).Should().Equal(
            [-(Math.Log(0.5) + Math.Log(0.25)) / 2, -Math.Log(0.5), -Math.Log(0.1)], (a, b) => Math.Abs(a - b) < 1e-5);

        // Token-weighted over the 4 targets, equal to the evaluator's loss and log-perplexity on the same data.
        double expected = -(Math.Log(0.5) + Math.Log(0.25) + Math.Log(0.5) + Math.Log(0.1)) / 4;
        report.Loss.Should().BeApproximately(expected, 1e-5);
        report.Accuracy.Should().BeApproximately(2.0 / 4, 1e-12);
        var evaluated = Evaluator.Evaluate(model, Objectives.CausalLanguageModeling(), data, [Metrics.Loss(), Metrics.Perplexity()], batchSize: 2);
        evaluated["loss"].Should().BeApproximately(report.Loss, 1e-5);
        Math.Log(evaluated["perplexity"]).Should().BeApproximately(report.Loss, 1e-5);
        report.Classes!.Total.Should().Be(4, "the token confusion matrix counts next-token targets");
        report.ToMarkdown().Should().Contain("| example | loss | targets | correct |");
    }

    [Fact]
    public void Run_ObjectiveWithoutOutputs_ExplainsWhatIsMissing()
    {
        using var model = new LookupClassifier(ClassProbabilities);
        var objective = Objectives.Custom<TokenBatch>((m, b) => Objectives.SequenceClassification().Loss(m, b), "plain-loss");
        var run = () => ErrorAnalysis.Run(model, objective, Examples, new TokenCollator());
        run.Should().Throw<InvalidOperationException>().WithMessage("*outputs and targets*'plain-loss'*");
    }

    [Fact]
    public void Run_InvalidOptions_ThrowWithTheFix()
    {
        using var model = new LookupClassifier(ClassProbabilities);
        var objective = Objectives.SequenceClassification();

        var names = () => ErrorAnalysis.Run(model, objective, Examples, new ErrorAnalysisOptions { ClassNames = ["x", "y"] });
        names.Should().Throw<ArgumentException>().WithMessage("*2 names*3 classes*");
        var nullSlice = () => ErrorAnalysis.Run(model, objective, Examples, new ErrorAnalysisOptions { SliceOf = i => i == 3 ? null! : "s" });
        nullSlice.Should().Throw<ArgumentException>().WithMessage("*returned null for example 3*");
        IMetric shared = Metrics.Accuracy();
        var sharedMetric = () => ErrorAnalysis.Run(model, objective, Examples, new ErrorAnalysisOptions { SliceOf = _ => "s", SliceMetrics = [() => shared] });
        sharedMetric.Should().Throw<ArgumentException>().WithMessage("*same metric instance*");
        var batch = () => ErrorAnalysis.Run(model, objective, Examples, new ErrorAnalysisOptions { BatchSize = 0 });
        batch.Should().Throw<ArgumentOutOfRangeException>().WithParameterName("batchSize");
    }

    [Fact]
    public void Run_WithoutSlices_HasNoSlicesButOverallMetrics()
    {
        using var model = new LookupClassifier(ClassProbabilities);
        ErrorReport report = ErrorAnalysis.Run(model, Objectives.SequenceClassification(), Examples);

        report.Slices.Should().BeEmpty();
        report.Overall.Keys.Should().BeEquivalentTo("loss", "accuracy");
        report.Examples.Should().OnlyContain(e => e.Slice == null);
        report.Classes!.ClassNames.Should().BeNull();
        report.MostConfusedPairs(1).Single().Should().Be(new ConfusedPair(1, 0, 2, "1", "0"));
    }

    private static Tensor LogTable(double[,] probabilities)
    {
        var table = new float[probabilities.GetLength(0), probabilities.GetLength(1)];
        for (int i = 0; i < table.GetLength(0); i++)
        {
            for (int j = 0; j < table.GetLength(1); j++)
            {
                table[i, j] = (float)Math.Log(probabilities[i, j]);
            }
        }

        return torch.tensor(table);
    }

    /// <summary>Logits = a fixed row per first input id; the attention mask is accepted and ignored.</summary>
    private sealed class LookupClassifier : nn.Module<Tensor, Tensor, Tensor>
    {
        private readonly Parameter table;

        public LookupClassifier(double[,] probabilities) : base(nameof(LookupClassifier))
        {
            table = new Parameter(LogTable(probabilities), requires_grad: false);
            RegisterComponents();
        }

        public override Tensor forward(Tensor inputIds, Tensor attentionMask)
            => table.index_select(0, inputIds[TensorIndex.Colon, 0]);
    }

    /// <summary>Logits at each position = a fixed row per current token: ln p(next | current).</summary>
    private sealed class BigramLm : nn.Module<Tensor, Tensor>
    {
        private readonly Parameter table;

        public BigramLm(double[,] probabilities) : base(nameof(BigramLm))
        {
            table = new Parameter(LogTable(probabilities), requires_grad: false);
            RegisterComponents();
        }

        public override Tensor forward(Tensor inputIds)
            => table.index_select(0, inputIds.reshape(-1)).view(inputIds.shape[0], inputIds.shape[1], -1);
    }
}
