using FluentAssertions;
using NicheTune.Evaluation;
using NicheTune.Fairness;
using Xunit;

namespace NicheTune.Tests.Fairness;

public sealed class GroupFairnessTests
{
    // Group A: targets 1 1 0 0, predictions 1 0 1 0 → SR 2/4, TPR 1/2, FPR 1/2.
    // Group B: targets 1 1 0 0, predictions 1 1 1 0 → SR 3/4, TPR 2/2, FPR 1/2.
    private static readonly int[] Targets = [1, 1, 0, 0, 1, 1, 0, 0];
    private static readonly int[] Predictions = [1, 0, 1, 0, 1, 1, 1, 0];
    private static readonly string[] Groups = ["A", "A", "A", "A", "B", "B", "B", "B"];

    [Fact]
    public void Compute_TwoGroups_MatchesHandComputedDifferences()
    {
        GroupFairnessReport report = GroupFairness.Compute(Targets, Predictions, Groups, ["negative", "positive"]);

        ClassFairness positive = report["positive"];
        positive.DemographicParityDifference.Should().BeApproximately(0.25, 1e-12);
        positive.EqualOpportunityDifference.Should().BeApproximately(0.5, 1e-12);
        positive.EqualizedOddsDifference.Should().BeApproximately(0.5, 1e-12, "max(TPR gap 0.5, FPR gap 0)");
        positive.Groups.Select(g => (g.Group, g.SelectionRate, g.TruePositiveRate, g.FalsePositiveRate))
            .Should().Equal(("A", 0.5, 0.5, 0.5), ("B", 0.75, 1.0, 0.5));

        // One-vs-rest for "negative": A predicts it 2/4, B 1/4; TPR(neg) = 1/2 in both; FPR(neg) = 1/2 for A, 0 for B.
        ClassFairness negative = report["negative"];
        negative.DemographicParityDifference.Should().BeApproximately(0.25, 1e-12);
        negative.EqualOpportunityDifference.Should().BeApproximately(0, 1e-12);
        negative.EqualizedOddsDifference.Should().BeApproximately(0.5, 1e-12);
        report.ToMarkdown().Should().Contain("| positive | 0.250 | 0.500 | 0.500 |");
    }

    [Fact]
    public void Compute_GroupWithoutPositives_LeavesItOutOfTheTruePositiveRate()
    {
        GroupFairnessReport report = GroupFairness.Compute([1, 0, 0, 0], [1, 0, 1, 0], ["A", "A", "B", "B"]);
        double.IsNaN(report.Classes[1].Groups[1].TruePositiveRate).Should().BeTrue();
        double.IsNaN(report.Classes[1].EqualOpportunityDifference).Should().BeTrue("only one group has positives");
        report.Classes[1].EqualizedOddsDifference.Should().BeApproximately(0.5, 1e-12, "the FPR gap (0 vs 1/2) remains");
    }

    [Fact]
    public void Compute_MismatchedLengths_Throws()
        => FluentActions.Invoking(() => GroupFairness.Compute([1, 0], [1], ["A", "B"])).Should().Throw<ArgumentException>().WithMessage("*got 2, 1 and 2*");

    [Fact]
    public void ComputeAndSliceGaps_ErrorReport_UseItsSlicesAndNameTheWorst()
    {
        ExampleResult[] examples = [.. Targets.Select((t, i) => new ExampleResult(i, t == Predictions[i] ? 0.1 : 2.0, 1, t == Predictions[i] ? 1 : 0, Predictions[i], t, Groups[i]))];
        var slices = new[]
        {
            new SliceResult("A", 4, new Dictionary<string, double> { ["loss"] = 1.05, ["accuracy"] = 0.5 }, new Dictionary<string, double> { ["loss"] = 0.24, ["accuracy"] = -0.125 }),
            new SliceResult("B", 4, new Dictionary<string, double> { ["loss"] = 0.575, ["accuracy"] = 0.75 }, new Dictionary<string, double> { ["loss"] = -0.2375, ["accuracy"] = 0.125 }),
        };
        var report = new ErrorReport(examples, 0.8125, 0.625, null, new Dictionary<string, double> { ["loss"] = 0.8125, ["accuracy"] = 0.625 }, slices);

        GroupFairness.Compute(report).Classes[1].DemographicParityDifference.Should().BeApproximately(0.25, 1e-12);
        var gaps = GroupFairness.SliceGaps(report);
        gaps.Should().HaveCount(2);
        gaps[0].Should().Be(new SliceMetricGap("loss", false, "B", 0.575, "A", 1.05, 1.05 - 0.575));
        gaps[1].Should().Be(new SliceMetricGap("accuracy", true, "B", 0.75, "A", 0.5, 0.25));
    }
}
