using System.Buffers.Binary;
using System.Text.Json;

namespace NicheTune.Training;

/// <summary>
/// Checks a safetensors file's framing before it is loaded: an 8-byte little-endian header length, a JSON header,
/// and tensor data whose declared byte ranges end exactly at the end of the file. A file cut short by a crash or an
/// interrupted copy fails here with a message naming the file, instead of deep inside a reader.
/// </summary>
internal static class SafetensorsFile
{
    public static void Validate(string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"The safetensors file '{path}' does not exist.", path);
        }

        using FileStream stream = File.OpenRead(path);
        long length = stream.Length;
        Span<byte> prefix = stackalloc byte[8];
        if (length < 8 || stream.Read(prefix) != 8)
        {
            throw Truncated(path, $"it has {length} bytes, fewer than the 8-byte header length");
        }

        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > (ulong)(length - 8))
        {
            throw Truncated(path, $"its header declares {headerLength} bytes but only {length - 8} follow");
        }

        var header = new byte[headerLength];
        stream.ReadExactly(header);
        long dataEnd = 0;
        try
        {
            using JsonDocument doc = JsonDocument.Parse(header);
            foreach (JsonProperty entry in doc.RootElement.EnumerateObject())
            {
                if (entry.Name == "__metadata__")
                {
                    continue;
                }

                JsonElement offsets = entry.Value.GetProperty("data_offsets");
                dataEnd = Math.Max(dataEnd, offsets[1].GetInt64());
            }
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or IndexOutOfRangeException)
        {
            throw new InvalidDataException($"'{path}' is not a valid safetensors file: its header cannot be read ({ex.Message}).", ex);
        }

        long available = length - 8 - (long)headerLength;
        if (dataEnd > available)
        {
            throw Truncated(path, $"its tensors need {dataEnd} data bytes but the file holds {available}");
        }
    }

    private static InvalidDataException Truncated(string path, string detail)
        => new($"'{path}' is truncated: {detail}. Restore it from another checkpoint or save it again.");
}
