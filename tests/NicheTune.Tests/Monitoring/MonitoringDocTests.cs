using FluentAssertions;
using NicheTune.Monitoring;
using NicheTune.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace NicheTune.Tests.Monitoring;

public sealed class MonitoringDocTests(ITestOutputHelper output)
{
    [Fact]
    public void DocsMonitoring_ShowsTheCompiledCodeAndItDetectsTheShift()
    {
        DocSnippets.PageShows("monitoring.md", "Monitoring/MonitoringDocExample.cs");
        string[] foldoc = [.. TestData.FoldocEntries.Select(e => e.Text)];
        using var folder = new TempFolder();

        var (same, sameAlerts) = MonitoringDocExample.Watch(foldoc[..500], foldoc[500..1000], foldoc[1000..1500], folder.Path, null);
        var (shifted, shiftedAlerts) = MonitoringDocExample.Watch(foldoc[..500], foldoc[500..1000], TestData.WordNetGlosses().Take(500), folder.Path, null);
        output.WriteLine("FOLDOC 1000–1500 against FOLDOC 500–1000:\n" + same.ToMarkdown());
        output.WriteLine("WordNet glosses against FOLDOC 500–1000:\n" + shifted.ToMarkdown());

        sameAlerts.Should().BeEmpty();
        same.Level.Should().Be(DriftLevel.None);
        shifted.Level.Should().Be(DriftLevel.Alert);
        shiftedAlerts.Select(a => a.Statistic).Should().Contain(DriftStatistic.InputLength).And.Contain(DriftStatistic.InputPerplexity);
    }
}
