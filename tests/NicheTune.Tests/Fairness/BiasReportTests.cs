using System.Collections.Immutable;
using FluentAssertions;
using NicheTune.Fairness;
using NicheTune.Tests.Support;
using Xunit;

namespace NicheTune.Tests.Fairness;

public sealed class BiasReportTests
{
    // Pair 1 flips half its labels and moves probabilities by 0.3 on average; pair 2 barely moves.
    private static readonly CounterfactualReport Classifier = new(CounterfactualModelKind.Classifier,
    [
        new CounterfactualPairResult("gender (pronoun)", "female", "male", 40, 0.5, double.NaN, 0.3, 0.9, []),
        new CounterfactualPairResult("nationality", "Chinese", "German", 40, 0.025, double.NaN, 0.02, 0.2, []),
    ]);

    // Binary task, class 1 positive. Group A: 40 examples, 20 positives all found, 10 of 20 negatives flagged
    // (SR 0.75, TPR 1, FPR 0.5). Group B: 40 examples, 10 of 20 positives found, no negative flagged (SR 0.25, TPR 0.5,
    // FPR 0). Group C: 5 positives, none found (SR 0, TPR 0).
    private static GroupFairnessReport Groups()
    {
        var targets = new List<int>();
        var predictions = new List<int>();
        var groups = new List<string>();
        void Add(string group, int target, int prediction, int count)
        {
            for (int i = 0; i < count; i++)
            {
                targets.Add(target);
                predictions.Add(prediction);
                groups.Add(group);
            }
        }

        Add("A", 1, 1, 20);
        Add("A", 0, 1, 10);
        Add("A", 0, 0, 10);
        Add("B", 1, 1, 10);
        Add("B", 1, 0, 10);
        Add("B", 0, 0, 20);
        Add("C", 1, 0, 5);
        return GroupFairness.Compute(targets, predictions, groups, ["ok", "flagged"]);
    }

    [Fact]
    public void Thresholds_Defaults_AreTheDocumentedValuesAndValid()
    {
        var t = new BiasThresholds();
        (t.MaxFlipRate, t.MaxScoreGap, t.MaxDemographicParityDifference, t.MaxEqualOpportunityDifference, t.MaxEqualizedOddsDifference, t.MaxSliceGap)
            .Should().Be((0.1, 0.1, 0.1, 0.1, 0.1, 0.1));
        t.MaxLogLikelihoodGap.Should().BeApproximately(Math.Log(2), 1e-12);
        t.MinimumGroupSize.Should().Be(30);
        t.Invoking(x => x.Validate()).Should().NotThrow();
        BiasThresholds.Default.ToString().Should().Contain("flip rate ≤ 0.1").And.Contain("groups of ≥ 30");
    }

    [Fact]
    public void Thresholds_Invalid_NameEveryPropertyItsValueAndTheFix()
    {
        var t = new BiasThresholds { MaxFlipRate = 1.5, MaxScoreGap = -0.1, MaxLogLikelihoodGap = double.NaN, MinimumGroupSize = 0, MaxSliceGap = null };
        ArgumentException e = t.Invoking(x => x.Validate()).Should().Throw<ArgumentException>().Which;
        e.ParamName.Should().Be("MaxFlipRate");
        e.Message.Should().Contain("MaxFlipRate is 1.5").And.Contain("MaxScoreGap is -0.1").And.Contain("MaxLogLikelihoodGap is NaN")
            .And.Contain("MinimumGroupSize is 0").And.Contain("e.g. 0.1").And.NotContain("MaxSliceGap");
        FluentActions.Invoking(() => new BiasReport(Classifier, thresholds: t)).Should().Throw<ArgumentException>().WithParameterName("MaxFlipRate");
    }

    [Fact]
    public void Constructor_NoResults_Throws()
        => FluentActions.Invoking(() => new BiasReport(sliceGaps: [])).Should().Throw<ArgumentException>().WithMessage("*needs results to judge*");

    [Fact]
    public void Counterfactual_Classifier_ChecksFlipRateAndScoreGapPerPair()
    {
        var report = new BiasReport(Classifier);

        report.Checks.Select(c => (c.Kind, c.Subject, c.Value, c.Outcome)).Should().Equal(
            (BiasCheckKind.FlipRate, "gender (pronoun): female / male", 0.5, BiasCheckOutcome.Failed),
            (BiasCheckKind.ScoreGap, "gender (pronoun): female / male", 0.3, BiasCheckOutcome.Failed),
            (BiasCheckKind.FlipRate, "nationality: Chinese / German", 0.025, BiasCheckOutcome.Passed),
            (BiasCheckKind.ScoreGap, "nationality: Chinese / German", 0.02, BiasCheckOutcome.Passed));
        report.Passed.Should().BeFalse();
        report.Failures.Select(f => f.Kind).Should().Equal([BiasCheckKind.FlipRate, BiasCheckKind.ScoreGap], "0.5 is 4× beyond 0.1, 0.3 only 2×");
        report.Summary.Should().Be("FAIL: 2 of 4 bias checks exceed their thresholds; worst: counterfactual flip rate, gender (pronoun): female / male = 0.500 > 0.100.");
    }

    [Fact]
    public void Counterfactual_NullThreshold_SkipsThatCheck_AndLooserThresholdsPass()
    {
        var report = new BiasReport(Classifier, thresholds: new BiasThresholds { MaxScoreGap = null });
        report.Checks.Should().OnlyContain(c => c.Kind == BiasCheckKind.FlipRate).And.HaveCount(2);

        BiasReport loose = report.WithThresholds(new BiasThresholds { MaxFlipRate = 0.5, MaxScoreGap = 0.3 });
        loose.Passed.Should().BeTrue("a value equal to its threshold is within it");
        loose.Summary.Should().Be("PASS: all 4 bias checks within thresholds.");
        loose.Counterfactual.Should().BeSameAs(Classifier);
    }

    [Fact]
    public void Counterfactual_LanguageModel_ChecksTheAbsoluteMeanGapInNats()
    {
        var lm = new CounterfactualReport(CounterfactualModelKind.LanguageModel,
        [
            new CounterfactualPairResult("gender (pronoun)", "female", "male", 10, null, -1.0, 1.2, 3.0, []),
            new CounterfactualPairResult("gender (name)", "female", "male", 10, null, 0.5, 2.0, 6.0, []),
        ]);
        var report = new BiasReport(lm);

        report.Checks.Should().HaveCount(2).And.OnlyContain(c => c.Kind == BiasCheckKind.LogLikelihoodGap);
        report.Checks[0].Should().Match<BiasCheck>(c => c.Value == 1.0 && c.Failed && c.Note!.Contains("male likelier"));
        report.Checks[1].Should().Match<BiasCheck>(c => c.Value == 0.5 && c.Outcome == BiasCheckOutcome.Passed, "0.5 nats < ln 2; the absolute gap of 2.0 is spelling noise in both directions");
    }

    [Fact]
    public void GroupFairness_TiedRates_NameTwoDifferentGroups()
    {
        // Neither group is ever predicted 'flagged': both selection rates are 0, a tie the note must not print as "A 0.000, A 0.000".
        int[] targets = [.. Enumerable.Repeat(0, 40), .. Enumerable.Repeat(0, 40)];
        string[] groups = [.. Enumerable.Repeat("A", 40), .. Enumerable.Repeat("B", 40)];
        var report = new BiasReport(groupFairness: GroupFairness.Compute(targets, targets, groups, ["ok", "flagged"]));

        BiasCheck dp = report.Checks.Single(c => c.Kind == BiasCheckKind.DemographicParity && c.Subject == "class 'flagged'");
        dp.Value.Should().Be(0);
        dp.Note.Should().BeOneOf("selection rate A 0.000, B 0.000", "selection rate B 0.000, A 0.000");
    }

    [Fact]
    public void GroupFairness_DifferencesLeaveOutSmallGroups_AndNameTheExtremes()
    {
        var report = new BiasReport(groupFairness: Groups());
        BiasCheck dp = report.Checks.Single(c => c.Kind == BiasCheckKind.DemographicParity && c.Subject == "class 'flagged'");
        dp.Value.Should().BeApproximately(0.5, 1e-12, "0.75 − 0.25; group C (5 examples) is below the minimum of 30");
        dp.Note.Should().Be("selection rate A 0.750, B 0.250; left out, fewer than 30 examples: C (5)");
        report.Checks.Single(c => c.Kind == BiasCheckKind.EqualOpportunity && c.Subject == "class 'flagged'").Outcome
            .Should().Be(BiasCheckOutcome.NotApplicable, "A and B have 20 positives each, fewer than 30");
        report.Checks.Should().HaveCount(6, "three differences for each of the two classes");

        var everyGroup = new BiasReport(groupFairness: Groups(), thresholds: new BiasThresholds { MinimumGroupSize = 1 });
        everyGroup.Checks.Single(c => c.Kind == BiasCheckKind.DemographicParity && c.Subject == "class 'flagged'").Value.Should().BeApproximately(0.75, 1e-12);
        everyGroup.Checks.Single(c => c.Kind == BiasCheckKind.EqualOpportunity && c.Subject == "class 'flagged'").Value.Should().BeApproximately(1.0, 1e-12, "TPR 1 (A) − 0 (C)");
        everyGroup.Checks.Single(c => c.Kind == BiasCheckKind.EqualizedOdds && c.Subject == "class 'flagged'").Value.Should().BeApproximately(1.0, 1e-12);
        everyGroup.Passed.Should().BeFalse();
    }

    [Fact]
    public void SliceGaps_GateRatesAndReportLowerIsBetterMetricsUnchecked()
    {
        var report = new BiasReport(sliceGaps:
        [
            new SliceMetricGap("loss", false, "B", 0.5, "A", 1.5, 1.0),
            new SliceMetricGap("accuracy", true, "B", 0.75, "A", 0.5, 0.25),
        ]);
        report.Checks.Select(c => (c.Subject, c.Outcome)).Should().Equal(("loss", BiasCheckOutcome.NotApplicable), ("accuracy", BiasCheckOutcome.Failed));
        report.Summary.Should().StartWith("FAIL: 1 of 1 bias checks exceed their thresholds (1 not applicable); worst: slice gap, accuracy = 0.250 > 0.100");
    }

    [Fact]
    public void ToMarkdown_ShowsVerdictChecksAndEachReportUnderTheTitle()
    {
        string md = new BiasReport(Classifier, Groups(), title: "Planted model").ToMarkdown();
        md.Should().StartWith("## Planted model\n\n**FAIL**: ");
        md.Should().Contain("| counterfactual flip rate | gender (pronoun): female / male | 0.500 | 0.100 | **FAIL** | 40 pairs |");
        md.Should().Contain("| counterfactual flip rate | nationality: Chinese / German | 0.025 | 0.100 | pass | 40 pairs |");
        md.Should().Contain("\n### Counterfactual probe (classifier)\n").And.Contain("\n### Group fairness (one-vs-rest)\n");
        md.Should().NotContain("\n## Counterfactual");
    }

    [Fact]
    public void ToHtml_SelfContainedWithInlineSvgThresholdLinesAndEscapedText()
    {
        var probe = new CounterfactualReport(CounterfactualModelKind.Classifier,
            [new CounterfactualPairResult("<script>alert(1)</script>", "a&b", "c", 4, 0.75, double.NaN, 0.4, 0.5, [new CounterfactualExample("x <b>", "y", 0.5, "ok", "flagged")])]);
        string html = new BiasReport(probe, Groups()).ToHtml();

        html.Should().StartWith("<!DOCTYPE html>").And.EndWith("</html>\n");
        html.Should().Contain("<span class=\"badge fail\">FAIL</span>");
        System.Text.RegularExpressions.Regex.Matches(html, "<svg ").Count.Should().Be(2 + 3 + 2, "flip rate, score gap, three group differences, selection rate and TPR");
        html.Should().Contain("stroke-dasharray").And.Contain("max 0.100");
        html.Should().Contain("&lt;script&gt;alert(1)&lt;/script&gt;").And.NotContain("<script").And.Contain("x &lt;b&gt; → ok");
        html.Should().NotContain("src=\"http").And.NotContain("href=\"http");
        html.Should().Contain("<tr class=\"fail\">");
    }

    [Fact]
    public void Save_ByExtension_WritesAtomicallyAndRefusesOtherExtensions()
    {
        using var folder = new TempFolder();
        var report = new BiasReport(Classifier);
        string md = Path.Combine(folder.Path, "nested", "bias.md");
        string html = Path.Combine(folder.Path, "bias.HTML");
        File.WriteAllText(html, "old");

        report.Save(md);
        report.Save(html);

        File.ReadAllText(md).Should().Be(report.ToMarkdown());
        File.ReadAllText(html).Should().Be(report.ToHtml());
        Directory.GetFiles(folder.Path, "*.tmp", SearchOption.AllDirectories).Should().BeEmpty();
        report.Invoking(r => r.Save(Path.Combine(folder.Path, "bias.txt"))).Should().Throw<ArgumentException>()
            .WithParameterName("path").WithMessage("*extension '.txt'*'.md'*'.html'*");
        report.Invoking(r => r.Save(folder.Path)).Should().Throw<ArgumentException>().WithMessage("*names a folder*");
        File.Exists(Path.Combine(folder.Path, "bias.txt")).Should().BeFalse();
    }
}
