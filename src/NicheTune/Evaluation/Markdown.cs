using System.Globalization;
using System.Text;

namespace NicheTune.Evaluation;

/// <summary>Small helpers for the reports' Markdown tables (invariant culture, escaped cells).</summary>
internal static class Markdown
{
    public static string Number(double value, int decimals = 4)
        => double.IsNaN(value) ? "n/a" : value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    public static string Signed(double value, int decimals = 4)
        => double.IsNaN(value) ? "n/a" : (value >= 0 ? "+" : string.Empty) + Number(value, decimals);

    public static string Integer(long value) => value.ToString(CultureInfo.InvariantCulture);

    public static string Cell(string text) => text.Replace("|", "\\|", StringComparison.Ordinal).Replace("\r", " ", StringComparison.Ordinal).Replace("\n", " ", StringComparison.Ordinal);

    /// <summary>Appends a table; <paramref name="alignRight"/> marks numeric columns.</summary>
    public static void Table(StringBuilder sb, IReadOnlyList<string> header, IReadOnlyList<bool> alignRight, IEnumerable<IReadOnlyList<string>> rows)
    {
        sb.Append('|');
        foreach (string h in header)
        {
            sb.Append(' ').Append(Cell(h)).Append(" |");
        }

        sb.AppendLine().Append('|');
        for (int i = 0; i < header.Count; i++)
        {
            sb.Append(alignRight[i] ? " ---: |" : " --- |");
        }

        sb.AppendLine();
        foreach (IReadOnlyList<string> row in rows)
        {
            sb.Append('|');
            foreach (string cell in row)
            {
                sb.Append(' ').Append(Cell(cell)).Append(" |");
            }

            sb.AppendLine();
        }
    }
}
