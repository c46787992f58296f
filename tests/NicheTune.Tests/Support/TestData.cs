using System.Text.Json;
using NicheTune.Text;
using NicheTune.Training;

namespace NicheTune.Tests.Support;

/// <summary>Real-text subsets shipped in tests/data (FOLDOC: GNU FDL; WordNet: WordNet licence).</summary>
internal static class TestData
{
    private static readonly Lazy<IReadOnlyList<FoldocEntry>> Foldoc = new(LoadFoldoc);

    public static string Folder => Path.Combine(AppContext.BaseDirectory, "data");

    public static IReadOnlyList<FoldocEntry> FoldocEntries => Foldoc.Value;

    public static IReadOnlyList<string> WordNetGlosses() => File.ReadAllLines(Path.Combine(Folder, "wordnet-glosses-subset.txt"));

    /// <summary>FOLDOC definitions as byte-level packed sequences, split into train/validation by entry.</summary>
    public static (List<TokenExample> Train, List<TokenExample> Validation) FoldocLanguageModeling(int length, int trainEntries, int validationEntries)
    {
        var tokenizer = new ByteTokenizer();
        var entries = FoldocEntries;
        var train = SequencePacking.Pack(entries.Take(trainEntries).Select(e => tokenizer.Encode(e.Text)), length, ByteTokenizer.EndOfTextId);
        var validation = SequencePacking.Pack(entries.Skip(trainEntries).Take(validationEntries).Select(e => tokenizer.Encode(e.Text)), length, ByteTokenizer.EndOfTextId);
        return (train, validation);
    }

    private static IReadOnlyList<FoldocEntry> LoadFoldoc()
    {
        var list = new List<FoldocEntry>();
        foreach (string line in File.ReadLines(Path.Combine(Folder, "foldoc-subset.jsonl")))
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            string[] categories = root.TryGetProperty("categories", out var c) ? [.. c.EnumerateArray().Select(x => x.GetString()!)] : [];
            list.Add(new FoldocEntry(root.GetProperty("term").GetString()!, root.GetProperty("text").GetString()!, categories));
        }

        return list;
    }
}

internal sealed record FoldocEntry(string Term, string Text, string[] Categories);
