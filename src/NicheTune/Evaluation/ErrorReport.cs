using System.Text;

namespace NicheTune.Evaluation;

/// <summary>
/// The result of <see cref="ErrorAnalysis"/>: every example's loss, the confusion matrix and per-class scores, and
/// metrics per slice with their gap to the whole set. <see cref="ToMarkdown"/> renders it for a report or an issue.
/// </summary>
public sealed class ErrorReport
{
    internal ErrorReport(
        IReadOnlyList<ExampleResult> examples,
        double loss,
        double accuracy,
        ClassificationReport? classes,
        IReadOnlyDictionary<string, double> overall,
        IReadOnlyList<SliceResult> slices)
    {
        Examples = examples;
        Loss = loss;
        Accuracy = accuracy;
        Classes = classes;
        Overall = overall;
        Slices = slices;
    }

    /// <summary>Every example in data order (<see cref="ExampleResult.Index"/> equals the position).</summary>
    public IReadOnlyList<ExampleResult> Examples { get; }

    /// <summary>Mean cross-entropy over every target (tokens for language modelling), without label smoothing.</summary>
    public double Loss { get; }

    /// <summary>Share of targets whose arg-max prediction is right.</summary>
    public double Accuracy { get; }

    /// <summary>
    /// Confusion matrix, per-class support / precision / recall / F1 and their averages over the target rows (classes for
    /// classification, tokens for language modelling); <see langword="null"/> when the outputs score more than 4096
    /// classes, where a confusion matrix would not fit.
    /// </summary>
    public ClassificationReport? Classes { get; }

    /// <summary>The slice metrics computed on the whole set: the reference for every slice's gap.</summary>
    public IReadOnlyDictionary<string, double> Overall { get; }

    /// <summary>One entry per slice label, ordered by label (ordinal); empty when no slice function was given.</summary>
    public IReadOnlyList<SliceResult> Slices { get; }

    /// <summary>The examples with the highest loss: where to look first for label noise, missing knowledge or bad data.</summary>
    /// <param name="count">How many to return at most.</param>
    /// <returns>Examples by descending loss, equal losses by index; examples without any target are left out.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative.</exception>
    public IReadOnlyList<ExampleResult> WorstExamples(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        return [.. Examples.Where(e => !double.IsNaN(e.Loss)).OrderByDescending(e => e.Loss).ThenBy(e => e.Index).Take(count)];
    }

    /// <summary>The most frequent (true class, predicted class) confusions; empty when <see cref="Classes"/> is <see langword="null"/>.</summary>
    /// <param name="count">How many pairs to return at most.</param>
    /// <returns>Pairs by descending count, then class indices.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative.</exception>
    public IReadOnlyList<ConfusedPair> MostConfusedPairs(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        return Classes?.MostConfusedPairs(count) ?? [];
    }

    /// <summary>Markdown: summary, worst examples, most confused pairs, per-class table and slice table.</summary>
    /// <param name="worstExamples">Rows of the worst-examples table.</param>
    /// <param name="confusedPairs">Rows of the confused-pairs table.</param>
    /// <param name="maxClassRows">Most rows of the per-class table (the classes with the largest support when there are more).</param>
    /// <returns>The Markdown text.</returns>
    public string ToMarkdown(int worstExamples = 10, int confusedPairs = 10, int maxClassRows = 50)
    {
        var sb = new StringBuilder();
        sb.AppendLine("## Error analysis").AppendLine()
            .Append(Markdown.Integer(Examples.Count)).Append(" examples; loss ").Append(Markdown.Number(Loss))
            .Append(", accuracy ").Append(Markdown.Number(Accuracy)).AppendLine(".").AppendLine();

        sb.AppendLine("### Worst examples").AppendLine();
        bool hasClasses = Examples.Count > 0 && Examples[0].Predicted is not null;
        bool hasSlices = Slices.Count > 0;
        var header = new List<string> { "example", "loss" };
        var align = new List<bool> { true, true };
        if (hasClasses)
        {
            header.AddRange(["target", "predicted"]);
            align.AddRange([false, false]);
        }
        else
        {
            header.AddRange(["targets", "correct"]);
            align.AddRange([true, true]);
        }

        if (hasSlices)
        {
            header.Add("slice");
            align.Add(false);
        }

        Markdown.Table(sb, header, align, WorstExamples(Math.Max(0, worstExamples)).Select(e =>
        {
            var row = new List<string> { Markdown.Integer(e.Index), Markdown.Number(e.Loss) };
            if (hasClasses)
            {
                row.Add(e.Target is { } t ? Name(t) : "-");
                row.Add(e.Predicted is { } p ? Name(p) : "-");
            }
            else
            {
                row.Add(Markdown.Integer(e.TargetCount));
                row.Add(Markdown.Integer(e.CorrectCount));
            }

            if (hasSlices)
            {
                row.Add(e.Slice ?? string.Empty);
            }

            return (IReadOnlyList<string>)row;
        }));

        if (Classes is { } classes)
        {
            sb.AppendLine().AppendLine("### Most confused pairs").AppendLine();
            Markdown.Table(sb, ["target", "predicted as", "count"], [false, false, true],
                classes.MostConfusedPairs(Math.Max(0, confusedPairs)).Select(p => (IReadOnlyList<string>)[p.TrueName, p.PredictedName, Markdown.Integer(p.Count)]));
            sb.AppendLine().AppendLine("### Per class").AppendLine();
            classes.AppendClassTable(sb, maxClassRows);
        }

        if (hasSlices)
        {
            string[] names = [.. Overall.Keys];
            sb.AppendLine().AppendLine("### Slices (gap = slice − whole set)").AppendLine();
            var sliceHeader = new List<string> { "slice", "examples" };
            var sliceAlign = new List<bool> { false, true };
            foreach (string name in names)
            {
                sliceHeader.AddRange([name, "gap"]);
                sliceAlign.AddRange([true, true]);
            }

            IEnumerable<IReadOnlyList<string>> rows = Slices
                .Select(s => (IReadOnlyList<string>)[s.Slice, Markdown.Integer(s.Examples), .. names.SelectMany(n => new[] { Markdown.Number(s.Metrics[n]), Markdown.Signed(s.Gaps[n]) })])
                .Append(["**all**", Markdown.Integer(Examples.Count), .. names.SelectMany(n => new[] { Markdown.Number(Overall[n]), string.Empty })]);
            Markdown.Table(sb, sliceHeader, sliceAlign, rows);
        }

        return sb.ToString();
    }

    private string Name(int index) => Classes is { } c && index < c.ClassCount ? c.ClassName(index) : index.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>One example's outcome in an <see cref="ErrorReport"/>.</summary>
/// <param name="Index">Position of the example in the evaluated data.</param>
/// <param name="Loss">Mean cross-entropy over the example's targets (its one label, or its real next tokens); <see cref="double.NaN"/> when it has none.</param>
/// <param name="TargetCount">Number of targets counted (1 for a classified example, the real next tokens for language modelling).</param>
/// <param name="CorrectCount">How many of them the arg-max prediction got right.</param>
/// <param name="Predicted">The predicted class when the objective yields one row per example; otherwise <see langword="null"/>.</param>
/// <param name="Target">The target class when the objective yields one row per example and it is not ignored; otherwise <see langword="null"/>.</param>
/// <param name="Slice">The example's slice label, or <see langword="null"/> without slices.</param>
public sealed record ExampleResult(int Index, double Loss, long TargetCount, long CorrectCount, int? Predicted, int? Target, string? Slice);

/// <summary>The metrics of one subgroup of the evaluation set and their gaps to the whole set.</summary>
/// <param name="Slice">The slice label.</param>
/// <param name="Examples">Number of examples in the slice.</param>
/// <param name="Metrics">Metric values on the slice, by metric name.</param>
/// <param name="Gaps">Slice value minus whole-set value, by metric name: negative accuracy gaps and positive loss gaps mark slices the model serves worse.</param>
public sealed record SliceResult(string Slice, int Examples, IReadOnlyDictionary<string, double> Metrics, IReadOnlyDictionary<string, double> Gaps);
