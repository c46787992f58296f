using System.Globalization;
using System.Net;
using System.Text;

namespace NicheTune.Reporting;

/// <summary>One coloured part of a bar.</summary>
/// <param name="Name">The legend entry (and the tooltip).</param>
/// <param name="Value">Its length in data units (≥ 0; a NaN draws nothing).</param>
/// <param name="Color">A CSS colour.</param>
internal readonly record struct SvgSegment(string Name, double Value, string Color);

/// <summary>One bar: a label and its segments, stacked left to right.</summary>
/// <param name="Label">Shown left of the bar.</param>
/// <param name="Segments">The parts.</param>
internal sealed record SvgBar(string Label, IReadOnlyList<SvgSegment> Segments);

/// <summary>
/// Horizontal bar charts as standalone SVG text (no dependency, no script): inline in the library's HTML reports and
/// written as <c>.svg</c> files by the benchmarks. Every text goes through HTML encoding.
/// </summary>
internal static class SvgChart
{
    /// <summary>The Tableau 10 colours, in order.</summary>
    public static readonly string[] Palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f", "#ff9da7", "#bab0ac"];

    public const string PassColor = "#4e79a7";

    public const string FailColor = "#e15759";

    private const int BarHeight = 22, Gap = 10, Top = 40, Right = 80, CharWidth = 7;

    /// <summary>A stacked bar per item, one segment per phase, coloured by phase (first seen first), totals labelled.</summary>
    /// <param name="title">The chart's title.</param>
    /// <param name="bars">Label and (phase, value) segments of each bar.</param>
    /// <param name="unit">Appended to the totals, e.g. <c>" ms"</c>.</param>
    /// <returns>The SVG document.</returns>
    public static string StackedBars(string title, (string Label, (string Phase, double Value)[] Segments)[] bars, string unit = " ms")
    {
        string[] phases = [.. bars.SelectMany(b => b.Segments.Select(s => s.Phase)).Distinct()];
        SvgBar[] converted = [.. bars.Select(b => new SvgBar(b.Label, [.. b.Segments.Select(s => new SvgSegment(s.Phase, s.Value, Palette[Array.IndexOf(phases, s.Phase) % Palette.Length]))]))];
        return HorizontalBars(title, converted, v => v.ToString("F0", CultureInfo.InvariantCulture), unit, barHeight: 34, gap: 16);
    }

    /// <summary>
    /// Horizontal bars, each the stack of its segments, with the total written after it, an optional vertical threshold
    /// line, and a legend of the distinct segment names.
    /// </summary>
    /// <param name="title">The chart's title.</param>
    /// <param name="bars">The bars, top to bottom.</param>
    /// <param name="format">Formats a value (segment labels and totals).</param>
    /// <param name="unit">Appended to the totals.</param>
    /// <param name="axisMax">The value at the right end of the plot; <see langword="null"/> fits the largest bar (and the threshold).</param>
    /// <param name="threshold">Where to draw the dashed threshold line, in data units; <see langword="null"/> for none.</param>
    /// <param name="thresholdLabel">The line's label, e.g. <c>max 0.10</c>.</param>
    /// <param name="legend">Whether to draw the legend of segment names.</param>
    /// <param name="plotWidth">Width of the plotting area in pixels.</param>
    /// <param name="barHeight">Height of each bar in pixels.</param>
    /// <param name="gap">Space between bars in pixels.</param>
    /// <returns>The SVG document.</returns>
    public static string HorizontalBars(
        string title,
        IReadOnlyList<SvgBar> bars,
        Func<double, string> format,
        string unit = "",
        double? axisMax = null,
        double? threshold = null,
        string? thresholdLabel = null,
        bool legend = true,
        int plotWidth = 560,
        int barHeight = BarHeight,
        int gap = Gap)
    {
        double Total(SvgBar b) => b.Segments.Where(s => double.IsFinite(s.Value)).Sum(s => Math.Max(0, s.Value));
        double max = axisMax ?? Math.Max(bars.Count == 0 ? 0 : bars.Max(Total), threshold ?? 0);
        max = max > 0 && double.IsFinite(max) ? max : 1;
        double scale = plotWidth / max;
        int left = Math.Clamp(bars.Count == 0 ? 40 : (bars.Max(b => b.Label.Length) * CharWidth) + 16, 40, 360);
        (string Name, string Color)[] entries = legend ? [.. bars.SelectMany(b => b.Segments).Select(s => (s.Name, s.Color)).Distinct()] : [];
        int width = left + plotWidth + Right;
        int plotBottom = Top + (bars.Count * (barHeight + gap));
        var legendPlaces = new List<(double X, int Row)>(entries.Length);
        double place = left;
        int row = 0;
        foreach ((string name, _) in entries)
        {
            double entryWidth = 28 + (name.Length * CharWidth);
            if (place + entryWidth > width && place > left)
            {
                place = left;
                row++;
            }

            legendPlaces.Add((place, row));
            place += entryWidth;
        }

        int height = plotBottom + 24 + (entries.Length > 0 ? (row + 1) * 20 : 0) + 10;
        string F(double v) => v.ToString("F1", CultureInfo.InvariantCulture);
        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\" role=\"img\" aria-label=\"{Encode(title)}\">\n");
        svg.Append(CultureInfo.InvariantCulture, $"<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>\n");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{left}\" y=\"22\" font-size=\"14\" font-weight=\"bold\">{Encode(title)}</text>\n");
        svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{left}\" y1=\"{Top - 6}\" x2=\"{left}\" y2=\"{plotBottom}\" stroke=\"#8c959f\"/>\n");
        for (int i = 0; i < bars.Count; i++)
        {
            SvgBar bar = bars[i];
            int y = Top + (i * (barHeight + gap));
            int middle = y + (barHeight / 2) + 4;
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{left - 8}\" y=\"{middle}\" text-anchor=\"end\">{Encode(bar.Label)}</text>\n");
            double x = left;
            foreach (SvgSegment segment in bar.Segments)
            {
                if (!double.IsFinite(segment.Value))
                {
                    continue;
                }

                double w = Math.Max(0, segment.Value) * scale;
                svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{F(x)}\" y=\"{y}\" width=\"{F(w)}\" height=\"{barHeight}\" fill=\"{segment.Color}\"><title>{Encode(bar.Label)}, {Encode(segment.Name)}: {Encode(format(segment.Value))}{Encode(unit)}</title></rect>\n");
                if (bar.Segments.Count > 1 && w > 34)
                {
                    svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(x + (w / 2))}\" y=\"{middle}\" text-anchor=\"middle\" fill=\"white\">{Encode(format(segment.Value))}</text>\n");
                }

                x += w;
            }

            bool defined = bar.Segments.Any(s => double.IsFinite(s.Value));
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(x + 6)}\" y=\"{middle}\">{Encode(defined ? format(Total(bar)) + unit : "n/a")}</text>\n");
        }

        if (threshold is { } t && double.IsFinite(t))
        {
            double tx = left + (Math.Min(t, max) * scale);
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{F(tx)}\" y1=\"{Top - 6}\" x2=\"{F(tx)}\" y2=\"{plotBottom}\" stroke=\"#1f2328\" stroke-width=\"1.5\" stroke-dasharray=\"5,4\"><title>{Encode(thresholdLabel ?? "threshold")}</title></line>\n");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(tx)}\" y=\"{Top - 10}\" text-anchor=\"middle\" font-size=\"11\">{Encode(thresholdLabel ?? "threshold")}</text>\n");
        }

        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{left}\" y=\"{plotBottom + 16}\" font-size=\"11\" fill=\"#59636e\">0</text>\n");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{left + plotWidth}\" y=\"{plotBottom + 16}\" text-anchor=\"end\" font-size=\"11\" fill=\"#59636e\">{Encode(format(max))}</text>\n");
        for (int e = 0; e < entries.Length; e++)
        {
            (double lx, int lrow) = legendPlaces[e];
            int ly = plotBottom + 26 + (lrow * 20);
            svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{F(lx)}\" y=\"{ly}\" width=\"12\" height=\"12\" fill=\"{entries[e].Color}\"/>\n");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(lx + 16)}\" y=\"{ly + 10}\">{Encode(entries[e].Name)}</text>\n");
        }

        svg.Append("</svg>\n");
        return svg.ToString();
    }

    private static string Encode(string text) => WebUtility.HtmlEncode(text);
}
