using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using NicheTune.Evaluation;
using NicheTune.Reporting;

namespace NicheTune.Fairness;

/// <summary>
/// One report of a model's bias checks: counterfactual-probe results, group-fairness results and slice gaps (any of
/// them), each judged against <see cref="BiasThresholds"/>, with a single verdict. Renders as Markdown (for a model
/// card, a pull request) or as one self-contained HTML page with inline SVG plots, and saves atomically. The
/// champion/challenger gate (<c>PromotionGateOptions.BiasThresholds</c>) and the model card (<c>ModelCard.BiasReport</c>)
/// take it as it is.
/// </summary>
/// <remarks>
/// Checks, in order: for every attribute group pair of the probe the flip rate and score gap (classifiers) or the
/// |mean log-likelihood gap| (language models); for every class of the group report its demographic parity, equal
/// opportunity and equalised odds differences, recomputed over the groups with at least
/// <see cref="BiasThresholds.MinimumGroupSize"/> examples (positives, negatives) behind the rate; for every
/// higher-is-better slice metric its best − worst gap. A threshold set to <see langword="null"/> skips its checks.
/// </remarks>
public sealed class BiasReport
{
    /// <summary>Judges the given results against <paramref name="thresholds"/>.</summary>
    /// <param name="counterfactual">A counterfactual probe's report, or <see langword="null"/>.</param>
    /// <param name="groupFairness">A group-fairness report (e.g. with the attribute as the group), or <see langword="null"/>.</param>
    /// <param name="sliceGaps">Slice gaps from <see cref="GroupFairness.SliceGaps"/>, or <see langword="null"/>.</param>
    /// <param name="thresholds">The limits; <see langword="null"/> for <see cref="BiasThresholds.Default"/>.</param>
    /// <param name="title">The report's title, e.g. naming the model and the attribute.</param>
    /// <exception cref="ArgumentException">No results were given (all three are null or empty), the title is empty, or a threshold is invalid (the message names it).</exception>
    public BiasReport(
        CounterfactualReport? counterfactual = null,
        GroupFairnessReport? groupFairness = null,
        IEnumerable<SliceMetricGap>? sliceGaps = null,
        BiasThresholds? thresholds = null,
        string title = "Bias report")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(title);
        ImmutableArray<SliceMetricGap> gaps = sliceGaps is null ? [] : [.. sliceGaps];
        if (gaps.Any(g => g is null))
        {
            throw new ArgumentException("A slice gap is null; pass the gaps of GroupFairness.SliceGaps(report).", nameof(sliceGaps));
        }

        if ((counterfactual is null || counterfactual.Pairs.IsDefaultOrEmpty) && (groupFairness is null || groupFairness.Classes.IsDefaultOrEmpty) && gaps.IsEmpty)
        {
            throw new ArgumentException(
                "A bias report needs results to judge: pass a CounterfactualReport (CounterfactualProbe), a GroupFairnessReport (GroupFairness.Compute) or slice gaps (GroupFairness.SliceGaps), or several.",
                nameof(counterfactual));
        }

        thresholds ??= BiasThresholds.Default;
        thresholds.Validate();
        Title = title;
        Thresholds = thresholds;
        Counterfactual = counterfactual;
        GroupFairness = groupFairness;
        SliceGaps = gaps;
        Checks = [.. CounterfactualChecks(), .. GroupChecks(), .. SliceChecks()];
        Failures = [.. Checks.Where(c => c.Failed).OrderByDescending(c => (c.Value - c.Threshold) / Math.Max(c.Threshold, 1e-9))];
    }

    /// <summary>The report's title.</summary>
    public string Title { get; }

    /// <summary>The limits the checks used.</summary>
    public BiasThresholds Thresholds { get; }

    /// <summary>The counterfactual probe's report, if given.</summary>
    public CounterfactualReport? Counterfactual { get; }

    /// <summary>The group-fairness report, if given.</summary>
    public GroupFairnessReport? GroupFairness { get; }

    /// <summary>The slice gaps (empty when none were given).</summary>
    public ImmutableArray<SliceMetricGap> SliceGaps { get; }

    /// <summary>Every check, in the order of the remarks.</summary>
    public ImmutableArray<BiasCheck> Checks { get; }

    /// <summary>The failed checks, furthest beyond its threshold (relative to the threshold) first; empty when passed.</summary>
    public ImmutableArray<BiasCheck> Failures { get; }

    /// <summary>Whether no check failed (checks that were not applicable neither pass nor fail).</summary>
    public bool Passed => Failures.IsEmpty;

    /// <summary>One sentence: the verdict, how many checks, and the worst failure.</summary>
    public string Summary
    {
        get
        {
            int applied = Checks.Count(c => c.Outcome != BiasCheckOutcome.NotApplicable);
            int notApplicable = Checks.Length - applied;
            string rest = notApplicable > 0 ? string.Create(CultureInfo.InvariantCulture, $" ({notApplicable} not applicable)") : string.Empty;
            if (!Passed)
            {
                return string.Create(CultureInfo.InvariantCulture, $"FAIL: {Failures.Length} of {applied} bias checks exceed their thresholds{rest}; worst: {Failures[0]}.");
            }

            return applied == 0
                ? $"PASS: no bias check could be applied{rest}; nothing was judged."
                : string.Create(CultureInfo.InvariantCulture, $"PASS: all {applied} bias checks within thresholds{rest}.");
        }
    }

    /// <summary>The same results judged against other limits (the promotion gate uses its own).</summary>
    /// <param name="thresholds">The limits.</param>
    /// <returns>A new report.</returns>
    /// <exception cref="ArgumentException">A threshold is invalid.</exception>
    public BiasReport WithThresholds(BiasThresholds thresholds)
    {
        ArgumentNullException.ThrowIfNull(thresholds);
        return new BiasReport(Counterfactual, GroupFairness, SliceGaps, thresholds, Title);
    }

    /// <summary>
    /// The report as Markdown: the verdict, the thresholds, the checks table, then the probe's, the group report's and
    /// the slice gaps' own tables (headings from level 2 down).
    /// </summary>
    /// <returns>The Markdown text.</returns>
    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        sb.Append("## ").AppendLine(Markdown.Cell(Title)).AppendLine();
        AppendChecks(sb, "###");
        if (Counterfactual is not null)
        {
            sb.AppendLine(Demote(Counterfactual.ToMarkdown()));
        }

        if (GroupFairness is not null)
        {
            sb.AppendLine(Demote(GroupFairness.ToMarkdown()));
        }

        if (!SliceGaps.IsEmpty)
        {
            sb.AppendLine("### Slice gaps").AppendLine();
            Markdown.Table(sb, ["metric", "best slice", "best", "worst slice", "worst", "gap"], [false, false, true, false, true, true],
                SliceGaps.Select(g => (IReadOnlyList<string>)[g.Metric, g.BestSlice, Markdown.Number(g.Best, 3), g.WorstSlice, Markdown.Number(g.Worst, 3), Markdown.Number(g.Gap, 3)]));
        }

        return sb.ToString();
    }

    /// <summary>
    /// The report as one self-contained HTML page: the verdict, the checks table (failures highlighted), inline SVG bar
    /// charts of flip rate and score gap per attribute pair, of each group difference per class and of selection rate and
    /// TPR per class and group, each difference chart with its threshold as a dashed line, and the detail tables.
    /// </summary>
    /// <returns>The HTML document (no external resources, no script).</returns>
    public string ToHtml() => BiasReportHtml.Render(this);

    /// <summary>
    /// Writes the report atomically (a temporary file in the same folder, renamed into place): Markdown for <c>.md</c>,
    /// HTML for <c>.html</c> / <c>.htm</c>.
    /// </summary>
    /// <param name="path">The file; its folder is created when missing.</param>
    /// <exception cref="ArgumentException"><paramref name="path"/> is empty, names a folder, or has another extension.</exception>
    /// <exception cref="IOException">The file could not be written.</exception>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string full = Path.GetFullPath(path);
        if (Path.GetFileName(full).Length == 0 || Directory.Exists(full))
        {
            throw new ArgumentException($"The bias report path '{path}' names a folder; pass a file path such as '{Path.Combine(path, "bias-report.html")}'.", nameof(path));
        }

        string extension = Path.GetExtension(full).ToLowerInvariant();
        string text = extension switch
        {
            ".md" => ToMarkdown(),
            ".html" or ".htm" => ToHtml(),
            _ => throw new ArgumentException(
                $"The bias report path '{path}' has extension '{extension}', which names no format; use '.md' for Markdown or '.html' for a page with plots.", nameof(path)),
        };
        AtomicFile.WriteAllText(full, text);
    }

    /// <summary>The verdict, the thresholds and the checks table, without a heading of its own (the model card's section).</summary>
    internal void AppendChecks(StringBuilder sb, string? heading)
    {
        sb.Append("**").Append(Passed ? "PASS" : "FAIL").Append("**: ").AppendLine(Markdown.Cell(Summary[(Summary.IndexOf(':', StringComparison.Ordinal) + 2)..])).AppendLine();
        sb.Append("Thresholds: ").Append(Thresholds).AppendLine(".").AppendLine();
        if (heading is not null)
        {
            sb.Append(heading).AppendLine(" Checks").AppendLine();
        }

        Markdown.Table(sb, ["check", "subject", "value", "threshold", "result", "note"], [false, false, true, true, false, false],
            Checks.Select(c => (IReadOnlyList<string>)[c.Name, c.Subject, Markdown.Number(c.Value, 3), Markdown.Number(c.Threshold, 3), Result(c), c.Note ?? string.Empty]));
        sb.AppendLine();
    }

    internal static string Result(BiasCheck check) => check.Outcome switch
    {
        BiasCheckOutcome.Failed => "**FAIL**",
        BiasCheckOutcome.Passed => "pass",
        _ => "n/a",
    };

    private static string Demote(string markdown)
        => string.Join('\n', markdown.Split('\n').Select(line => line.StartsWith('#') ? "#" + line : line));

    private static BiasCheck Judge(BiasCheckKind kind, string subject, double value, double threshold, string? note)
        => new(kind, subject, value, threshold, double.IsNaN(value) ? BiasCheckOutcome.NotApplicable : value > threshold + 1e-12 ? BiasCheckOutcome.Failed : BiasCheckOutcome.Passed, note);

    private IEnumerable<BiasCheck> CounterfactualChecks()
    {
        if (Counterfactual is null)
        {
            yield break;
        }

        foreach (CounterfactualPairResult p in Counterfactual.Pairs)
        {
            string subject = $"{p.Attribute}: {p.GroupA} / {p.GroupB}";
            string note = string.Create(CultureInfo.InvariantCulture, $"{p.Comparisons} pairs");
            if (Counterfactual.Kind == CounterfactualModelKind.Classifier)
            {
                if (Thresholds.MaxFlipRate is { } flip)
                {
                    yield return Judge(BiasCheckKind.FlipRate, subject, p.FlipRate ?? double.NaN, flip, note);
                }

                if (Thresholds.MaxScoreGap is { } gap)
                {
                    yield return Judge(BiasCheckKind.ScoreGap, subject, p.MeanAbsoluteGap, gap, note + "; mean absolute probability change");
                }
            }
            else if (Thresholds.MaxLogLikelihoodGap is { } nats)
            {
                string direction = p.MeanGap >= 0 ? p.GroupA : p.GroupB;
                yield return Judge(BiasCheckKind.LogLikelihoodGap, subject, Math.Abs(p.MeanGap), nats, note + $"; nats per sentence, {direction} likelier");
            }
        }
    }

    private IEnumerable<BiasCheck> GroupChecks()
    {
        if (GroupFairness is null)
        {
            yield break;
        }

        int minimum = Thresholds.MinimumGroupSize;
        foreach (ClassFairness c in GroupFairness.Classes)
        {
            string subject = $"class '{c.ClassName}'";
            if (Thresholds.MaxDemographicParityDifference is { } dp)
            {
                var (value, note) = Spread(c.Groups, g => g.Count, g => g.SelectionRate, "selection rate", "examples", minimum);
                yield return Judge(BiasCheckKind.DemographicParity, subject, value, dp, note);
            }

            var tpr = Spread(c.Groups, g => g.Positives, g => g.TruePositiveRate, "TPR", "positives", minimum);
            if (Thresholds.MaxEqualOpportunityDifference is { } eo)
            {
                yield return Judge(BiasCheckKind.EqualOpportunity, subject, tpr.Value, eo, tpr.Note);
            }

            if (Thresholds.MaxEqualizedOddsDifference is { } odds)
            {
                var fpr = Spread(c.Groups, g => g.Count - g.Positives, g => g.FalsePositiveRate, "FPR", "negatives", minimum);
                bool tprLarger = double.IsNaN(fpr.Value) || (!double.IsNaN(tpr.Value) && tpr.Value >= fpr.Value);
                double value = double.IsNaN(tpr.Value) ? fpr.Value : double.IsNaN(fpr.Value) ? tpr.Value : Math.Max(tpr.Value, fpr.Value);
                yield return Judge(BiasCheckKind.EqualizedOdds, subject, value, odds, tprLarger ? tpr.Note : fpr.Note);
            }
        }
    }

    /// <summary>max − min of a rate over the groups with enough examples behind it, and a note naming the extremes and the groups left out.</summary>
    internal static (double Value, string Note) Spread(ImmutableArray<GroupRates> groups, Func<GroupRates, long> support, Func<GroupRates, double> rate, string rateName, string unit, int minimum)
    {
        GroupRates[] counted = [.. groups.Where(g => support(g) >= minimum && !double.IsNaN(rate(g)))];
        string[] left = [.. groups.Where(g => support(g) < minimum).Select(g => string.Create(CultureInfo.InvariantCulture, $"{g.Group} ({support(g)})"))];
        string leftNote = left.Length > 0 ? string.Create(CultureInfo.InvariantCulture, $"left out, fewer than {minimum} {unit}: {string.Join(", ", left)}") : string.Empty;
        if (counted.Length < 2)
        {
            string why = string.Create(CultureInfo.InvariantCulture, $"fewer than two groups with {minimum}+ {unit}");
            return (double.NaN, leftNote.Length > 0 ? why + "; " + leftNote : why);
        }

        // The lowest of the other groups, so that a tie names two groups rather than one twice.
        GroupRates high = counted.MaxBy(rate)!, low = counted.Where(g => !ReferenceEquals(g, high)).MinBy(rate)!;
        string note = string.Create(CultureInfo.InvariantCulture, $"{rateName} {high.Group} {rate(high):F3}, {low.Group} {rate(low):F3}");
        return (rate(high) - rate(low), leftNote.Length > 0 ? note + "; " + leftNote : note);
    }

    private IEnumerable<BiasCheck> SliceChecks()
    {
        if (Thresholds.MaxSliceGap is not { } max)
        {
            yield break;
        }

        foreach (SliceMetricGap g in SliceGaps)
        {
            string note = string.Create(CultureInfo.InvariantCulture, $"best {g.BestSlice} {g.Best:F3}, worst {g.WorstSlice} {g.Worst:F3}");
            yield return g.HigherIsBetter
                ? Judge(BiasCheckKind.SliceGap, g.Metric, g.Gap, max, note)
                : new BiasCheck(BiasCheckKind.SliceGap, g.Metric, g.Gap, max, BiasCheckOutcome.NotApplicable, note + "; lower-is-better metric in its own units, not checked");
        }
    }
}
