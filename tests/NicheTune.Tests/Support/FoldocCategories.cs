using System.Text.Json;
using NicheTune.Augmentation;
using NicheTune.Prompting;

namespace NicheTune.Tests.Support;

/// <summary>
/// The FOLDOC category task (tests/data/foldoc-categories.jsonl, GNU FDL): entry text → its first category among the eight
/// most frequent. For few-shot experiments: a small stratified training set and a large disjoint test set.
/// </summary>
internal static class FoldocCategories
{
    private static readonly Lazy<IReadOnlyList<LabeledText>> All = new(Load);

    /// <summary>The eight labels, most frequent first.</summary>
    public static IReadOnlyList<string> Labels { get; } = ["language", "programming", "networking", "jargon", "operating system", "hardware", "company", "communications"];

    public static IReadOnlyList<LabeledText> Entries => All.Value;

    /// <summary>
    /// <paramref name="train"/> examples stratified by label (every label present), <paramref name="validation"/> and
    /// <paramref name="test"/> drawn at random from the rest; the three parts are disjoint and depend only on the seed.
    /// </summary>
    public static (List<LabeledText> Train, List<LabeledText> Validation, List<LabeledText> Test) Split(int train = 100, int test = 800, int validation = 100, int seed = 42)
    {
        IReadOnlyList<LabeledText> entries = Entries;
        if (train + validation + test > entries.Count)
        {
            throw new ArgumentException($"The task has {entries.Count} entries; {train} + {validation} + {test} do not fit.");
        }

        var picked = FewShotSelection.RandomTotal(entries.Select(e => e.Label).ToArray(), train, seed).ToHashSet();
        int[] rest = [.. Enumerable.Range(0, entries.Count).Where(i => !picked.Contains(i))];
        new Random(seed).Shuffle(rest);
        return (
            [.. picked.Select(i => entries[i])],
            [.. rest.Take(validation).Select(i => entries[i])],
            [.. rest.Skip(validation).Take(test).Select(i => entries[i])]);
    }

    private static IReadOnlyList<LabeledText> Load()
    {
        var list = new List<LabeledText>();
        foreach (string line in File.ReadLines(Path.Combine(TestData.Folder, "foldoc-categories.jsonl")))
        {
            using var doc = JsonDocument.Parse(line);
            list.Add(new LabeledText(doc.RootElement.GetProperty("text").GetString()!, doc.RootElement.GetProperty("label").GetString()!));
        }

        return list;
    }
}
