using System.Buffers.Binary;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Training;

/// <summary>
/// Reads, checks and writes safetensors files: an 8-byte little-endian header length, a JSON header mapping each
/// tensor name to its dtype, shape and byte range, and the tensor data. Every declared range is checked against the
/// file before any byte is read (ranges inside the data, sizes equal to shape × element size, no gaps or overlaps),
/// so a file cut short by a crash, an interrupted copy or a corrupted header fails with an
/// <see cref="InvalidDataException"/> naming the file and the problem instead of deep inside a reader, and no
/// allocation is ever larger than the file itself.
/// </summary>
internal static class SafetensorsFile
{
    // The format's own limit on the header (the reference implementation refuses larger ones); it also bounds the
    // allocation a corrupted length field could cause.
    private const long MaxHeaderLength = 100L * 1024 * 1024;
    private const int CopyBufferSize = 1 << 20;

    public static void Validate(string path) => ReadHeader(path);

    /// <summary>Reads and checks the header of <paramref name="path"/>; throws <see cref="InvalidDataException"/> on any inconsistency.</summary>
    public static SafetensorsHeader ReadHeader(string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"The safetensors file '{path}' does not exist.", path);
        }

        using FileStream stream = File.OpenRead(path);
        return ReadHeader(stream, path);
    }

    private static SafetensorsHeader ReadHeader(FileStream stream, string path)
    {
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

        if (headerLength > MaxHeaderLength)
        {
            throw Invalid(path, $"its header declares {headerLength} bytes, more than the format's limit of {MaxHeaderLength}");
        }

        var header = new byte[headerLength];
        try
        {
            stream.ReadExactly(header);
        }
        catch (EndOfStreamException)
        {
            throw Truncated(path, "it ended while its header was read (was it changed meanwhile?)");
        }

        long dataStart = 8 + (long)headerLength;
        long available = length - dataStart;
        List<SafetensorsEntry> entries = ParseEntries(header, path);

        // The format requires the tensors to tile the data buffer exactly: sorted by start, each begins where the
        // previous one ends and the last one ends at the end of the file.
        var ordered = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
        long expected = 0;
        foreach (SafetensorsEntry entry in ordered)
        {
            if (entry.Begin != expected)
            {
                throw Invalid(
                    path,
                    entry.Begin < expected
                        ? $"tensor '{entry.Name}' starts at data byte {entry.Begin}, inside the previous tensor (which ends at {expected})"
                        : $"tensor '{entry.Name}' starts at data byte {entry.Begin}, leaving a gap after byte {expected}");
            }

            expected = entry.End;
        }

        if (expected > available)
        {
            throw Truncated(path, $"its tensors need {expected} data bytes but the file holds {available}");
        }

        if (expected < available)
        {
            throw Invalid(path, $"it has {available - expected} bytes after the last tensor's data (the header describes {expected} data bytes)");
        }

        return new SafetensorsHeader(path, dataStart, entries);
    }

    private static List<SafetensorsEntry> ParseEntries(byte[] header, string path)
    {
        // JsonDocument checks UTF-8 only when a string is read, and then throws InvalidOperationException: check first.
        if (!System.Text.Unicode.Utf8.IsValid(header))
        {
            throw Invalid(path, "its header is not valid UTF-8 text");
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"'{path}' is not a valid safetensors file: its header is not valid JSON ({ex.Message}).", ex);
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw Invalid(path, $"its header is a JSON {doc.RootElement.ValueKind}, not an object");
            }

            var entries = new List<SafetensorsEntry>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (JsonProperty property in doc.RootElement.EnumerateObject())
            {
                if (!names.Add(property.Name))
                {
                    throw Invalid(path, $"its header names tensor '{property.Name}' twice");
                }

                if (property.Name == "__metadata__")
                {
                    if (property.Value.ValueKind != JsonValueKind.Object)
                    {
                        throw Invalid(path, $"its '__metadata__' is a JSON {property.Value.ValueKind}, not an object");
                    }

                    continue;
                }

                entries.Add(ParseEntry(property, path));
            }

            return entries;
        }
    }

    private static SafetensorsEntry ParseEntry(JsonProperty property, string path)
    {
        string name = property.Name;
        JsonElement value = property.Value;
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw Invalid(path, $"the header entry of tensor '{name}' is a JSON {value.ValueKind}, not an object");
        }

        if (!value.TryGetProperty("dtype", out JsonElement dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
        {
            throw Invalid(path, $"tensor '{name}' has no string 'dtype'");
        }

        string dtypeName = dtypeElement.GetString()!;
        if (!TryParseDtype(dtypeName, out ScalarType dtype, out int elementSize))
        {
            throw Invalid(path, $"tensor '{name}' has dtype '{dtypeName}', which is not one of F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL");
        }

        if (!value.TryGetProperty("shape", out JsonElement shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
        {
            throw Invalid(path, $"tensor '{name}' has no 'shape' array");
        }

        var shape = new long[shapeElement.GetArrayLength()];
        long bytes = elementSize;
        int i = 0;
        foreach (JsonElement dimension in shapeElement.EnumerateArray())
        {
            if (dimension.ValueKind != JsonValueKind.Number || !dimension.TryGetInt64(out long size) || size < 0)
            {
                throw Invalid(path, $"tensor '{name}' has shape entry {dimension.GetRawText()}, which is not a non-negative integer");
            }

            shape[i++] = size;
            try
            {
                bytes = checked(bytes * size);
            }
            catch (OverflowException)
            {
                throw Invalid(path, $"tensor '{name}' has shape [{string.Join(", ", shapeElement.EnumerateArray().Select(d => d.GetRawText()))}], too large to address");
            }
        }

        if (!value.TryGetProperty("data_offsets", out JsonElement offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2
            || !offsets[0].TryGetInt64Safe(out long begin) || !offsets[1].TryGetInt64Safe(out long end))
        {
            throw Invalid(path, $"tensor '{name}' has no 'data_offsets' pair of integers");
        }

        if (begin < 0 || end < begin)
        {
            throw Invalid(path, $"tensor '{name}' has data_offsets [{begin}, {end}], which is not a range");
        }

        if (end - begin != bytes)
        {
            throw Invalid(path, $"tensor '{name}' ({dtypeName}, shape [{string.Join(", ", shape)}]) needs {bytes} bytes but its data_offsets [{begin}, {end}] span {end - begin}");
        }

        return new SafetensorsEntry(name, dtype, shape, begin, end);
    }

    private static bool TryGetInt64Safe(this JsonElement element, out long value)
    {
        value = 0;
        return element.ValueKind == JsonValueKind.Number && element.TryGetInt64(out value);
    }

    /// <summary>
    /// Reads one tensor of a checked header into a new CPU tensor of its stored dtype. The stream must be the file
    /// the header was read from.
    /// </summary>
    public static Tensor ReadTensor(FileStream stream, SafetensorsHeader header, SafetensorsEntry entry)
    {
        Tensor tensor = torch.empty(entry.Shape, dtype: entry.Dtype);
        try
        {
            stream.Position = header.DataStart + entry.Begin;
            if (entry.End > entry.Begin)
            {
                tensor.ReadBytesFromStream(stream, CopyBufferSize);
            }

            return tensor;
        }
        catch (EndOfStreamException ex)
        {
            tensor.Dispose();
            throw new InvalidDataException($"'{header.Path}' is truncated: tensor '{entry.Name}' ends past the end of the file (was it changed while loading?).", ex);
        }
    }

    /// <summary>
    /// Writes <paramref name="tensors"/> (floating-point ones converted to <paramref name="dtype"/> when given) in the given order, with a
    /// header padded to a multiple of 8 bytes as the reference implementation does, so the data stays aligned.
    /// </summary>
    public static void Write(string path, IReadOnlyList<KeyValuePair<string, Tensor>> tensors, ScalarType? dtype = null, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteStartObject("__metadata__");
            writer.WriteString("format", "pt");
            if (metadata is not null)
            {
                foreach ((string key, string value) in metadata)
                {
                    writer.WriteString(key, value);
                }
            }

            writer.WriteEndObject();
            long offset = 0;
            foreach ((string name, Tensor tensor) in tensors)
            {
                ScalarType stored = StoredDtype(tensor.dtype, dtype);
                long bytes = tensor.NumberOfElements * ElementSize(stored);
                writer.WriteStartObject(name);
                writer.WriteString("dtype", DtypeName(stored));
                writer.WriteStartArray("shape");
                foreach (long size in tensor.shape)
                {
                    writer.WriteNumberValue(size);
                }

                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offset);
                writer.WriteNumberValue(offset + bytes);
                writer.WriteEndArray();
                writer.WriteEndObject();
                offset += bytes;
            }

            writer.WriteEndObject();
        }

        while (buffer.Length % 8 != 0)
        {
            buffer.WriteByte((byte)' ');
        }

        using var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, CopyBufferSize);
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)buffer.Length);
        stream.Write(prefix);
        buffer.Position = 0;
        buffer.CopyTo(stream);
        foreach ((_, Tensor tensor) in tensors)
        {
            using var scope = torch.NewDisposeScope();
            Tensor data = tensor.detach();
            if (StoredDtype(data.dtype, dtype) is var target && data.dtype != target)
            {
                data = data.to_type(target);
            }

            data = data.cpu().contiguous();
            if (data.NumberOfElements > 0)
            {
                data.WriteBytesToStream(stream, CopyBufferSize);
            }
        }
    }

    /// <summary>The dtype a tensor is stored in: <paramref name="requested"/> for floating-point tensors, its own otherwise (integer buffers stay exact).</summary>
    public static ScalarType StoredDtype(ScalarType own, ScalarType? requested)
        => requested is { } target && own is ScalarType.Float32 or ScalarType.Float64 or ScalarType.Float16 or ScalarType.BFloat16 ? target : own;

    public static long ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        ScalarType.Int8 or ScalarType.Byte or ScalarType.Bool => 1,
        _ => throw new NotSupportedException($"dtype {dtype} cannot be stored in a safetensors file; convert the tensor to a float or integer dtype first."),
    };

    public static string DtypeName(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 => "F64",
        ScalarType.Float32 => "F32",
        ScalarType.Float16 => "F16",
        ScalarType.BFloat16 => "BF16",
        ScalarType.Int64 => "I64",
        ScalarType.Int32 => "I32",
        ScalarType.Int16 => "I16",
        ScalarType.Int8 => "I8",
        ScalarType.Byte => "U8",
        ScalarType.Bool => "BOOL",
        _ => throw new NotSupportedException($"dtype {dtype} cannot be stored in a safetensors file; convert the tensor to a float or integer dtype first."),
    };

    private static bool TryParseDtype(string name, out ScalarType dtype, out int elementSize)
    {
        (dtype, elementSize) = name switch
        {
            "F64" => (ScalarType.Float64, 8),
            "F32" => (ScalarType.Float32, 4),
            "F16" => (ScalarType.Float16, 2),
            "BF16" => (ScalarType.BFloat16, 2),
            "I64" => (ScalarType.Int64, 8),
            "I32" => (ScalarType.Int32, 4),
            "I16" => (ScalarType.Int16, 2),
            "I8" => (ScalarType.Int8, 1),
            "U8" => (ScalarType.Byte, 1),
            "BOOL" => (ScalarType.Bool, 1),
            _ => (ScalarType.Float32, 0),
        };
        return elementSize > 0;
    }

    private static InvalidDataException Invalid(string path, string detail)
        => new($"'{path}' is not a valid safetensors file: {detail}.");

    private static InvalidDataException Truncated(string path, string detail)
        => new($"'{path}' is truncated: {detail}. Restore it from another checkpoint or save it again.");
}

/// <summary>The checked header of a safetensors file: where its data starts and each tensor's dtype, shape and byte range.</summary>
internal sealed record SafetensorsHeader(string Path, long DataStart, IReadOnlyList<SafetensorsEntry> Entries);

/// <summary>One tensor of a safetensors header; <see cref="Begin"/> and <see cref="End"/> are relative to the data start.</summary>
internal sealed record SafetensorsEntry(string Name, ScalarType Dtype, long[] Shape, long Begin, long End);
