using System.Globalization;
using FluentAssertions;
using NicheTune.Evaluation;
using NicheTune.Models;
using NicheTune.Reporting;
using NicheTune.Scheduling;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;
using TorchSharp;
using Xunit;

namespace NicheTune.Tests.Reporting;

[Collection(TorchCollection.Name)]
public sealed class ResultMarkdownTests
{
    [Fact]
    public void ToMarkdown_ShortGpt2RunOnFoldoc_HasEveryTableAndTheRunsNumbers()
    {
        var (train, validation) = TestData.FoldocLanguageModeling(length: 32, trainEntries: 120, validationEntries: 20);
        torch.manual_seed(4);
        using var model = new Gpt2LMHeadModel(new Gpt2Config
        {
            VocabularySize = ByteTokenizer.VocabularySize, ContextLength = 32, EmbeddingSize = 32, LayerCount = 2, HeadCount = 2,
            ResidualDropout = 0, EmbeddingDropout = 0, AttentionDropout = 0,
        });

        FineTuneResult result = FineTuner.For(model)
            .WithObjective(Objectives.CausalLanguageModeling())
            .WithLearningRate(3e-3)
            .WithSchedule(Schedules.LinearWarmup(5).ThenCosine())
            .WithBatchSize(8)
            .WithMaxSteps(20)
            .LogEvery(2)
            .EvaluateEvery(5)
            .RecordLearningRates()
            .Evaluate(Metrics.Perplexity(), Metrics.Accuracy())
            .Fit(train, validation);

        string markdown = result.ToMarkdown();

        markdown.Should().StartWith("## Fine-tuning run");
        foreach (string heading in new[] { "### Summary", "### Final metrics", "### Evaluations", "### Learning rates", "### Training loss" })
        {
            markdown.Should().Contain(heading);
        }

        markdown.Should().Contain("| steps | 20 |");
        markdown.Should().Contain("| stop reason | completed |");
        markdown.Should().Contain("| monitored metric | validation.loss |");
        EvaluationRecord lowest = result.Evaluations.MinBy(e => e.Metrics["validation.loss"])!;
        result.BestMetric.Should().Be(lowest.Metrics["validation.loss"], "the monitored metric is the validation loss, lower is better");
        result.BestStep.Should().Be(lowest.Step);
        markdown.Should().Contain("| best value | " + Format(result.BestMetric!.Value) + " |");
        markdown.Should().Contain("| best step | " + result.BestStep!.Value.ToString(CultureInfo.InvariantCulture) + " |");
        string header = markdown.Split('\n').First(line => line.StartsWith("| step | epoch |", StringComparison.Ordinal));
        header.Should().StartWith("| step | epoch | elapsed | loss |", "evaluations list the validation loss first").And.Contain("| perplexity |").And.Contain("| accuracy |");
        result.Evaluations.Should().HaveCountGreaterThanOrEqualTo(4);
        foreach (EvaluationRecord evaluation in result.Evaluations)
        {
            string step = evaluation.Step.ToString(CultureInfo.InvariantCulture) + (evaluation.Step == result.BestStep ? " (best)" : string.Empty);
            markdown.Should().Contain($"| {step} | {evaluation.Epoch} |");
            markdown.Should().Contain(Format(evaluation.Metrics["validation.perplexity"]));
        }

        foreach ((string name, double value) in result.FinalMetrics)
        {
            markdown.Should().Contain($"| {name} | {Format(value)} |");
        }

        foreach (LossRecord loss in result.TrainingLoss)
        {
            markdown.Should().Contain($"| {loss.Step} | {Format(loss.Loss)} |", "10 logged losses are fewer than the 50-row limit");
        }

        result.ParameterGroups.Should().NotBeEmpty();
        markdown.Should().Contain("| " + result.ParameterGroups[0] + " | 1 |", "the learning-rate table names each group and its first step");
    }

    [Fact]
    public void ToMarkdown_LongLossLog_KeepsAtMostMaxRowsWithFirstAndLast()
    {
        FineTuneResult result = ReportFixtures.Synthetic(lossRecords: 1000);

        string markdown = result.ToMarkdown(maxLossRows: 50);

        string log = markdown[markdown.IndexOf("### Training loss", StringComparison.Ordinal)..];
        int rows = log.Split('\n').Count(line => line.StartsWith("| ", StringComparison.Ordinal)) - 2;
        rows.Should().Be(50);
        log.Should().Contain("50 of 1000 logged steps");
        log.Should().Contain($"| 1 | {Format(result.TrainingLoss[0].Loss)} |");
        log.Should().Contain($"| 1000 | {Format(result.TrainingLoss[^1].Loss)} |");
    }

    [Fact]
    public void ToMarkdown_SyntheticRun_ShowsEpochsBestRowAndStopMessage()
    {
        string markdown = ReportFixtures.Synthetic().ToMarkdown(title: "Run | 7");

        markdown.Should().StartWith("## Run \\| 7");
        markdown.Should().Contain("| stop reason | early stopped: validation.accuracy did not improve for 1 evaluation |");
        markdown.Should().Contain("| wall time | 16.3 s |");
        markdown.Should().Contain("| best value | 0.8125 |");
        markdown.Should().Contain("| restored best weights | yes |");
        markdown.Should().Contain("Of the restored best weights.");
        markdown.Should().Contain("| 80 (best) | 1 |");
        markdown.Should().Contain("| epoch | step | train loss | loss | accuracy |");
        markdown.Should().Contain("| 1 | 100 | 0.4000 | 0.3000 | 0.7500 |");
        markdown.Should().Contain("| body | 1 | 1e-5 | 1e-4 | 1e-4 |");
        markdown.Should().Contain("| head | 1 | 1e-4 | 0.001 | 0.001 |");
    }

    [Fact]
    public void ToMarkdown_EmptyResult_RendersOnlyTheSummary()
    {
        string markdown = new FineTuneResult().ToMarkdown();

        markdown.Should().Contain("### Summary").And.Contain("| steps | 0 |");
        markdown.Should().NotContain("### Final metrics").And.NotContain("### Evaluations").And.NotContain("### Training loss");
    }

    [Fact]
    public void ToMarkdown_MaxRowsBelowTwo_Throws()
    {
        var act = () => ReportFixtures.Synthetic().ToMarkdown(maxLossRows: 1);

        act.Should().Throw<ArgumentOutOfRangeException>().WithParameterName("maxLossRows");
    }

    [Theory]
    [InlineData(10, 50, -1)]
    [InlineData(1000, 50, -1)]
    [InlineData(1000, 50, 333)]
    [InlineData(7, 2, 3)]
    public void Sample_AnyCount_KeepsFirstLastAndBestWithinTheLimit(int count, int max, int keep)
    {
        IReadOnlyList<int> picked = ResultMarkdown.Sample(count, max, keep);

        picked.Count.Should().BeLessThanOrEqualTo(Math.Max(max, keep >= 0 ? 3 : 2));
        picked.Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
        picked[0].Should().Be(0);
        picked[^1].Should().Be(count - 1);
        if (keep >= 0)
        {
            picked.Should().Contain(keep);
        }

        if (count <= max)
        {
            picked.Should().HaveCount(count);
        }
    }

    private static string Format(double value) => value.ToString("F4", CultureInfo.InvariantCulture);
}
