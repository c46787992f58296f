using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using FluentAssertions;
using NicheTune.Models;
using NicheTune.Tests.Support;
using TorchSharp;
using Xunit;

namespace NicheTune.Tests.Models;

/// <summary>
/// Hundreds of corrupted safetensors files: each must end in a clear exception (or, where the damage is harmless, a
/// load), never in another exception type or a crash of the process.
/// </summary>
[Collection(TorchCollection.Name)]
public sealed class PretrainedModelFuzzTests
{
    private enum Damage
    {
        Truncated,
        HeaderBytesFlipped,
        BadJson,
        BadEntry,
        BadLengthPrefix,
    }

    [Fact]
    public void Load_RandomlyCorruptedSafetensors_ThrowsInvalidDataNamingTheFileOrLoads()
    {
        using var folder = new TempFolder();
        torch.manual_seed(1);
        using (var model = new Gpt2LMHeadModel(new Gpt2Config { VocabularySize = 10, ContextLength = 4, EmbeddingSize = 4, LayerCount = 1, HeadCount = 1 }))
        {
            PretrainedModel.Save(model, folder.Path);
        }

        string file = Path.Combine(folder.Path, "model.safetensors");
        byte[] original = File.ReadAllBytes(file);
        int headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(original);
        string header = Encoding.UTF8.GetString(original, 8, headerLength);
        byte[] data = original[(8 + headerLength)..];
        var random = new Random(20261125);
        var outcomes = new Dictionary<(Damage, string), int>();

        for (int i = 0; i < 400; i++)
        {
            var damage = (Damage)(i % 5);
            byte[] corrupted = damage switch
            {
                Damage.Truncated => original[..random.Next(0, original.Length)],
                Damage.HeaderBytesFlipped => FlipHeaderBytes(original, headerLength, random),
                Damage.BadJson => Assemble(BadJson(header, random), data),
                Damage.BadEntry => Assemble(BadEntry(header, random), data),
                _ => WithLengthPrefix(original, random),
            };
            File.WriteAllBytes(file, corrupted);

            string outcome;
            try
            {
                PretrainedModel.Load(folder.Path).Dispose();
                outcome = "loaded";
            }
            catch (InvalidDataException ex)
            {
                ex.Message.Should().Contain(file, "the message names the damaged file ({0}: {1})", damage, ex.Message);
                outcome = "invalid";
            }
            catch (PretrainedModelException ex)
            {
                // A flipped byte inside a tensor name yields a well-formed file whose names do not fit the model.
                ex.MissingKeys.Count.Should().BeGreaterThan(0);
                outcome = "names";
            }

            outcomes[(damage, outcome)] = outcomes.GetValueOrDefault((damage, outcome)) + 1;
        }

        // Damage to the framing must always be detected; only flipped header bytes may leave a loadable file
        // (e.g. inside the "pt" metadata value or the padding spaces).
        foreach (var damage in new[] { Damage.Truncated, Damage.BadJson, Damage.BadEntry, Damage.BadLengthPrefix })
        {
            outcomes.GetValueOrDefault((damage, "invalid")).Should().Be(80, "every {0} file must be rejected as invalid", damage);
        }

        outcomes.GetValueOrDefault((Damage.HeaderBytesFlipped, "invalid")).Should().BeGreaterThan(60);
    }

    private static byte[] FlipHeaderBytes(byte[] original, int headerLength, Random random)
    {
        byte[] copy = (byte[])original.Clone();
        int flips = random.Next(1, 5);
        for (int f = 0; f < flips; f++)
        {
            int position = 8 + random.Next(headerLength);
            copy[position] ^= (byte)random.Next(1, 256);
        }

        return copy;
    }

    private static string BadJson(string header, Random random)
    {
        string[] fixedCases =
        [
            "", "{", "[]", "null", "42", "\"text\"", "{\"a\": 1}", "{\"x\": {\"dtype\": \"F32\"}}", "{\"x\": []}",
            "{\"__metadata__\": 3}", header[..(header.Length / 2)], header.Replace("{", "[", StringComparison.Ordinal),
        ];
        if (random.Next(3) == 0)
        {
            var bytes = new byte[random.Next(1, 64)];
            random.NextBytes(bytes);
            return Encoding.Latin1.GetString(bytes);
        }

        return fixedCases[random.Next(fixedCases.Length)];
    }

    /// <summary>A well-formed JSON header with one entry made inconsistent: offsets, shape, dtype, duplicates or missing fields.</summary>
    private static string BadEntry(string header, Random random)
    {
        var root = JsonNode.Parse(header)!.AsObject();
        var names = root.Select(p => p.Key).Where(k => k != "__metadata__").ToArray();
        string name = names[random.Next(names.Length)];
        var entry = root[name]!.AsObject();
        var offsets = entry["data_offsets"]!.AsArray();
        long begin = offsets[0]!.GetValue<long>(), end = offsets[1]!.GetValue<long>();
        var shape = entry["shape"]!.AsArray();
        switch (random.Next(10))
        {
            case 0:
                entry["data_offsets"] = new JsonArray(end, begin == end ? begin - 1 : begin);
                break;
            case 1:
                entry["data_offsets"] = new JsonArray(begin + random.Next(1, 9), end + random.Next(1, 9));
                break;
            case 2:
                entry["data_offsets"] = new JsonArray(-4, end);
                break;
            case 3:
                entry["data_offsets"] = new JsonArray(begin, end + (long)random.Next(1, 1 << 30));
                break;
            case 4:
                shape.Add(1L << 62);
                shape.Add(1L << 62);
                break;
            case 5:
                entry["shape"] = new JsonArray(-1, 4);
                break;
            case 6:
                entry["dtype"] = random.Next(2) == 0 ? "F8_E4M3" : "F64";
                break;
            case 7:
                entry.Remove(random.Next(2) == 0 ? "dtype" : "data_offsets");
                break;
            case 8:
                entry["data_offsets"] = new JsonArray("0", "16");
                break;
            default:
                // Two entries on the same bytes.
                root["extra." + name] = entry.DeepClone();
                break;
        }

        return root.ToJsonString();
    }

    private static byte[] WithLengthPrefix(byte[] original, Random random)
    {
        byte[] copy = (byte[])original.Clone();
        ulong current = BinaryPrimitives.ReadUInt64LittleEndian(copy);
        ulong value = random.Next(4) switch
        {
            0 => ulong.MaxValue - (ulong)random.Next(1000),
            1 => (ulong)random.NextInt64(0, (long)current),
            2 => current + (ulong)random.Next(1, 10_000),
            _ => (ulong)random.NextInt64() | (1UL << 40),
        };
        BinaryPrimitives.WriteUInt64LittleEndian(copy, value);
        return copy;
    }

    private static byte[] Assemble(string header, byte[] data)
    {
        // Latin-1 maps each char to one byte, so random bytes from BadJson reach the file unchanged.
        byte[] json = Encoding.Latin1.GetBytes(header);

        var result = new byte[8 + json.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)json.Length);
        json.CopyTo(result, 8);
        data.CopyTo(result, 8 + json.Length);
        return result;
    }
}
