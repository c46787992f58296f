using System.Text.Json;
using FluentAssertions;
using NicheTune.Augmentation;
using Xunit;

namespace NicheTune.Tests.Augmentation;

public sealed class BalancedAugmentationTests
{
    // One variant per call: the text with a mark and a running number, so every variant is distinct and countable.
    private sealed class Mark : IAugmenter<LabeledText>
    {
        public IEnumerable<LabeledText> Augment(LabeledText example, Random random) => [example with { Text = $"{example.Text} #{random.Next(1_000_000)}" }];
    }

    private static List<LabeledText> Data(params (string Label, int Count)[] classes) =>
        [.. classes.SelectMany(c => Enumerable.Range(0, c.Count).Select(i => new LabeledText($"{c.Label} text {i}", c.Label)))];

    [Fact]
    public void AugmentBalanced_ImbalancedClasses_TopsUpToTheLargestAndLeavesItAlone()
    {
        List<LabeledText> data = Data(("big", 27), ("mid", 17), ("small", 5));
        List<LabeledText> result = data.AugmentBalanced(new Mark(), seed: 1, maxCopies: 4);

        Dictionary<string, int> counts = result.GroupBy(e => e.Label).ToDictionary(g => g.Key, g => g.Count());
        counts["big"].Should().Be(27, "the largest class gets no variants");
        counts["mid"].Should().Be(27, "17 originals + 10 variants reach the largest class");
        counts["small"].Should().Be(5 + (4 * 5), "22 are missing but at most 4 variants per original are allowed");
        result.Where(e => e.Label == "big").Should().OnlyContain(e => !e.Text.Contains('#'));
    }

    [Fact]
    public void AugmentBalanced_SpreadsCallsEvenlyAndKeepsEachOriginalBeforeItsVariants()
    {
        List<LabeledText> data = Data(("big", 10), ("small", 4));
        List<LabeledText> result = data.AugmentBalanced(new Mark(), seed: 3, maxCopies: 4);

        // 6 variants over 4 originals: two originals get 2, two get 1; each variant follows its original.
        var perOriginal = new Dictionary<string, int>(StringComparer.Ordinal);
        string? current = null;
        foreach (LabeledText e in result)
        {
            if (!e.Text.Contains('#'))
            {
                current = e.Text;
                perOriginal[current] = 0;
                continue;
            }

            e.Text.Should().StartWith(current + " #");
            perOriginal[current!]++;
        }

        perOriginal.Where(p => p.Key.StartsWith("small", StringComparison.Ordinal)).Select(p => p.Value).Order().Should().Equal(1, 1, 2, 2);
        result.Where(e => !e.Text.Contains('#')).Should().Equal(data, "every original is kept, in order");
    }

    [Fact]
    public void AugmentBalanced_Seeded_IsReproducibleAndSeedDependent()
    {
        List<LabeledText> data = Data(("big", 9), ("small", 2), ("tiny", 1));
        data.AugmentBalanced(new Mark(), seed: 7).Should().Equal(data.AugmentBalanced(new Mark(), seed: 7));
        data.AugmentBalanced(new Mark(), seed: 7).Should().NotEqual(data.AugmentBalanced(new Mark(), seed: 8));
    }

    [Fact]
    public void AugmentBalanced_BalancedData_AddsNothing()
    {
        List<LabeledText> data = Data(("a", 5), ("b", 5));
        data.AugmentBalanced(new Mark(), seed: 1).Should().Equal(data);
    }

    [Fact]
    public void AugmentBalanced_MaxCopiesBelowOne_ThrowsNamingTheParameter()
    {
        Action act = () => Data(("a", 2), ("b", 1)).AugmentBalanced(new Mark(), seed: 1, maxCopies: 0);
        act.Should().Throw<ArgumentOutOfRangeException>().WithParameterName("maxCopies").WithMessage("*at least 1*");
    }

    [Fact]
    public void AugmentBalanced_EdaOnFoldoc_KeepsLabelsAndBalancesRealCategories()
    {
        // Real data: the first 60 FOLDOC category entries (GNU FDL, tests/data/foldoc.COPYRIGHT), EDA with one copy per call.
        List<LabeledText> data = [.. File.ReadLines(Path.Combine(AppContext.BaseDirectory, "data", "foldoc-categories.jsonl")).Take(60).Select(line =>
        {
            using var document = JsonDocument.Parse(line);
            return new LabeledText(document.RootElement.GetProperty("text").GetString()!, document.RootElement.GetProperty("label").GetString()!);
        })];
        Dictionary<string, int> before = data.GroupBy(e => e.Label).ToDictionary(g => g.Key, g => g.Count());
        int largest = before.Values.Max();
        IAugmenter<LabeledText> eda = Augmenters.Eda(new EdaOptions { Copies = 1 }).ForLabeled();

        List<LabeledText> result = data.AugmentBalanced(eda, seed: 42, maxCopies: 4);

        Dictionary<string, int> after = result.GroupBy(e => e.Label).ToDictionary(g => g.Key, g => g.Count());
        after.Keys.Should().BeEquivalentTo(before.Keys, "variants keep their original's label");
        foreach ((string label, int count) in before)
        {
            after[label].Should().BeLessThanOrEqualTo(Math.Min(largest, 5 * count), label);
        }

        // EDA can yield nothing for a text with no word it may change, so a class may fall a little short, but the spread shrinks.
        (after.Values.Max() / (double)after.Values.Min()).Should().BeLessThan(largest / (double)before.Values.Min());
        result.Should().Contain(data);
    }
}
