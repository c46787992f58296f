using System.Text;

namespace NicheTune.Text;

/// <summary>A streaming RFC 4180 reader: one record at a time, with the line it started on.</summary>
internal sealed class CsvParser(TextReader reader, char delimiter, string source)
{
    private readonly StringBuilder _field = new();
    private long _line = 1;

    public IEnumerable<(string[] Fields, long Line)> Records()
    {
        var fields = new List<string>();
        while (true)
        {
            long start = _line;
            fields.Clear();
            bool more = ReadRecord(fields);
            bool blank = fields.Count == 1 && fields[0].Length == 0;
            if (!blank)
            {
                yield return ([.. fields], start);
            }

            if (!more)
            {
                yield break;
            }
        }
    }

    // Reads one record into fields; returns false at the end of the input.
    private bool ReadRecord(List<string> fields)
    {
        _field.Clear();
        bool quoted = false;
        bool afterQuote = false;
        long quoteLine = 0;
        while (true)
        {
            int read = reader.Read();
            if (read < 0)
            {
                if (quoted)
                {
                    throw new InvalidDataException($"{source} line {quoteLine}: a quoted field is never closed; close it with '\"' (write a quote inside a quoted field as \"\").");
                }

                if (fields.Count == 0 && _field.Length == 0 && !afterQuote)
                {
                    fields.Add(string.Empty);
                    return false;
                }

                fields.Add(_field.ToString());
                return false;
            }

            char c = (char)read;
            if (quoted)
            {
                if (c == '"')
                {
                    if (reader.Peek() == '"')
                    {
                        reader.Read();
                        _field.Append('"');
                    }
                    else
                    {
                        quoted = false;
                        afterQuote = true;
                    }
                }
                else
                {
                    if (c == '\n')
                    {
                        _line++;
                    }

                    _field.Append(c);
                }

                continue;
            }

            if (c == delimiter)
            {
                fields.Add(_field.ToString());
                _field.Clear();
                afterQuote = false;
            }
            else if (c == '\r' || c == '\n')
            {
                if (c == '\r' && reader.Peek() == '\n')
                {
                    reader.Read();
                }

                _line++;
                fields.Add(_field.ToString());
                return true;
            }
            else if (afterQuote)
            {
                throw new InvalidDataException($"{source} line {_line}: character '{c}' follows a closing quote; a quoted field must end at a delimiter or line break (write a quote inside it as \"\").");
            }
            else if (c == '"' && _field.Length == 0)
            {
                quoted = true;
                quoteLine = _line;
            }
            else
            {
                _field.Append(c);
            }
        }
    }
}
