using System.Xml.Linq;
using FluentAssertions;
using NicheTune.Reporting;
using Xunit;

namespace NicheTune.Tests.Reporting;

public sealed class SvgChartTests
{
    [Fact]
    public void HorizontalBars_ScalesBarsAndThresholdToTheAxis_AndIsWellFormedXml()
    {
        SvgBar[] bars = [new("a", [new SvgSegment("x", 0.5, "#111111")]), new("b <&>", [new SvgSegment("x", double.NaN, "#111111")])];
        string svg = SvgChart.HorizontalBars("t", bars, v => v.ToString("F2", System.Globalization.CultureInfo.InvariantCulture), axisMax: 1, threshold: 0.25, thresholdLabel: "max 0.25", plotWidth: 400);

        XElement root = XElement.Parse(svg);
        XNamespace ns = "http://www.w3.org/2000/svg";
        // The bar is the rect with a tooltip; the legend's swatch has the same colour and none.
        XElement bar = root.Elements(ns + "rect").Single(r => (string?)r.Attribute("fill") == "#111111" && r.Element(ns + "title") is not null);
        double left = double.Parse((string)bar.Attribute("x")!, System.Globalization.CultureInfo.InvariantCulture);
        ((string)bar.Attribute("width")!).Should().Be("200.0", "0.5 of a 1.0 axis over 400 pixels");
        XElement line = root.Elements(ns + "line").Single(l => l.Attribute("stroke-dasharray") is not null);
        double.Parse((string)line.Attribute("x1")!, System.Globalization.CultureInfo.InvariantCulture).Should().Be(left + 100);
        root.Elements(ns + "text").Select(t => t.Value).Should().Contain(["b <&>", "n/a", "0.50", "max 0.25"]);
    }

    [Fact]
    public void StackedBars_OneColourPerPhase_TotalsWithTheUnit()
    {
        string svg = SvgChart.StackedBars("step", [("naive", [("forward", 100), ("backward", 300)]), ("fast", [("forward", 50), ("backward", 150)])]);
        XElement root = XElement.Parse(svg);
        XNamespace ns = "http://www.w3.org/2000/svg";
        root.Elements(ns + "text").Select(t => t.Value).Should().Contain(["400 ms", "200 ms", "forward", "backward"]);
        root.Elements(ns + "rect").Select(r => (string?)r.Attribute("fill")).Where(f => f != "white").Distinct().Should().HaveCount(2);
    }
}
