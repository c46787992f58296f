using System.Globalization;
using System.Net;
using System.Text;

namespace NicheTune.Reporting;

/// <summary>A rendered plot: PNG bytes and the size, in CSS pixels, at which the page shows it.</summary>
internal sealed record Figure(string Title, string Caption, byte[] Png, int Width, int Height);

/// <summary>
/// Builds the library's self-contained HTML pages (training and study reports, bias reports): every piece of text goes
/// through <see cref="Encode"/>; markup is only ever literal; the styles are inline.
/// </summary>
internal sealed class HtmlWriter
{
    public const string Style = """
        :root { --fg: #1f2328; --muted: #59636e; --border: #d1d9e0; --panel: #f6f8fa; --accent: #0969da; }
        * { box-sizing: border-box; }
        body { margin: 0; color: var(--fg); background: #fff; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", Roboto, "Helvetica Neue", Arial, sans-serif; }
        main { max-width: 1240px; margin: 0 auto; padding: 24px 32px 48px; }
        h1 { font-size: 1.9rem; margin: 0 0 4px; }
        h2 { font-size: 1.35rem; margin: 36px 0 12px; padding-bottom: 4px; border-bottom: 1px solid var(--border); }
        h3 { font-size: 1.05rem; margin: 20px 0 8px; }
        p { margin: 6px 0 12px; }
        .subtitle, .muted { color: var(--muted); }
        .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 12px; }
        .card { background: var(--panel); border: 1px solid var(--border); border-radius: 8px; padding: 10px 14px; }
        .card .label { color: var(--muted); font-size: .78rem; text-transform: uppercase; letter-spacing: .05em; }
        .card .value { font-size: 1.3rem; font-weight: 600; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
        .card .note { color: var(--muted); font-size: .85rem; overflow-wrap: anywhere; }
        .figures { display: grid; gap: 16px; align-items: start; }
        figure { margin: 0; background: #fff; border: 1px solid var(--border); border-radius: 8px; padding: 8px; }
        figure.wide { display: inline-block; max-width: 100%; }
        figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
        figcaption { color: var(--muted); font-size: .85rem; margin: 6px 4px 0; }
        .table-wrap { overflow-x: auto; }
        table { border-collapse: collapse; margin: 8px 0 16px; font-variant-numeric: tabular-nums; font-size: .92rem; }
        th, td { border: 1px solid var(--border); padding: 4px 10px; vertical-align: top; }
        th { background: var(--panel); text-align: left; font-weight: 600; }
        th.num, td.num { text-align: right; }
        tbody tr:nth-child(even) { background: #fafbfc; }
        tr.emphasis td { font-weight: 600; background: #fff8c5; }
        details > summary { cursor: pointer; color: var(--accent); margin: 8px 0; }
        figure svg { display: block; max-width: 100%; height: auto; margin: 0 auto; }
        .badge { display: inline-block; padding: 1px 10px; border-radius: 12px; font-weight: 600; color: #fff; }
        .badge.pass { background: #1a7f37; }
        .badge.fail { background: #cf222e; }
        tr.fail td { background: #ffebe9; }
        footer { color: var(--muted); font-size: .8rem; margin-top: 48px; border-top: 1px solid var(--border); padding-top: 8px; }
        """;

    private readonly StringBuilder _sb = new();

    public static string Encode(string text) => WebUtility.HtmlEncode(text);

    public static string Number(double value, int decimals = 4) => Evaluation.Markdown.Number(value, decimals);

    public static string Signed(double value, int decimals = 4) => Evaluation.Markdown.Signed(value, decimals);

    public static string Integer(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    public static string Duration(TimeSpan time) => ResultMarkdown.Duration(time);

    /// <summary>The document head with the shared styles, then the page's title as its top heading.</summary>
    public HtmlWriter BeginPage(string title)
    {
        Line("<!DOCTYPE html>").Line("<html lang=\"en\">").Line("<head>").Line("<meta charset=\"utf-8\">")
            .Line("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
            .Element("title", title)
            .Raw("<style>\n").Raw(Style).Line("</style>").Line("</head>").Line("<body>").Line("<main>");
        return Element("h1", title);
    }

    public HtmlWriter EndPage(string footer)
        => Element("footer", footer).Line("</main>").Line("</body>").Line("</html>");

    public HtmlWriter Raw(string html)
    {
        _sb.Append(html);
        return this;
    }

    public HtmlWriter Line(string html)
    {
        _sb.AppendLine(html);
        return this;
    }

    /// <summary>An element holding escaped text.</summary>
    public HtmlWriter Element(string tag, string text, string? cssClass = null)
    {
        _sb.Append('<').Append(tag);
        if (cssClass is not null)
        {
            _sb.Append(" class=\"").Append(cssClass).Append('"');
        }

        _sb.Append('>').Append(Encode(text)).Append("</").Append(tag).AppendLine(">");
        return this;
    }

    public HtmlWriter Paragraph(string text, string? cssClass = null) => Element("p", text, cssClass);

    public HtmlWriter OpenSection(string id, string heading)
    {
        _sb.Append("<section id=\"").Append(id).AppendLine("\">");
        return Element("h2", heading);
    }

    public HtmlWriter CloseSection() => Line("</section>");

    public HtmlWriter Card(string label, string value, string? note = null)
    {
        _sb.Append("<div class=\"card\"><div class=\"label\">").Append(Encode(label)).Append("</div><div class=\"value\">").Append(Encode(value)).Append("</div>");
        if (!string.IsNullOrEmpty(note))
        {
            _sb.Append("<div class=\"note\">").Append(Encode(note)).Append("</div>");
        }

        _sb.AppendLine("</div>");
        return this;
    }

    /// <summary>A table of escaped cells; <paramref name="numeric"/> right-aligns a column.</summary>
    public HtmlWriter Table(IReadOnlyList<string> header, IReadOnlyList<bool> numeric, IEnumerable<IReadOnlyList<string>> rows, ISet<int>? emphasisedRows = null, string emphasisClass = "emphasis")
    {
        _sb.AppendLine("<div class=\"table-wrap\"><table>").Append("<thead><tr>");
        for (int c = 0; c < header.Count; c++)
        {
            _sb.Append(numeric[c] ? "<th class=\"num\">" : "<th>").Append(Encode(header[c])).Append("</th>");
        }

        _sb.AppendLine("</tr></thead>").AppendLine("<tbody>");
        int r = 0;
        foreach (IReadOnlyList<string> row in rows)
        {
            _sb.Append(emphasisedRows?.Contains(r) == true ? "<tr class=\"" + emphasisClass + "\">" : "<tr>");
            for (int c = 0; c < row.Count; c++)
            {
                _sb.Append(c < numeric.Count && numeric[c] ? "<td class=\"num\">" : "<td>").Append(Encode(row[c])).Append("</td>");
            }

            _sb.AppendLine("</tr>");
            r++;
        }

        _sb.AppendLine("</tbody></table></div>");
        return this;
    }

    public HtmlWriter Figure(Figure figure, bool wide = false)
    {
        _sb.Append(wide ? "<figure class=\"wide\">" : "<figure>")
            .Append("<img src=\"data:image/png;base64,").Append(Convert.ToBase64String(figure.Png))
            .Append("\" width=\"").Append(figure.Width.ToString(CultureInfo.InvariantCulture))
            .Append("\" height=\"").Append(figure.Height.ToString(CultureInfo.InvariantCulture))
            .Append("\" alt=\"").Append(Encode(figure.Title)).Append("\">")
            .Append("<figcaption>").Append(Encode(figure.Caption)).AppendLine("</figcaption></figure>");
        return this;
    }

    /// <summary>An inline SVG drawing (made by <see cref="SvgChart"/>, whose text is already escaped) with a caption.</summary>
    public HtmlWriter Svg(string svg, string caption)
    {
        _sb.Append("<figure>").Append(svg).Append("<figcaption>").Append(Encode(caption)).AppendLine("</figcaption></figure>");
        return this;
    }

    public override string ToString() => _sb.ToString();
}
