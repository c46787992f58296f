using FluentAssertions;
using NicheTune.Evaluation;
using NicheTune.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace NicheTune.Tests.Evaluation;

[Collection(TorchCollection.Name)]
public sealed class ClassificationMetricTests
{
    // The fixed 3-class case, as (target, predicted) pairs; -100 is padding the metrics must skip.
    //   target 0 (support 5): predicted 0, 0, 0, 1, 2
    //   target 1 (support 3): predicted 0, 1, 2
    //   target 2 (support 2): predicted 2, 2
    // Confusion matrix (rows target, columns predicted)   TP        predicted (column sums)
    //   [3 1 1]                                             3, 1, 2   4, 2, 4
    //   [1 1 1]
    //   [0 0 2]
    // Per class (scikit-learn): precision TP/predicted = 3/4, 1/2, 2/4; recall TP/support = 3/5, 1/3, 2/2;
    // F1 = 2·TP/(predicted + support) = 6/9, 2/5, 4/6.
    private static readonly (long Target, int Predicted)[] Case =
    [
        (0, 0), (0, 0), (0, 0), (0, 1), (0, 2),
        (1, 0), (1, 1), (-100, 1), (1, 2),
        (2, 2), (2, 2),
    ];

    public static TheoryData<string, double> SklearnValues => new()
    {
        // macro = unweighted mean of per-class scores
        { "precision.macro", (3.0 / 4 + 1.0 / 2 + 2.0 / 4) / 3 },   // 7/12  = 0.58333
        { "recall.macro", (3.0 / 5 + 1.0 / 3 + 1.0) / 3 },          // 29/45 = 0.64444
        { "f1.macro", (6.0 / 9 + 2.0 / 5 + 4.0 / 6) / 3 },           // 26/45 = 0.57778
        // weighted = mean weighted by support 5, 3, 2
        { "precision.weighted", (5 * 0.75 + 3 * 0.5 + 2 * 0.5) / 10 },          // 0.625
        { "recall.weighted", (5 * 0.6 + 3 * (1.0 / 3) + 2 * 1.0) / 10 },        // 0.6 (always equals accuracy)
        { "f1.weighted", (5 * (6.0 / 9) + 3 * 0.4 + 2 * (4.0 / 6)) / 10 },      // 44/75 = 0.58667
        // micro pools the counts: ΣTP / Σpredicted = ΣTP / Σsupport = 6/10 = accuracy for single-label data
        { "precision.micro", 0.6 },
        { "recall.micro", 0.6 },
        { "f1.micro", 0.6 },
    };

    [Theory]
    [MemberData(nameof(SklearnValues))]
    public void ClassificationScore_ThreeClassCase_MatchesSklearnDefinitions(string name, double expected)
    {
        IMetric metric = Create(name);
        metric.Name.Should().Be(name);
        metric.HigherIsBetter.Should().BeTrue();
        Run(metric, Batch(Case, classes: 3)).Should().BeApproximately(expected, 1e-9);
    }

    [Theory]
    [MemberData(nameof(SklearnValues))]
    public void ClassificationScore_TwoBatches_EqualsOneBatch(string name, double expected)
    {
        double split = Run(Create(name), Batch(Case[..4], classes: 3), Batch(Case[4..], classes: 3));
        split.Should().BeApproximately(expected, 1e-9);
    }

    [Fact]
    public void ConfusionMatrix_ThreeClassCase_ReportsMatrixPerClassScoresAndPairs()
    {
        var metric = Metrics.ConfusionMatrix(["alpha", "beta", "gamma"]);
        Run(metric, Batch(Case[..6], classes: 3), Batch(Case[6..], classes: 3)).Should().BeApproximately(0.6, 1e-12);
        metric.Name.Should().Be("confusion_matrix.accuracy");

        ClassificationReport report = metric.Report();
        report.ToMatrix().Should().BeEquivalentTo(new long[,] { { 3, 1, 1 }, { 1, 1, 1 }, { 0, 0, 2 } });
        report.Total.Should().Be(10, "the padded row is skipped");
        report.Classes.Select(c => c.Support).Should().Equal(5, 3, 2);
        report.Classes.Select(c => c.Predicted).Should().Equal(4, 2, 4);
        report.Classes.Select(c => c.Precision).Should().Equal([0.75, 0.5, 0.5], (a, b) => Math.Abs(a - b) < 1e-12);
        report.Classes.Select(c => c.Recall).Should().Equal([0.6, 1.0 / 3, 1.0], (a, b) => Math.Abs(a - b) < 1e-12);
        report.Classes.Select(c => c.F1).Should().Equal([6.0 / 9, 0.4, 4.0 / 6], (a, b) => Math.Abs(a - b) < 1e-12);
        report.F1(Average.Macro).Should().BeApproximately(26.0 / 45, 1e-12);
        report.Classes[1].Name.Should().Be("beta");

        // Off-diagonal cells: (0→1) 1, (0→2) 1, (1→0) 1, (1→2) 1; ties ordered by target, then prediction.
        report.MostConfusedPairs(3).Select(p => (p.TrueName, p.PredictedName, p.Count)).Should().Equal(
            ("alpha", "beta", 1L), ("alpha", "gamma", 1L), ("beta", "alpha", 1L));
    }

    [Fact]
    public void ClassificationReport_FromLabels_MatchesTheTensorPath()
    {
        var kept = Case.Where(c => c.Target != -100).ToArray();
        var host = ClassificationReport.FromLabels(kept.Select(c => (int)c.Target).ToArray(), kept.Select(c => c.Predicted).ToArray(), 3);
        var metric = Metrics.ConfusionMatrix();
        Run(metric, Batch(Case, classes: 3));

        metric.Report().ToMatrix().Should().BeEquivalentTo(host.ToMatrix());
        foreach (Average average in Enum.GetValues<Average>())
        {
            host.Precision(average).Should().BeApproximately(Run(Metrics.Precision(average), Batch(Case, classes: 3)), 1e-12);
            host.Recall(average).Should().BeApproximately(Run(Metrics.Recall(average), Batch(Case, classes: 3)), 1e-12);
            host.F1(average).Should().BeApproximately(Run(Metrics.F1(average), Batch(Case, classes: 3)), 1e-12);
        }
    }

    [Fact]
    public void ClassificationReport_ManyClasses_ListsTheLargestSupportInMarkdown()
    {
        // Supports 1, 3, 2, 0 (class 3 absent): with two rows, classes 1 and 2 are listed, in index order.
        var report = ClassificationReport.FromLabels([0, 1, 1, 1, 2, 2], [0, 1, 1, 2, 2, 2], 4, ["a", "b", "c", "d"]);
        string markdown = report.ToMarkdown(maxMatrixClasses: 2, maxClassRows: 2);

        markdown.Should().Contain("| b | 1.0000 | 0.6667 | 0.8000 | 3 |").And.Contain("| c | 0.6667 | 1.0000 | 0.8000 | 2 |")
            .And.NotContain("| a |").And.Contain("the 2 classes with the most support of 3 present")
            .And.NotContain("Confusion matrix", "4 classes exceed maxMatrixClasses");
    }

    [Fact]
    public void ClassificationReport_FromConfusionMatrix_RejectsNonSquareAndNegative()
    {
        var square = () => ClassificationReport.FromConfusionMatrix(new long[2, 3]);
        square.Should().Throw<ArgumentException>().WithParameterName("matrix").WithMessage("*square*2 × 3*");
        var negative = () => ClassificationReport.FromConfusionMatrix(new long[,] { { 1, -1 }, { 0, 1 } });
        negative.Should().Throw<ArgumentException>().WithMessage("*[0, 1] is -1*");
        ClassificationReport.FromConfusionMatrix(new long[,] { { 2, 0 }, { 1, 1 } }).Accuracy.Should().Be(0.75);
    }

    [Fact]
    public void MacroScores_ClassNeverPredictedOrAbsent_FollowSklearnZeroDivisionAndLabelSet()
    {
        // Targets 0, 1, 2 predicted as 0, 1, 1, with 4 output columns: class 2 is never predicted and class 3 never
        // occurs in targets or predictions.
        //   precision = 1, 1/2, 0 (0/0 → 0, zero_division=0); class 3 is left out, as sklearn's labels = y_true ∪ y_pred:
        //   macro precision = 1.5 / 3 = 0.5 (including class 3 would give 1.5 / 4 = 0.375)
        //   recall = 1, 1, 0 → macro 2/3;  F1 = 2/2, 2/3, 0 → macro 5/9
        (long, int)[] pairs = [(0, 0), (1, 1), (2, 1)];
        Run(Metrics.Precision(Average.Macro), Batch(pairs, classes: 4)).Should().BeApproximately(0.5, 1e-12);
        Run(Metrics.Recall(Average.Macro), Batch(pairs, classes: 4)).Should().BeApproximately(2.0 / 3, 1e-12);
        Run(Metrics.MacroF1(), Batch(pairs, classes: 4)).Should().BeApproximately(5.0 / 9, 1e-12);
        Run(Metrics.F1(Average.Weighted), Batch(pairs, classes: 4)).Should().BeApproximately((1 + 2.0 / 3 + 0) / 3, 1e-12);
    }

    [Fact]
    public void ClassificationScore_OnlyIgnoredTargets_IsNaN()
    {
        Run(Metrics.MacroF1(), Batch([(-100, 0), (-100, 1)], classes: 2)).Should().Be(double.NaN);
        Run(Metrics.F1(Average.Micro), Batch([(-100, 0)], classes: 2)).Should().Be(double.NaN);
    }

    [Fact]
    public void TopKAccuracy_FixedScores_CountsHitsAmongTheKBestWithTorchTopkTies()
    {
        // row  scores                  target  ranking (best first)        top1  top2  top3
        //  0   [0.1, 0.5, 0.3, 0.0]    2       1, 2, 0, 3                  miss  hit   hit
        //  1   [0.6, 0.2, 0.1, 0.3]    1       0, 3, 1, 2                  miss  miss  hit
        //  2   [0.0, 0.0, 0.9, 0.1]    2       2, 3, …                     hit   hit   hit
        //  3   [5, 1, 1, 0]            2       0, then 1 and 2 tied        miss  miss  hit
        //  4   [1, 0, 0, 0]            -100    skipped
        // Row 3: torch.topk (libtorch CPU) keeps the lower index of the tie, so class 2 misses the top 2, as in
        // torchmetrics (which also calls topk); an optimistic rule that counts any tie as a hit would say 3/4 for top2.
        float[,] scores = { { 0.1f, 0.5f, 0.3f, 0f }, { 0.6f, 0.2f, 0.1f, 0.3f }, { 0f, 0f, 0.9f, 0.1f }, { 5, 1, 1, 0 }, { 1, 0, 0, 0 } };
        long[] targets = [2, 1, 2, 2, -100];

        Run(Metrics.TopKAccuracy(1), Batch(scores, targets)).Should().BeApproximately(1.0 / 4, 1e-12);
        Run(Metrics.TopKAccuracy(2), Batch(scores, targets)).Should().BeApproximately(2.0 / 4, 1e-12);
        Run(Metrics.TopKAccuracy(3), Batch(scores, targets)).Should().BeApproximately(4.0 / 4, 1e-12);
        Run(Metrics.TopKAccuracy(10), Batch(scores, targets)).Should().Be(1.0, "k above the class count always hits");
        Run(Metrics.Accuracy(), Batch(scores, targets)).Should().BeApproximately(1.0 / 4, 1e-12, "top-1 equals arg-max accuracy when no tie decides");
        Metrics.TopKAccuracy(5).Name.Should().Be("accuracy.top5");
    }

    [Fact]
    public void TopKAccuracy_ZeroK_ThrowsNamingTheParameter()
    {
        var create = () => Metrics.TopKAccuracy(0);
        create.Should().Throw<ArgumentOutOfRangeException>().WithParameterName("k").WithMessage("*k ≥ 1*");
    }

    [Fact]
    public void ExpectedCalibrationError_TwoBins_MatchesHandComputedBins()
    {
        // Logits ln p give softmax p. Two bins: [0, 0.5) and [0.5, 1).
        //   row  probabilities         target  confidence  correct  bin
        //   a    [0.4, 0.3, 0.3]       0       0.40        1        0
        //   b    [0.3, 0.45, 0.25]     0       0.45        0        0
        //   c    [0.9, 0.05, 0.05]     0       0.90        1        1
        //   d    [0.1, 0.8, 0.1]       2       0.80        0        1
        //   e    [0.7, 0.2, 0.1]       0       0.70        1        1
        //   f    [0.2, 0.2, 0.6]       -100    skipped
        // bin 0: 2 rows, accuracy 1/2, mean confidence 0.425 → |gap| 0.075, weight 2/5
        // bin 1: 3 rows, accuracy 2/3, mean confidence 0.8   → |gap| 0.1333, weight 3/5
        // ECE = 0.4 · 0.075 + 0.6 · 0.13333 = 0.03 + 0.08 = 0.11; MCE = 0.13333
        var metric = Metrics.ExpectedCalibrationError(bins: 2);
        var first = Probabilities(new[,] { { 0.4, 0.3, 0.3 }, { 0.3, 0.45, 0.25 } }, [0, 0]);
        var second = Probabilities(new[,] { { 0.9, 0.05, 0.05 }, { 0.1, 0.8, 0.1 }, { 0.7, 0.2, 0.1 }, { 0.2, 0.2, 0.6 } }, [0, 2, 0, -100]);

        Run(metric, first, second).Should().BeApproximately(0.11, 1e-6);
        metric.Name.Should().Be("ece");
        metric.HigherIsBetter.Should().BeFalse();
        CalibrationReport report = metric.Report();
        report.Count.Should().Be(5);
        report.MaxCalibrationError.Should().BeApproximately(0.8 - 2.0 / 3, 1e-6);
        report.Bins.Select(b => (b.Lower, b.Upper, b.Count)).Should().Equal((0.0, 0.5, 2L), (0.5, 1.0, 3L));
        report.Bins[0].MeanConfidence.Should().BeApproximately(0.425, 1e-6);
        report.Bins[0].Accuracy.Should().Be(0.5);
        report.Bins[1].MeanConfidence.Should().BeApproximately(0.8, 1e-6);
        report.Bins[1].Accuracy.Should().BeApproximately(2.0 / 3, 1e-12);
        report.ToMarkdown().Should().Contain("| [0.500, 1.000) | 3 |");
    }

    [Fact]
    public void ExpectedCalibrationError_ConfidenceExactlyOne_GetsItsOwnSlotLikeTorchmetrics()
    {
        // torchmetrics bins with bucketize(right=True) − 1 over linspace(0, 1, B + 1): confidence 1.0 lands in slot B.
        //   c, d, e below: confidences 0.9, 0.8, 0.7, all correct → bin [0.5, 1): Σcorrect − Σconfidence = 3 − 2.4 = +0.6
        //   g: logits [200, 0, 0] → confidence exactly 1.0 (float32), wrong → slot [1, 1]: 0 − 1 = −1
        // ECE = (|0.6| + |−1|) / 4 = 0.4. Merging g into the last bin would give |3 − 3.4| / 4 = 0.1.
        var metric = Metrics.ExpectedCalibrationError(bins: 2);
        var under = Probabilities(new[,] { { 0.9, 0.05, 0.05 }, { 0.1, 0.8, 0.1 }, { 0.7, 0.2, 0.1 } }, [0, 1, 0]);
        var certain = Batch(new float[,] { { 200, 0, 0 } }, [1]);

        Run(metric, under, certain).Should().BeApproximately(0.4, 1e-6);
        metric.Report().Bins.Should().HaveCount(3).And.Contain(b => b.Lower == 1.0 && b.Upper == 1.0 && b.Count == 1 && b.Accuracy == 0);
    }

    [Fact]
    public void ExpectedCalibrationError_ZeroBins_ThrowsNamingTheParameter()
    {
        var create = () => Metrics.ExpectedCalibrationError(0);
        create.Should().Throw<ArgumentOutOfRangeException>().WithParameterName("bins");
    }

    [Fact]
    public void Metrics_WithoutOutputs_ExplainWhatIsMissing()
    {
        using var loss = torch.tensor(1.0f);
        IMetric[] metrics = [Metrics.TopKAccuracy(2), Metrics.MacroF1(), Metrics.ConfusionMatrix(), Metrics.ExpectedCalibrationError()];
        foreach (IMetric metric in metrics)
        {
            metric.Reset();
            var update = () => metric.Update(new MetricBatch(loss, 1));
            update.Should().Throw<InvalidOperationException>().WithMessage($"Metric '{metric.Name}' needs the objective's outputs and targets*");
        }
    }

    [Fact]
    public void ClassificationMetrics_NothingUpdated_ComputeNaNAndReportThrows()
    {
        var confusion = Metrics.ConfusionMatrix();
        confusion.Reset();
        confusion.Compute().Should().Be(double.NaN);
        var report = () => confusion.Report();
        report.Should().Throw<InvalidOperationException>().WithMessage("*no batch since Reset()*");

        var ece = Metrics.ExpectedCalibrationError();
        ece.Reset();
        ece.Compute().Should().Be(double.NaN);
        var f1 = Metrics.MacroF1();
        f1.Reset();
        f1.Compute().Should().Be(double.NaN);
    }

    [Fact]
    public void ConfusionMatrix_ClassCountChangesWithinAPass_Throws()
    {
        var metric = Metrics.ConfusionMatrix();
        metric.Reset();
        metric.Update(Batch([(0, 0)], classes: 3));
        var update = () => metric.Update(Batch([(0, 0)], classes: 4));
        update.Should().Throw<InvalidOperationException>().WithMessage("*4 classes after batches with 3*");

        // A new pass may score a different number of classes.
        Run(metric, Batch([(0, 1), (1, 1)], classes: 2)).Should().Be(0.5);
        metric.Report().ClassCount.Should().Be(2);
    }

    [Fact]
    public void ConfusionMatrix_WrongNumberOfClassNames_Throws()
    {
        var metric = Metrics.ConfusionMatrix(["only", "two"]);
        metric.Reset();
        var update = () => metric.Update(Batch([(0, 0)], classes: 3));
        update.Should().Throw<InvalidOperationException>().WithMessage("*2 class names*3 classes*");
    }

    [Fact]
    public void ConfusionMatrix_VocabularySizedOutputs_RefusesAndPointsToPerClassScores()
    {
        var metric = Metrics.ConfusionMatrix();
        metric.Reset();
        using var scope = torch.NewDisposeScope();
        var batch = new MetricBatch(torch.tensor(0f), 1, torch.zeros(1, 5000), torch.tensor(new long[] { 3 }));
        var update = () => metric.Update(batch);
        update.Should().Throw<InvalidOperationException>().WithMessage("*5000 × 5000*Metrics.Precision/Recall/F1*");

        // Precision/recall/F1 keep 3 × C counters and handle the same outputs.
        Run(Metrics.MacroF1(), batch).Should().Be(0.0);
    }

    [Fact]
    public void Average_UndefinedValue_ThrowsNamingTheParameter()
    {
        var create = () => Metrics.F1((Average)7);
        create.Should().Throw<ArgumentOutOfRangeException>().WithParameterName("average");
    }

    [Fact]
    public void TensorMetrics_ManyBatches_KeepNativeMemoryFlat()
    {
        // Accumulators are allocated once at the first batch and detached; every per-batch temporary dies with the
        // batch's dispose scope, so the number of live tensors must not grow with the number of batches.
        IMetric[] metrics =
        [
            Metrics.TopKAccuracy(2), Metrics.Precision(Average.Macro), Metrics.F1(Average.Weighted), Metrics.ConfusionMatrix(),
            Metrics.ExpectedCalibrationError(), Metrics.Accuracy(), Metrics.Perplexity(), Metrics.Loss(),
        ];
        foreach (IMetric metric in metrics)
        {
            metric.Reset();
        }

        long afterTwo = 0;
        for (int b = 0; b < 8; b++)
        {
            using (torch.NewDisposeScope())
            {
                MetricBatch batch = Batch(Case, classes: 3);
                foreach (IMetric metric in metrics)
                {
                    metric.Update(batch);
                }
            }

            if (b == 1)
            {
                afterTwo = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            }
        }

        DisposeScopeManager.Statistics.ThreadTotalLiveCount.Should().Be(afterTwo, DisposeScopeManager.Statistics.ToString());
        metrics[1].Compute().Should().BeApproximately(7.0 / 12, 1e-9, "eight copies of the case have the same macro precision");
    }

    private static IMetric Create(string name)
    {
        string[] parts = name.Split('.');
        Average average = Enum.Parse<Average>(parts[1], ignoreCase: true);
        return parts[0] switch
        {
            "precision" => Metrics.Precision(average),
            "recall" => Metrics.Recall(average),
            _ => Metrics.F1(average),
        };
    }

    private static double Run(IMetric metric, params MetricBatch[] batches)
    {
        metric.Reset();
        foreach (MetricBatch batch in batches)
        {
            metric.Update(batch);
        }

        return metric.Compute();
    }

    // Logits with the predicted class at 2 and the others at 0, so arg-max is exactly the intended prediction.
    private static MetricBatch Batch((long Target, int Predicted)[] rows, int classes)
    {
        var logits = new float[rows.Length, classes];
        for (int i = 0; i < rows.Length; i++)
        {
            logits[i, rows[i].Predicted] = 2f;
        }

        return Batch(logits, [.. rows.Select(r => r.Target)]);
    }

    private static MetricBatch Probabilities(double[,] probabilities, long[] targets)
    {
        var logits = new float[probabilities.GetLength(0), probabilities.GetLength(1)];
        for (int i = 0; i < logits.GetLength(0); i++)
        {
            for (int j = 0; j < logits.GetLength(1); j++)
            {
                logits[i, j] = (float)Math.Log(probabilities[i, j]);
            }
        }

        return Batch(logits, targets);
    }

    private static MetricBatch Batch(float[,] logits, long[] targets)
    {
        using var scope = torch.NewDisposeScope();
        Tensor outputs = torch.tensor(logits);
        Tensor t = torch.tensor(targets);
        Tensor loss = nn.functional.cross_entropy(outputs, t);
        long count = targets.Count(x => x != -100);
        return new MetricBatch(loss.MoveToOuterDisposeScope(), count, outputs.MoveToOuterDisposeScope(), t.MoveToOuterDisposeScope());
    }
}
