using System.Globalization;
using System.Text;
using System.Text.Json;
using NicheTune.Training;

namespace NicheTune.Text;

/// <summary>
/// Reads training text from plain text, JSON Lines and CSV files, and turns records into examples. Every reader is
/// lazy: the file is opened when enumeration starts and read one record at a time, so files larger than memory stream
/// through (and enumerating twice reads the file twice). Errors name the file and line.
/// </summary>
public static class TextDatasets
{
    /// <summary>Reads documents from a plain text file.</summary>
    /// <param name="path">The UTF-8 text file.</param>
    /// <param name="layout">One document per non-blank line, or per blank-line-separated paragraph.</param>
    /// <returns>The documents, lazily.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist (thrown at once).</exception>
    public static IEnumerable<TextRecord> ReadText(string path, TextFileLayout layout = TextFileLayout.LinePerDocument)
    {
        TokenIds.RequireFile(path, "Text file");
        return ReadText(() => new StreamReader(path, Encoding.UTF8), layout);
    }

    /// <summary>Reads documents from plain text produced by <paramref name="open"/> (called once per enumeration).</summary>
    /// <param name="open">Opens the text; the reader is disposed when enumeration ends.</param>
    /// <param name="layout">One document per non-blank line, or per blank-line-separated paragraph.</param>
    /// <returns>The documents, lazily.</returns>
    public static IEnumerable<TextRecord> ReadText(Func<TextReader> open, TextFileLayout layout = TextFileLayout.LinePerDocument)
    {
        ArgumentNullException.ThrowIfNull(open);
        if (!Enum.IsDefined(layout))
        {
            throw new ArgumentOutOfRangeException(nameof(layout), layout, "Use TextFileLayout.LinePerDocument or TextFileLayout.ParagraphPerDocument.");
        }

        return ReadTextCore(open, layout);
    }

    private static IEnumerable<TextRecord> ReadTextCore(Func<TextReader> open, TextFileLayout layout)
    {
        using TextReader reader = open();
        var paragraph = new StringBuilder();
        long line = 0;
        long start = 0;
        string? text;
        while ((text = reader.ReadLine()) is not null)
        {
            line++;
            bool blank = string.IsNullOrWhiteSpace(text);
            if (layout == TextFileLayout.LinePerDocument)
            {
                if (!blank)
                {
                    yield return new TextRecord(text, null, line);
                }

                continue;
            }

            if (blank)
            {
                if (paragraph.Length > 0)
                {
                    yield return new TextRecord(paragraph.ToString(), null, start);
                    paragraph.Clear();
                }

                continue;
            }

            if (paragraph.Length == 0)
            {
                start = line;
            }
            else
            {
                paragraph.Append('\n');
            }

            paragraph.Append(text);
        }

        if (paragraph.Length > 0)
        {
            yield return new TextRecord(paragraph.ToString(), null, start);
        }
    }

    /// <summary>Reads records from a JSON Lines file: the text from <paramref name="textField"/>, the label from <paramref name="labelField"/>.</summary>
    /// <param name="path">The file; blank lines are skipped.</param>
    /// <param name="textField">The string field with the text.</param>
    /// <param name="labelField">The label field, or <see langword="null"/> (see <see cref="JsonlOptions.LabelField"/>).</param>
    /// <returns>The records, lazily.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist (thrown at once).</exception>
    /// <exception cref="InvalidDataException">While enumerating: a line is not a JSON object, or lacks the text field; the message names the line.</exception>
    public static IEnumerable<TextRecord> ReadJsonl(string path, string textField = "text", string? labelField = null) =>
        ReadJsonl(path, new JsonlOptions { TextFields = [textField], LabelField = labelField });

    /// <summary>Reads records from a JSON Lines file with <paramref name="options"/>.</summary>
    /// <param name="path">The file; blank lines are skipped.</param>
    /// <param name="options">Which fields hold the text and the label.</param>
    /// <returns>The records, lazily.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist (thrown at once).</exception>
    /// <exception cref="InvalidDataException">While enumerating: a line is not a JSON object, or lacks a text field; the message names the line.</exception>
    public static IEnumerable<TextRecord> ReadJsonl(string path, JsonlOptions options)
    {
        TokenIds.RequireFile(path, "JSON Lines file");
        return ReadJsonl(() => new StreamReader(path, Encoding.UTF8), options, Path.GetFileName(path));
    }

    /// <summary>Reads records from JSON Lines text produced by <paramref name="open"/> (called once per enumeration).</summary>
    /// <param name="open">Opens the text; the reader is disposed when enumeration ends.</param>
    /// <param name="options">Which fields hold the text and the label.</param>
    /// <param name="sourceName">The name used in error messages.</param>
    /// <returns>The records, lazily.</returns>
    /// <exception cref="ArgumentException"><paramref name="options"/> names no text field.</exception>
    public static IEnumerable<TextRecord> ReadJsonl(Func<TextReader> open, JsonlOptions options, string sourceName = "JSON Lines input")
    {
        ArgumentNullException.ThrowIfNull(open);
        ArgumentNullException.ThrowIfNull(options);
        if (options.TextFields is null || options.TextFields.Count == 0 || options.TextFields.Any(string.IsNullOrEmpty))
        {
            throw new ArgumentException("JsonlOptions.TextFields must name at least one field, none empty (e.g. [\"text\"]).", nameof(options));
        }

        return ReadJsonlCore(open, options, sourceName);
    }

    private static IEnumerable<TextRecord> ReadJsonlCore(Func<TextReader> open, JsonlOptions options, string source)
    {
        using TextReader reader = open();
        long line = 0;
        string? text;
        var builder = new StringBuilder();
        while ((text = reader.ReadLine()) is not null)
        {
            line++;
            if (string.IsNullOrWhiteSpace(text))
            {
                continue;
            }

            TextRecord? record = ParseJsonlLine(text, line, options, source, builder);
            if (record is not null)
            {
                yield return record;
            }
        }
    }

    private static TextRecord? ParseJsonlLine(string text, long line, JsonlOptions options, string source, StringBuilder builder)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text);
        }
        catch (JsonException exception)
        {
            throw new InvalidDataException($"{source} line {line} is not valid JSON ({exception.Message}); every line must be one JSON object.", exception);
        }

        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidDataException($"{source} line {line} is a JSON {root.ValueKind}, not an object; every line must be one JSON object.");
            }

            builder.Clear();
            foreach (string field in options.TextFields)
            {
                if (!root.TryGetProperty(field, out JsonElement value))
                {
                    string present = string.Join(", ", root.EnumerateObject().Select(p => p.Name));
                    throw new InvalidDataException($"{source} line {line} has no field '{field}'; fields present: {(present.Length == 0 ? "none" : present)}. Choose the text field(s) with JsonlOptions.TextFields.");
                }

                if (value.ValueKind != JsonValueKind.String)
                {
                    throw new InvalidDataException($"{source} line {line}: field '{field}' is a JSON {value.ValueKind}, but text fields must be strings.");
                }

                if (builder.Length > 0)
                {
                    builder.Append(options.FieldSeparator);
                }

                builder.Append(value.GetString());
            }

            string? label = null;
            if (options.LabelField is { } labelField)
            {
                label = root.TryGetProperty(labelField, out JsonElement value) ? Label(value, labelField, line, source) : null;
                if (label is null && options.SkipUnlabelled)
                {
                    return null;
                }
            }

            return new TextRecord(builder.ToString(), label, line);
        }
    }

    private static string? Label(JsonElement value, string field, long line, string source) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString(),
        JsonValueKind.Number => value.GetRawText(),
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        JsonValueKind.Null => null,
        JsonValueKind.Array => value.GetArrayLength() == 0 ? null : Label(value[0], field, line, source),
        _ => throw new InvalidDataException($"{source} line {line}: label field '{field}' is a JSON {value.ValueKind}; a label must be a string, number, boolean or an array of them."),
    };

    /// <summary>Reads records from a CSV file (RFC 4180).</summary>
    /// <param name="path">The file.</param>
    /// <param name="options">Columns, header and delimiter; <see langword="null"/> reads the <c>text</c> column of a file with a header.</param>
    /// <returns>The records, lazily.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist (thrown at once).</exception>
    /// <exception cref="InvalidDataException">While enumerating: a named column is not in the header, a record has too few fields, or a quote is malformed; the message names the line.</exception>
    public static IEnumerable<TextRecord> ReadCsv(string path, CsvOptions? options = null)
    {
        TokenIds.RequireFile(path, "CSV file");
        return ReadCsv(() => new StreamReader(path, Encoding.UTF8), options, Path.GetFileName(path));
    }

    /// <summary>Reads records from CSV text produced by <paramref name="open"/> (called once per enumeration).</summary>
    /// <param name="open">Opens the text; the reader is disposed when enumeration ends.</param>
    /// <param name="options">Columns, header and delimiter.</param>
    /// <param name="sourceName">The name used in error messages.</param>
    /// <returns>The records, lazily.</returns>
    /// <exception cref="ArgumentException">A column is chosen by name but <see cref="CsvOptions.HasHeader"/> is false, or the delimiter is a quote or line break.</exception>
    public static IEnumerable<TextRecord> ReadCsv(Func<TextReader> open, CsvOptions? options = null, string sourceName = "CSV input")
    {
        ArgumentNullException.ThrowIfNull(open);
        options ??= new CsvOptions();
        if (options.Delimiter is '"' or '\r' or '\n')
        {
            throw new ArgumentException($"CsvOptions.Delimiter cannot be '{options.Delimiter}' (quotes and line breaks have their own meaning in CSV).", nameof(options));
        }

        if (!options.HasHeader && (options.TextColumn.Name is not null || options.LabelColumn?.Name is not null))
        {
            throw new ArgumentException("Columns are chosen by name but CsvOptions.HasHeader is false; choose them by index (CsvColumn.At) or read the header.", nameof(options));
        }

        return ReadCsvCore(open, options, sourceName);
    }

    private static IEnumerable<TextRecord> ReadCsvCore(Func<TextReader> open, CsvOptions options, string source)
    {
        using TextReader reader = open();
        int textIndex = options.TextColumn.Index;
        int labelIndex = options.LabelColumn?.Index ?? -1;
        bool header = options.HasHeader;
        foreach (var (fields, line) in new CsvParser(reader, options.Delimiter, source).Records())
        {
            if (header)
            {
                header = false;
                textIndex = Resolve(options.TextColumn, fields, source);
                labelIndex = options.LabelColumn is { } label ? Resolve(label, fields, source) : -1;
                continue;
            }

            int needed = Math.Max(textIndex, labelIndex) + 1;
            if (fields.Length < needed)
            {
                throw new InvalidDataException($"{source} line {line} has {fields.Length} field(s) but {needed} are needed to reach the text and label columns; quote fields that contain the delimiter or line breaks.");
            }

            yield return new TextRecord(fields[textIndex], labelIndex >= 0 && fields[labelIndex].Length > 0 ? fields[labelIndex] : null, line);
        }
    }

    private static int Resolve(CsvColumn column, string[] header, string source)
    {
        if (column.Name is null)
        {
            return column.Index;
        }

        int index = Array.IndexOf(header, column.Name);
        if (index < 0)
        {
            throw new InvalidDataException($"{source}: the header has no {column}; its columns are {string.Join(", ", header.Select(h => $"'{h}'"))}.");
        }

        return index;
    }

    /// <summary>
    /// Encodes labelled records as classification examples: the text framed with the tokenizer's special tokens
    /// (BERT <c>[CLS] … [SEP]</c>), the label mapped through <paramref name="labels"/>. Lazy, so it streams.
    /// </summary>
    /// <param name="records">Labelled records.</param>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="labels">The label → id map.</param>
    /// <param name="maxLength">Longer texts lose content tokens from the end so that the framed ids fit (the closing special token is kept); <see langword="null"/> keeps everything.</param>
    /// <returns>The examples.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxLength"/> leaves no room for content.</exception>
    /// <exception cref="InvalidDataException">While enumerating: a record has no label, or a label the map does not know.</exception>
    public static IEnumerable<TokenExample> ToClassificationExamples(IEnumerable<TextRecord> records, ITextTokenizer tokenizer, LabelMap labels, int? maxLength = null)
    {
        ArgumentNullException.ThrowIfNull(records);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(labels);
        int framing = tokenizer.AddSpecialTokens(ReadOnlySpan<int>.Empty).Length;
        if (maxLength is { } max && max <= framing)
        {
            throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, $"maxLength must exceed the {framing} special token(s) the tokenizer adds, leaving room for the text.");
        }

        return ToClassificationCore(records, tokenizer, labels, maxLength, framing);
    }

    private static IEnumerable<TokenExample> ToClassificationCore(IEnumerable<TextRecord> records, ITextTokenizer tokenizer, LabelMap labels, int? maxLength, int framing)
    {
        foreach (TextRecord record in records)
        {
            if (record.Label is null)
            {
                throw new InvalidDataException($"The record at line {record.Line} has no label; classification needs one per record (filter unlabelled records, or use JsonlOptions.SkipUnlabelled).");
            }

            if (!labels.TryGetId(record.Label, out int id))
            {
                throw new InvalidDataException($"The record at line {record.Line} has label '{record.Label}', which the label map does not know; known labels: {string.Join(", ", labels.Labels.Take(20))}.");
            }

            int[] content = tokenizer.Encode(record.Text, addSpecialTokens: false);
            ReadOnlySpan<int> kept = maxLength is { } max && content.Length + framing > max ? content.AsSpan(0, max - framing) : content;
            yield return new TokenExample(tokenizer.AddSpecialTokens(kept), id);
        }
    }

    /// <summary>
    /// Tokenises documents and packs them into fixed-length causal-LM blocks, each document followed by the
    /// tokenizer's end-of-sequence token (GPT-2's <c>&lt;|endoftext|&gt;</c>). Lazy, so it streams.
    /// </summary>
    /// <param name="texts">The documents.</param>
    /// <param name="tokenizer">The model's tokenizer; documents are encoded without framing tokens.</param>
    /// <param name="length">Tokens per block (the context length or less), at least 2.</param>
    /// <param name="keepRemainder">Keep the last, shorter block.</param>
    /// <returns>The blocks.</returns>
    /// <exception cref="ArgumentException">The tokenizer defines no end-of-sequence token (use <see cref="SequencePacking.PackLazily"/> with your own separator).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is below 2.</exception>
    public static IEnumerable<TokenExample> ToLanguageModelingBlocks(IEnumerable<string> texts, ITextTokenizer tokenizer, int length, bool keepRemainder = false)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentNullException.ThrowIfNull(tokenizer);
        int separator = tokenizer.SpecialTokens.EndOfSequence
            ?? throw new ArgumentException("The tokenizer defines no end-of-sequence token to separate documents; call SequencePacking.PackLazily with an explicit separatorId.", nameof(tokenizer));
        return SequencePacking.PackLazily(texts.Select(t => tokenizer.Encode(t, addSpecialTokens: false)), length, separator, keepRemainder);
    }
}
