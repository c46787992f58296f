namespace NicheTune.Text;

/// <summary>One document read from a dataset file: its text, an optional class label, and where it started in the file.</summary>
/// <param name="Text">The document text.</param>
/// <param name="Label">The class label as written in the file, or <see langword="null"/> for unlabelled text.</param>
/// <param name="Line">The 1-based line the record starts on (0 when not read from a file), for error messages.</param>
public sealed record TextRecord(string Text, string? Label = null, long Line = 0);

/// <summary>How a plain text file is cut into documents.</summary>
public enum TextFileLayout
{
    /// <summary>Every non-blank line is one document.</summary>
    LinePerDocument,

    /// <summary>Documents are separated by blank lines; the lines of one paragraph are joined with '\n'.</summary>
    ParagraphPerDocument,
}

/// <summary>A CSV column chosen by header name or by 0-based index; converts implicitly from <see cref="string"/> and <see cref="int"/>.</summary>
public readonly record struct CsvColumn
{
    private CsvColumn(string? name, int index)
    {
        Name = name;
        Index = index;
    }

    /// <summary>The header name, or <see langword="null"/> when chosen by index.</summary>
    public string? Name { get; }

    /// <summary>The 0-based index, or -1 when chosen by name.</summary>
    public int Index { get; }

    /// <summary>Chooses a column by header name (needs a header row).</summary>
    /// <param name="name">The header text, matched exactly.</param>
    /// <returns>The column.</returns>
    /// <exception cref="ArgumentException"><paramref name="name"/> is null or empty.</exception>
    public static CsvColumn Named(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return new CsvColumn(name, -1);
    }

    /// <summary>Chooses a column by 0-based position.</summary>
    /// <param name="index">The position.</param>
    /// <returns>The column.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is negative.</exception>
    public static CsvColumn At(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        return new CsvColumn(null, index);
    }

    /// <summary>Chooses a column by header name.</summary>
    /// <param name="name">The header text.</param>
    public static implicit operator CsvColumn(string name) => Named(name);

    /// <summary>Chooses a column by 0-based position.</summary>
    /// <param name="index">The position.</param>
    public static implicit operator CsvColumn(int index) => At(index);

    /// <inheritdoc />
    public override string ToString() => Name is null ? $"column {Index}" : $"column '{Name}'";
}

/// <summary>Options for reading a CSV file (RFC 4180: quoted fields may hold delimiters, line breaks and doubled quotes).</summary>
public sealed class CsvOptions
{
    /// <summary>The column holding the text.</summary>
    /// <value>Default the column named <c>text</c>.</value>
    public CsvColumn TextColumn { get; init; } = "text";

    /// <summary>The column holding the class label, or <see langword="null"/> for unlabelled text.</summary>
    /// <value>Default <see langword="null"/>.</value>
    public CsvColumn? LabelColumn { get; init; }

    /// <summary>Whether the first record is a header row (needed to choose columns by name).</summary>
    /// <value>Default <see langword="true"/>.</value>
    public bool HasHeader { get; init; } = true;

    /// <summary>The field delimiter.</summary>
    /// <value>Default ','.</value>
    public char Delimiter { get; init; } = ',';
}

/// <summary>Options for reading a JSON Lines file (one JSON object per line).</summary>
public sealed class JsonlOptions
{
    /// <summary>The string field(s) holding the text; several are joined with <see cref="FieldSeparator"/> (e.g. a term and its definition).</summary>
    /// <value>Default <c>["text"]</c>.</value>
    public IReadOnlyList<string> TextFields { get; init; } = ["text"];

    /// <summary>Placed between the text fields.</summary>
    /// <value>Default "\n".</value>
    public string FieldSeparator { get; init; } = "\n";

    /// <summary>
    /// The field holding the label, or <see langword="null"/>. A string, number or boolean is the label; an array's
    /// first element is (FOLDOC's <c>categories</c>: the primary category); <c>null</c> or an empty array means no label.
    /// </summary>
    /// <value>Default <see langword="null"/>.</value>
    public string? LabelField { get; init; }

    /// <summary>Leave out records whose label is missing (instead of returning them with a <see langword="null"/> label).</summary>
    /// <value>Default <see langword="false"/>.</value>
    public bool SkipUnlabelled { get; init; }
}
