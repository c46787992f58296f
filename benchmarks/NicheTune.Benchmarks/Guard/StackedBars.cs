using System.Globalization;
using System.Net;
using System.Text;

namespace NicheTune.Benchmarks.Guard;

/// <summary>A horizontal stacked-bar chart as a standalone SVG: one bar per arm, one segment per phase, values labelled.</summary>
internal static class StackedBars
{
    private static readonly string[] Colors = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f"];

    public static string Svg(string title, (string Label, (string Phase, double Value)[] Segments)[] bars)
    {
        const int left = 130, right = 30, top = 40, barHeight = 34, gap = 16, legendHeight = 40;
        const int plotWidth = 640;
        double max = bars.Max(b => b.Segments.Sum(s => s.Value));
        double scale = plotWidth / max;
        int height = top + bars.Length * (barHeight + gap) + legendHeight + 20;
        int width = left + plotWidth + right + 60;
        var svg = new StringBuilder();
        string F(double v) => v.ToString("F1", CultureInfo.InvariantCulture);
        svg.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n");
        svg.Append(CultureInfo.InvariantCulture, $"<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>\n");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{left}\" y=\"22\" font-size=\"14\" font-weight=\"bold\">{WebUtility.HtmlEncode(title)}</text>\n");
        string[] phases = [.. bars.SelectMany(b => b.Segments.Select(s => s.Phase)).Distinct()];
        for (int i = 0; i < bars.Length; i++)
        {
            int y = top + i * (barHeight + gap);
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{left - 8}\" y=\"{y + barHeight / 2 + 4}\" text-anchor=\"end\">{WebUtility.HtmlEncode(bars[i].Label)}</text>\n");
            double x = left;
            foreach ((string phase, double value) in bars[i].Segments)
            {
                double w = value * scale;
                string color = Colors[Array.IndexOf(phases, phase) % Colors.Length];
                svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{F(x)}\" y=\"{y}\" width=\"{F(w)}\" height=\"{barHeight}\" fill=\"{color}\"><title>{WebUtility.HtmlEncode(phase)}: {value:F0} ms</title></rect>\n");
                if (w > 34)
                {
                    svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(x + w / 2)}\" y=\"{y + barHeight / 2 + 4}\" text-anchor=\"middle\" fill=\"white\">{value:F0}</text>\n");
                }

                x += w;
            }

            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(x + 6)}\" y=\"{y + barHeight / 2 + 4}\">{bars[i].Segments.Sum(s => s.Value):F0} ms</text>\n");
        }

        int legendY = top + bars.Length * (barHeight + gap) + 10;
        double lx = left;
        for (int p = 0; p < phases.Length; p++)
        {
            svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{F(lx)}\" y=\"{legendY}\" width=\"12\" height=\"12\" fill=\"{Colors[p % Colors.Length]}\"/>\n");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(lx + 16)}\" y=\"{legendY + 10}\">{WebUtility.HtmlEncode(phases[p])}</text>\n");
            lx += 24 + phases[p].Length * 7;
        }

        svg.Append("</svg>\n");
        return svg.ToString();
    }
}
