using System.Text.RegularExpressions;
using FluentAssertions;
using NicheTune.Evaluation;
using NicheTune.Reporting;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;
using TorchSharp;
using Xunit;

namespace NicheTune.Tests.Reporting;

[Collection(TorchCollection.Name)]
public sealed class HtmlReportTests
{
    private static readonly byte[] PngSignature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    [Fact]
    public void Render_RealClassificationRun_ShowsCurvesConfusionMatrixAndCalibration()
    {
        var (train, validation) = ReportFixtures.FoldocCategories();
        torch.manual_seed(2);
        using var model = new TinyClassifier(ByteTokenizer.VocabularySize, ReportFixtures.Categories.Length, width: 32);
        FineTuneResult result = FineTuner.For(model)
            .WithObjective(Objectives.SequenceClassification())
            .WithLearningRate(2e-2).WithBatchSize(16).WithMaxSteps(24)
            .LogEvery(2).EvaluateEvery(6).RecordLearningRates()
            .Evaluate(Metrics.Accuracy(), Metrics.MacroF1())
            .Fit(train, validation);
        var confusion = Metrics.ConfusionMatrix(ReportFixtures.Categories);
        var calibration = Metrics.ExpectedCalibrationError(10);
        Evaluator.Evaluate(model, Objectives.SequenceClassification(), validation, [confusion, calibration]);

        string html = HtmlReport.Render(result, new HtmlReportOptions
        {
            Title = "FOLDOC categories",
            Classification = confusion.Report(),
            Calibration = calibration.Report(),
        });

        html.Should().StartWith("<!DOCTYPE html>");
        html.Should().Contain("<title>FOLDOC categories</title>").And.Contain("<h1>FOLDOC categories</h1>");
        byte[][] images = Images(html);
        // loss, accuracy, macro F1, learning rate, confusion matrix, reliability diagram
        images.Should().HaveCountGreaterThanOrEqualTo(6);
        images.Should().AllSatisfy(png => png.Take(8).Should().Equal(PngSignature));
        html.Should().Contain("<section id=\"curves\">").And.Contain("alt=\"Loss\"").And.Contain("alt=\"Learning rate\"");
        html.Should().Contain("<section id=\"confusion-matrix\">").And.Contain("alt=\"Confusion matrix\"");
        html.Should().Contain("<section id=\"calibration\">").And.Contain("alt=\"Reliability diagram\"");
        foreach (string name in ReportFixtures.Categories)
        {
            html.Should().Contain($"<td>{name}</td>", "the per-class table lists every class");
        }

        html.Should().NotContainAny("http://", "https://", "<script", "<link");
    }

    [Fact]
    public void WriteFigures_SyntheticRun_WritesOnePngPerCurveWithThePrefix()
    {
        FineTuneResult result = ReportFixtures.Synthetic();
        string folder = Path.Combine(Path.GetTempPath(), "nichetune-figures-" + Guid.NewGuid().ToString("N"));
        try
        {
            IReadOnlyList<string> paths = HtmlReport.WriteFigures(result, folder, prefix: "run-");

            paths.Should().Contain(Path.Combine(folder, "run-loss.png")).And.Contain(Path.Combine(folder, "run-learning-rate.png"));
            paths.Should().HaveCount(Images(HtmlReport.Render(result)).Length, "the same curves as the page's curve section");
            paths.Should().AllSatisfy(p => File.ReadAllBytes(p).Take(8).Should().Equal(PngSignature));
            Directory.GetFiles(folder).Should().HaveCount(paths.Count, "no temporary file is left behind");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Render_SyntheticRun_PlotsLossEachMetricAndLearningRates()
    {
        string html = HtmlReport.Render(ReportFixtures.Synthetic());

        html.Should().Contain("<title>Fine-tuning report</title>");
        Images(html).Should().HaveCount(3, "loss, accuracy and the learning rates: one curve per metric other than the loss");
        html.Should().Contain("alt=\"accuracy\"");
        html.Should().Contain("<section id=\"final-metrics\">").And.Contain("<section id=\"epochs\">");
        html.Should().Contain("<td class=\"num\">0.8125</td>");
        html.Should().NotContain("id=\"confusion-matrix\"", "no classification report was passed");
    }

    [Fact]
    public void Render_TextWithMarkup_IsEscapedEverywhere()
    {
        ClassificationReport report = ReportFixtures.Report("<script>alert(1)</script>", "a & b", "plain");

        string html = HtmlReport.Render(ReportFixtures.Synthetic(), new HtmlReportOptions { Title = "<b>run</b>", Classification = report });

        html.Should().NotContain("<script>").And.NotContain("<b>run</b>");
        html.Should().Contain("&lt;script&gt;alert(1)&lt;/script&gt;").And.Contain("a &amp; b").And.Contain("<h1>&lt;b&gt;run&lt;/b&gt;</h1>");
    }

    [Fact]
    public void Render_ErrorReportWithExampleText_ListsWorstExamplesEscaped()
    {
        var examples = Enumerable.Range(0, 6).Select(i => new TokenExample([2 + i, 3, 4 + (i % 3)], Label: i % 2)).ToList();
        torch.manual_seed(1);
        using var model = new TinyClassifier(16, 2);
        ErrorReport errors = ErrorAnalysis.Run(model, Objectives.SequenceClassification(), examples, new ErrorAnalysisOptions
        {
            ClassNames = ["no", "yes"],
            SliceOf = i => i < 3 ? "short" : "long",
        });

        string html = HtmlReport.Render(ReportFixtures.Synthetic(), new HtmlReportOptions { ErrorReport = errors, ExampleText = i => $"example <{i}>", WorstExamples = 3 });

        html.Should().Contain("<section id=\"error-analysis\">").And.Contain("Worst examples").And.Contain("Slices");
        Regex.Matches(html, "example &lt;\\d&gt;").Should().HaveCount(3);
    }

    [Fact]
    public void Render_EmptyResult_RendersWithoutPlots()
    {
        string html = HtmlReport.Render(new FineTuneResult());

        html.Should().Contain("<section id=\"summary\">").And.EndWith("</html>" + Environment.NewLine);
        Images(html).Should().BeEmpty();
    }

    [Fact]
    public void Render_NonFiniteMetric_SkipsThePointInsteadOfFailing()
    {
        var result = ReportFixtures.Synthetic();
        var withNaN = new FineTuneResult
        {
            TrainingLoss = [new LossRecord(1, double.NaN, 1e-3), .. result.TrainingLoss],
            Evaluations = result.Evaluations,
        };

        Images(HtmlReport.Render(withNaN)).Should().HaveCount(3);
    }

    [Fact]
    public void Render_InvalidOptions_ListsEveryProblemWithItsValue()
    {
        var act = () => HtmlReport.Render(ReportFixtures.Synthetic(), new HtmlReportOptions { PlotWidth = 10, PlotHeight = 5, Title = "" });

        act.Should().Throw<ArgumentException>().WithParameterName("options")
            .Which.Message.Should().Contain("PlotWidth is 10").And.Contain("PlotHeight is 5").And.Contain("Title is");
    }

    [Fact]
    public void Write_OverExistingFile_ReplacesItAndLeavesNoTemporaryFile()
    {
        using var folder = new TempFolder();
        string path = Path.Combine(folder.Path, "nested", "report.html");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, "old report");

        HtmlReport.Write(ReportFixtures.Synthetic(), path, new HtmlReportOptions { Title = "new report" });

        File.ReadAllText(path).Should().Contain("<h1>new report</h1>");
        Directory.GetFiles(Path.GetDirectoryName(path)!).Should().Equal(path);
    }

    [Fact]
    public async Task Write_WhileAReaderPolls_ReaderSeesOnlyWholeReports()
    {
        using var folder = new TempFolder();
        string path = Path.Combine(folder.Path, "report.html");
        FineTuneResult result = ReportFixtures.Synthetic();
        HtmlReport.Write(result, path, new HtmlReportOptions { Title = "version 0" });
        var seen = new List<string>();
        using var stop = new CancellationTokenSource();
        var reader = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                seen.Add(File.ReadAllText(path));
            }
        });

        for (int version = 1; version <= 4; version++)
        {
            HtmlReport.Write(result, path, new HtmlReportOptions { Title = "version " + version });
        }

        stop.Cancel();
        await reader;
        seen.Should().NotBeEmpty();
        seen.Should().AllSatisfy(text => text.Should().MatchRegex("<h1>version \\d</h1>").And.EndWith("</html>" + Environment.NewLine));
        File.ReadAllText(path).Should().Contain("<h1>version 4</h1>");
        Directory.GetFiles(folder.Path).Should().Equal(path);
    }

    [Fact]
    public void Write_InvalidOptions_KeepsTheExistingFile()
    {
        using var folder = new TempFolder();
        string path = Path.Combine(folder.Path, "report.html");
        File.WriteAllText(path, "old report");

        var act = () => HtmlReport.Write(ReportFixtures.Synthetic(), path, new HtmlReportOptions { PlotWidth = 1 });

        act.Should().Throw<ArgumentException>();
        File.ReadAllText(path).Should().Be("old report");
        Directory.GetFiles(folder.Path).Should().Equal(path);
    }

    [Fact]
    public void Write_PathIsAFolder_Throws()
    {
        using var folder = new TempFolder();

        var act = () => HtmlReport.Write(ReportFixtures.Synthetic(), folder.Path);

        act.Should().Throw<ArgumentException>().WithParameterName("path").WithMessage("*names a folder*");
    }

    private static byte[][] Images(string html)
        => [.. Regex.Matches(html, "<img src=\"data:image/png;base64,([A-Za-z0-9+/=]+)\"").Select(m => Convert.FromBase64String(m.Groups[1].Value))];
}
