using System.Text.RegularExpressions;
using FluentAssertions;
using NicheTune.Reporting;
using NicheTune.Tests.Support;
using NicheTune.Tuning;
using Xunit;

namespace NicheTune.Tests.Tuning;

public sealed class StudyHtmlReportTests
{
    [Fact]
    public void Render_StudyWithPrunedAndFailedTrials_HasHistoryParameterPlotsAndTable()
    {
        var study = Study.Create("html", sampler: Samplers.Random(seed: 1), pruner: Pruners.Median(startupTrials: 2));
        study.Optimize(t =>
        {
            double lr = t.SuggestFloat("lr", 1e-4, 1e-1, log: true);
            string optimizer = t.SuggestCategorical("optimizer", "adamw", "sgd");
            if (t.Number == 3)
            {
                throw new InvalidOperationException("out of memory <boom>");
            }

            for (int step = 1; step <= 3; step++)
            {
                t.Report(step, Math.Abs(Math.Log10(lr) + 2) / step);
                if (t.ShouldPrune())
                {
                    throw new TrialPrunedException();
                }
            }

            return Math.Abs(Math.Log10(lr) + 2) / 3 + (optimizer == "sgd" ? 0.1 : 0);
        }, trials: 8);

        string html = StudyHtmlReport.Render(study);

        html.Should().StartWith("<!DOCTYPE html>").And.Contain("Study &#39;html&#39;");
        Regex.Matches(html, "data:image/png;base64,").Count.Should().Be(4, "history, intermediate values, and one plot per parameter (lr, optimizer)");
        html.Should().Contain("against lr (float [0.0001, 0.1] log)").And.Contain("out of memory &lt;boom&gt;");
        Regex.Matches(html, "<tr>|<tr class").Count.Should().Be(9, "a header row and one row per trial");
    }

    [Fact]
    public void Write_Path_WritesTheFile()
    {
        using var folder = new TempFolder();
        var study = Study.Create("file", pruner: Pruners.None);
        study.Optimize(t => t.SuggestInt("k", 1, 3), trials: 3);
        string path = Path.Combine(folder.Path, "reports", "study.html");

        StudyHtmlReport.Write(study, path);

        File.ReadAllText(path).Should().Contain("</html>");
    }
}
