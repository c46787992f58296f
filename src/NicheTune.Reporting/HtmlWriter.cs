using System.Globalization;
using System.Net;
using System.Text;

namespace NicheTune.Reporting;

/// <summary>Builds the page: every piece of text goes through <see cref="Encode"/>; markup is only ever literal.</summary>
internal sealed class HtmlWriter
{
    private readonly StringBuilder _sb = new();

    public static string Encode(string text) => WebUtility.HtmlEncode(text);

    public static string Number(double value, int decimals = 4) => Evaluation.Markdown.Number(value, decimals);

    public static string Signed(double value, int decimals = 4) => Evaluation.Markdown.Signed(value, decimals);

    public static string Integer(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    public static string Duration(TimeSpan time) => ResultMarkdown.Duration(time);

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
    public HtmlWriter Table(IReadOnlyList<string> header, IReadOnlyList<bool> numeric, IEnumerable<IReadOnlyList<string>> rows, ISet<int>? emphasisedRows = null)
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
            _sb.Append(emphasisedRows?.Contains(r) == true ? "<tr class=\"emphasis\">" : "<tr>");
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

    public override string ToString() => _sb.ToString();
}
