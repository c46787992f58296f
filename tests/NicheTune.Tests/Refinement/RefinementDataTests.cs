using FluentAssertions;
using NicheTune.Refinement;
using Xunit;

namespace NicheTune.Tests.Refinement;

public sealed class RefinementDataTests
{
    private static readonly string[] New = [.. Enumerable.Range(0, 10).Select(i => $"new {i}")];
    private static readonly string[] Original = [.. Enumerable.Range(0, 100).Select(i => $"old {i}")];

    [Theory]
    [InlineData(0.0, 0)]
    [InlineData(0.5, 5)]
    [InlineData(1.0, 10)]
    [InlineData(2.5, 25)]
    public void MixWithReplay_Ratio_KeepsEveryNewExampleAndRatioTimesAsManyOriginals(double ratio, int replayed)
    {
        List<string> mixed = RefinementData.MixWithReplay(New, Original, ratio, seed: 3);

        mixed.Should().HaveCount(New.Length + replayed);
        mixed.Where(e => e.StartsWith("new", StringComparison.Ordinal)).Should().BeEquivalentTo(New);
        mixed.Where(e => e.StartsWith("old", StringComparison.Ordinal)).Should().OnlyHaveUniqueItems().And.HaveCount(replayed).And.BeSubsetOf(Original);
    }

    [Fact]
    public void MixWithReplay_SameSeed_SameListAndOrder_OtherSeedDiffers()
    {
        List<string> first = RefinementData.MixWithReplay(New, Original, 1.0, seed: 7);

        RefinementData.MixWithReplay(New, Original, 1.0, seed: 7).Should().Equal(first);
        RefinementData.MixWithReplay(New, Original, 1.0, seed: 8).Should().NotEqual(first);
        first.Take(10).Should().NotEqual(New, "new and replayed examples are shuffled together");
    }

    [Fact]
    public void MixWithReplay_FewerOriginalsThanAsked_ReplaysAllOfThem()
    {
        List<string> mixed = RefinementData.MixWithReplay(New, Original[..4], 1.0, seed: 1);

        mixed.Should().HaveCount(14).And.Contain(Original[..4]);
    }

    [Fact]
    public void MixWithReplay_ManySeeds_SamplesOriginalsUniformly()
    {
        // 2,000 fixed seeds × 3 of 10 originals: each original is expected 600 times (binomial sd ≈ 20.5).
        string[] originals = [.. Enumerable.Range(0, 10).Select(i => $"old {i}")];
        var counts = originals.ToDictionary(o => o, _ => 0);
        for (int seed = 0; seed < 2000; seed++)
        {
            foreach (string e in RefinementData.MixWithReplay(["new"], originals, 3.0, seed).Where(e => e != "new"))
            {
                counts[e]++;
            }
        }

        counts.Values.Should().OnlyContain(c => c >= 520 && c <= 680);
    }

    [Fact]
    public void MixWithReplay_BadArguments_Throw()
    {
        FluentActions.Invoking(() => RefinementData.MixWithReplay(Array.Empty<string>(), Original, 1, 1)).Should().Throw<ArgumentException>().WithParameterName("newExamples");
        FluentActions.Invoking(() => RefinementData.MixWithReplay(New, Original, -0.5, 1)).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("replayRatio");
        FluentActions.Invoking(() => RefinementData.MixWithReplay(New, Original, double.NaN, 1)).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("replayRatio");
    }
}
