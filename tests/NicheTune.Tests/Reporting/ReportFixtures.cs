using System.Collections.Immutable;
using NicheTune.Evaluation;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;

namespace NicheTune.Tests.Reporting;

/// <summary>Runs and results shared by the report tests.</summary>
internal static class ReportFixtures
{
    public static readonly string[] Categories = ["language", "networking", "hardware"];

    /// <summary>FOLDOC definitions labelled by their first category (3 classes), split 4:1.</summary>
    public static (List<TokenExample> Train, List<TokenExample> Validation) FoldocCategories()
    {
        var tokenizer = new ByteTokenizer();
        var labelled = TestData.FoldocEntries
            .Where(e => e.Categories.Length > 0 && Categories.Contains(e.Categories[0]))
            .Select(e => new TokenExample(tokenizer.Encode(e.Text.Length > 200 ? e.Text[..200] : e.Text), Array.IndexOf(Categories, e.Categories[0])))
            .ToList();
        return (labelled.Where((_, i) => i % 5 != 0).ToList(), labelled.Where((_, i) => i % 5 == 0).ToList());
    }

    /// <summary>A hand-made history: 2 epochs, 100 logged losses, 5 evaluations, 2 parameter groups.</summary>
    public static FineTuneResult Synthetic(int lossRecords = 100, double bestAccuracy = 0.8125)
    {
        var losses = Enumerable.Range(1, lossRecords).Select(i => new LossRecord(i, 2.0 / Math.Sqrt(i), 1e-3 * Math.Min(1, i / 10.0))).ToImmutableArray();
        var evaluations = Enumerable.Range(1, 5).Select(i => new EvaluationRecord(
            i * 20L,
            i <= 3 ? 0 : 1,
            new Dictionary<string, double>
            {
                ["validation.loss"] = 1.5 / i,
                ["validation.accuracy"] = i == 4 ? bestAccuracy : 0.5 + (0.05 * i),
            },
            TimeSpan.FromSeconds(i * 3))).ToImmutableArray();
        return new FineTuneResult
        {
            TrainingLoss = losses,
            Evaluations = evaluations,
            Epochs =
            [
                new EpochRecord(0, 60, 0.9, evaluations[2].Metrics),
                new EpochRecord(1, 100, 0.4, evaluations[4].Metrics),
            ],
            MonitoredMetric = "validation.accuracy",
            BestMetric = bestAccuracy,
            BestStep = 80,
            RestoredBestWeights = true,
            FinalMetrics = evaluations[3].Metrics,
            Steps = 100,
            StopReason = StopReason.EarlyStopped,
            StopMessage = "validation.accuracy did not improve for 1 evaluation",
            WallTime = TimeSpan.FromSeconds(16.25),
            ExamplesPerSecond = 123.4,
            TokensPerSecond = 5678,
            ParameterGroups = ["body", "head"],
            LearningRates = [.. Enumerable.Range(1, 100).Select(i => new LearningRateRecord(i, [1e-4 * Math.Min(1, i / 10.0), 1e-3 * Math.Min(1, i / 10.0)]))],
        };
    }

    public static ClassificationReport Report(params string[] names)
    {
        int n = names.Length;
        var matrix = new long[n, n];
        for (int t = 0; t < n; t++)
        {
            for (int p = 0; p < n; p++)
            {
                matrix[t, p] = t == p ? 10 + t : (t + p) % 3;
            }
        }

        return ClassificationReport.FromConfusionMatrix(matrix, names);
    }
}
