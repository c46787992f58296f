using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using NicheTune.Evaluation;

namespace NicheTune.Fairness;

/// <summary>
/// Group fairness of a classifier from its predictions, the true labels and a group label per example (a demographic
/// attribute, a source, a dialect): demographic parity, equal opportunity and equalised odds differences, and the
/// spread of slice metrics of an <see cref="ErrorReport"/>. Multi-class predictions are judged one-vs-rest: each class
/// in turn is "positive" and every other class "negative".
/// </summary>
/// <remarks>
/// For a positive class c and group g: selection rate SR(g) = P(ŷ = c | g), true-positive rate TPR(g) = P(ŷ = c | y = c, g),
/// false-positive rate FPR(g) = P(ŷ = c | y ≠ c, g). Demographic parity difference = max_g SR − min_g SR; equal
/// opportunity difference = max_g TPR − min_g TPR; equalised odds difference = max(TPR difference, FPR difference)
/// (Hardt, Price and Srebro, "Equality of Opportunity in Supervised Learning", NeurIPS 2016). A group without
/// positives (or negatives) has no TPR (FPR) and is left out of that difference; a difference needs two groups that have
/// the rate, else it is <see cref="double.NaN"/>.
/// </remarks>
public static class GroupFairness
{
    /// <summary>Computes group fairness of predictions.</summary>
    /// <param name="targets">True class per example.</param>
    /// <param name="predictions">Predicted class per example (same length).</param>
    /// <param name="groups">Group label per example (same length).</param>
    /// <param name="classNames">One name per class, or <see langword="null"/> for indices (the class count is then the largest index + 1).</param>
    /// <returns>The report, one entry per class.</returns>
    /// <exception cref="ArgumentException">The lists differ in length or are empty, a class is negative or beyond <paramref name="classNames"/>, or a group is <see langword="null"/>.</exception>
    public static GroupFairnessReport Compute(IReadOnlyList<int> targets, IReadOnlyList<int> predictions, IReadOnlyList<string> groups, IReadOnlyList<string>? classNames = null)
    {
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(predictions);
        ArgumentNullException.ThrowIfNull(groups);
        if (targets.Count == 0 || targets.Count != predictions.Count || targets.Count != groups.Count)
        {
            throw new ArgumentException(
                $"targets, predictions and groups must have one entry per example; got {targets.Count}, {predictions.Count} and {groups.Count}.", nameof(groups));
        }

        int classes = classNames?.Count ?? (Math.Max(targets.Max(), predictions.Max()) + 1);
        for (int i = 0; i < targets.Count; i++)
        {
            if (targets[i] < 0 || targets[i] >= classes || predictions[i] < 0 || predictions[i] >= classes)
            {
                throw new ArgumentException(
                    $"Example {i} has target {targets[i]} and prediction {predictions[i]}, outside the {classes} classes; pass class indices in [0, {classes}) and one class name per class.", nameof(targets));
            }

            if (groups[i] is null)
            {
                throw new ArgumentException($"Example {i} has a null group; give every example a group label (e.g. \"unknown\").", nameof(groups));
            }
        }

        string[] groupNames = [.. groups.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
        var index = groupNames.Select((g, i) => (g, i)).ToDictionary(x => x.g, x => x.i, StringComparer.Ordinal);
        var result = ImmutableArray.CreateBuilder<ClassFairness>(classes);
        for (int c = 0; c < classes; c++)
        {
            var n = new long[groupNames.Length];
            var selected = new long[groupNames.Length];
            var positives = new long[groupNames.Length];
            var truePositives = new long[groupNames.Length];
            var falsePositives = new long[groupNames.Length];
            for (int i = 0; i < targets.Count; i++)
            {
                int g = index[groups[i]];
                bool isPositive = targets[i] == c, predictedPositive = predictions[i] == c;
                n[g]++;
                selected[g] += predictedPositive ? 1 : 0;
                positives[g] += isPositive ? 1 : 0;
                truePositives[g] += isPositive && predictedPositive ? 1 : 0;
                falsePositives[g] += !isPositive && predictedPositive ? 1 : 0;
            }

            GroupRates[] rates = [.. groupNames.Select((name, g) => new GroupRates(
                name,
                n[g],
                positives[g],
                selected[g] / (double)n[g],
                positives[g] == 0 ? double.NaN : truePositives[g] / (double)positives[g],
                n[g] == positives[g] ? double.NaN : falsePositives[g] / (double)(n[g] - positives[g])))];
            double dp = Spread(rates, r => r.SelectionRate), eo = Spread(rates, r => r.TruePositiveRate), fpr = Spread(rates, r => r.FalsePositiveRate);
            double odds = double.IsNaN(eo) ? fpr : double.IsNaN(fpr) ? eo : Math.Max(eo, fpr);
            result.Add(new ClassFairness(c, classNames?[c] ?? c.ToString(CultureInfo.InvariantCulture), [.. rates], dp, eo, odds));
        }

        return new GroupFairnessReport([.. groupNames], result.MoveToImmutable());
    }

    /// <summary>Group fairness of the examples of an <see cref="ErrorAnalysis"/> run, grouped by their slice label.</summary>
    /// <param name="report">A report of a classifier (one prediction per example) run with <see cref="ErrorAnalysisOptions.SliceOf"/>.</param>
    /// <returns>The report.</returns>
    /// <exception cref="ArgumentException">The report has no slices or no per-example predictions (a language-model report).</exception>
    public static GroupFairnessReport Compute(ErrorReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        ExampleResult[] examples = [.. report.Examples.Where(e => e.Target is not null)];
        if (examples.Length == 0 || examples.Any(e => e.Predicted is null || e.Slice is null))
        {
            throw new ArgumentException(
                "Group fairness needs one prediction, target and slice per example: run ErrorAnalysis on a classifier with ErrorAnalysisOptions.SliceOf set.", nameof(report));
        }

        return Compute([.. examples.Select(e => e.Target!.Value)], [.. examples.Select(e => e.Predicted!.Value)], [.. examples.Select(e => e.Slice!)], report.Classes?.ClassNames);
    }

    /// <summary>
    /// The spread of every slice metric of an <see cref="ErrorReport"/>: best and worst slice and the gap between them
    /// (max − min), the single number to track for "does the model serve some subgroup worse".
    /// </summary>
    /// <param name="report">A report run with <see cref="ErrorAnalysisOptions.SliceOf"/>.</param>
    /// <param name="higherIsBetter">Whether a larger value of a metric (by name) is better; <see langword="null"/> treats names containing <c>loss</c>, <c>perplexity</c> or <c>error</c> as lower-is-better and the rest as higher-is-better.</param>
    /// <returns>One gap per metric, in the report's metric order; empty with fewer than two slices.</returns>
    public static ImmutableArray<SliceMetricGap> SliceGaps(ErrorReport report, Func<string, bool>? higherIsBetter = null)
    {
        ArgumentNullException.ThrowIfNull(report);
        higherIsBetter ??= static name => !(name.Contains("loss", StringComparison.OrdinalIgnoreCase)
            || name.Contains("perplexity", StringComparison.OrdinalIgnoreCase) || name.Contains("error", StringComparison.OrdinalIgnoreCase));
        var gaps = ImmutableArray.CreateBuilder<SliceMetricGap>();
        foreach (string metric in report.Overall.Keys)
        {
            var values = report.Slices.Where(s => s.Metrics.TryGetValue(metric, out double v) && !double.IsNaN(v)).Select(s => (s.Slice, Value: s.Metrics[metric])).ToList();
            if (values.Count < 2)
            {
                continue;
            }

            var max = values.MaxBy(v => v.Value);
            var min = values.MinBy(v => v.Value);
            bool higher = higherIsBetter(metric);
            var (best, worst) = higher ? (max, min) : (min, max);
            gaps.Add(new SliceMetricGap(metric, higher, best.Slice, best.Value, worst.Slice, worst.Value, max.Value - min.Value));
        }

        return gaps.ToImmutable();
    }

    private static double Spread(GroupRates[] rates, Func<GroupRates, double> rate)
    {
        double[] defined = [.. rates.Select(rate).Where(r => !double.IsNaN(r))];
        return defined.Length < 2 ? double.NaN : defined.Max() - defined.Min();
    }
}

/// <summary>The spread of one slice metric across slices.</summary>
/// <param name="Metric">The metric's name.</param>
/// <param name="HigherIsBetter">Whether a larger value is better (decides which slice is the worst).</param>
/// <param name="BestSlice">The slice the model serves best by this metric.</param>
/// <param name="Best">Its value.</param>
/// <param name="WorstSlice">The slice the model serves worst by this metric.</param>
/// <param name="Worst">Its value.</param>
/// <param name="Gap">Largest minus smallest slice value (≥ 0).</param>
public sealed record SliceMetricGap(string Metric, bool HigherIsBetter, string BestSlice, double Best, string WorstSlice, double Worst, double Gap);

/// <summary>One group's rates for one positive class.</summary>
/// <param name="Group">The group label.</param>
/// <param name="Count">Examples in the group.</param>
/// <param name="Positives">Examples of the group whose true class is the positive class.</param>
/// <param name="SelectionRate">P(ŷ = c | group).</param>
/// <param name="TruePositiveRate">P(ŷ = c | y = c, group); <see cref="double.NaN"/> without positives.</param>
/// <param name="FalsePositiveRate">P(ŷ = c | y ≠ c, group); <see cref="double.NaN"/> without negatives.</param>
public sealed record GroupRates(string Group, long Count, long Positives, double SelectionRate, double TruePositiveRate, double FalsePositiveRate);

/// <summary>The group fairness of one class taken as the positive class (one-vs-rest).</summary>
/// <param name="ClassIndex">The class.</param>
/// <param name="ClassName">Its name (the index as text when no names were given).</param>
/// <param name="Groups">Every group's rates, ordered by group label.</param>
/// <param name="DemographicParityDifference">max − min selection rate over groups.</param>
/// <param name="EqualOpportunityDifference">max − min true-positive rate over groups that have positives.</param>
/// <param name="EqualizedOddsDifference">The larger of the true-positive-rate and false-positive-rate differences.</param>
public sealed record ClassFairness(int ClassIndex, string ClassName, ImmutableArray<GroupRates> Groups, double DemographicParityDifference, double EqualOpportunityDifference, double EqualizedOddsDifference);

/// <summary>Group fairness of a classifier, one entry per class taken as positive.</summary>
/// <param name="Groups">The group labels, ordered.</param>
/// <param name="Classes">One entry per class.</param>
public sealed record GroupFairnessReport(ImmutableArray<string> Groups, ImmutableArray<ClassFairness> Classes)
{
    /// <summary>The entry of a class by name.</summary>
    /// <param name="className">The class's name.</param>
    /// <returns>Its fairness.</returns>
    /// <exception cref="ArgumentException">No class has that name.</exception>
    public ClassFairness this[string className] => Classes.FirstOrDefault(c => c.ClassName == className)
        ?? throw new ArgumentException($"No class '{className}'; the classes are {string.Join(", ", Classes.Select(c => c.ClassName))}.", nameof(className));

    /// <summary>A Markdown table: per class, the three differences and each group's selection rate, TPR and FPR.</summary>
    /// <returns>The Markdown text.</returns>
    public string ToMarkdown()
    {
        var sb = new StringBuilder("## Group fairness (one-vs-rest)\n\n| class | demographic parity Δ | equal opportunity Δ | equalised odds Δ |\n| --- | ---: | ---: | ---: |\n");
        foreach (ClassFairness c in Classes)
        {
            sb.Append(CultureInfo.InvariantCulture, $"| {c.ClassName} | {c.DemographicParityDifference:F3} | {c.EqualOpportunityDifference:F3} | {c.EqualizedOddsDifference:F3} |\n");
        }

        sb.Append("\n| class | group | examples | positives | selection rate | TPR | FPR |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
        foreach (ClassFairness c in Classes)
        {
            foreach (GroupRates g in c.Groups)
            {
                sb.Append(CultureInfo.InvariantCulture, $"| {c.ClassName} | {g.Group} | {g.Count} | {g.Positives} | {g.SelectionRate:F3} | {g.TruePositiveRate:F3} | {g.FalsePositiveRate:F3} |\n");
            }
        }

        return sb.ToString();
    }
}
