using System.Globalization;
using System.Text;
using NicheTune.Augmentation;
using NicheTune.Evaluation;
using NicheTune.Fairness;

namespace NicheTune.Refinement;

/// <summary>
/// A metric the <see cref="PromotionGate"/> compares, computed from a <see cref="ClassificationReport"/> (higher is better),
/// with the largest drop it tolerates. Built-ins: <see cref="Accuracy"/>, <see cref="MacroF1"/>, <see cref="WeightedF1"/>;
/// <see cref="Custom"/> for your own.
/// </summary>
public sealed class PromotionMetric
{
    private readonly Func<ClassificationReport, double> _compute;

    private PromotionMetric(string name, Func<ClassificationReport, double> compute, double tolerance)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(compute);
        if (!(tolerance >= 0) || double.IsInfinity(tolerance))
        {
            throw new ArgumentOutOfRangeException(nameof(tolerance), tolerance, $"The tolerance of '{name}' is the largest drop allowed: use 0 or a small positive number, e.g. 0.01.");
        }

        Name = name;
        _compute = compute;
        Tolerance = tolerance;
    }

    /// <summary>The metric's name in reports (the names <see cref="Metrics"/> uses, e.g. <c>"f1.macro"</c>).</summary>
    public string Name { get; }

    /// <summary>The largest drop (challenger − champion, in the metric's units) that does not block promotion.</summary>
    public double Tolerance { get; }

    /// <summary>Accuracy, named <c>"accuracy"</c>.</summary>
    /// <param name="tolerance">Largest drop allowed, e.g. 0.01 (one point).</param>
    /// <returns>The metric.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="tolerance"/> is negative.</exception>
    public static PromotionMetric Accuracy(double tolerance = 0.01) => new("accuracy", r => r.Accuracy, tolerance);

    /// <summary>Macro-averaged F1, named <c>"f1.macro"</c>: every class counts the same, so a rare class's regression shows.</summary>
    /// <param name="tolerance">Largest drop allowed, e.g. 0.01.</param>
    /// <returns>The metric.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="tolerance"/> is negative.</exception>
    public static PromotionMetric MacroF1(double tolerance = 0.01) => new("f1.macro", r => r.F1(Average.Macro), tolerance);

    /// <summary>Support-weighted F1, named <c>"f1.weighted"</c>.</summary>
    /// <param name="tolerance">Largest drop allowed, e.g. 0.01.</param>
    /// <returns>The metric.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="tolerance"/> is negative.</exception>
    public static PromotionMetric WeightedF1(double tolerance = 0.01) => new("f1.weighted", r => r.F1(Average.Weighted), tolerance);

    /// <summary>A metric of your own over the classification report, higher is better.</summary>
    /// <param name="name">Its name in reports.</param>
    /// <param name="compute">Computes it from a report (of the whole set or of one slice).</param>
    /// <param name="tolerance">Largest drop allowed.</param>
    /// <returns>The metric.</returns>
    /// <exception cref="ArgumentException"><paramref name="name"/> is empty.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="tolerance"/> is negative.</exception>
    public static PromotionMetric Custom(string name, Func<ClassificationReport, double> compute, double tolerance) => new(name, compute, tolerance);

    internal double Compute(ClassificationReport report) => _compute(report);
}

/// <summary>Settings of a <see cref="PromotionGate"/>.</summary>
public sealed class PromotionGateOptions
{
    /// <summary>The metrics compared on the whole set and on every slice, each with its tolerance.</summary>
    /// <value>Accuracy and macro-F1, each tolerating a drop of 0.01.</value>
    public IReadOnlyList<PromotionMetric> Metrics { get; init; } = [PromotionMetric.Accuracy(0.01), PromotionMetric.MacroF1(0.01)];

    /// <summary>
    /// Whether every gold label is also a slice (<c>"label = networking"</c>), compared by that class's recall and F1 (from
    /// the whole set's confusion matrix, so the F1 also counts the examples wrongly given the class): a class the
    /// challenger got worse at blocks it. The metrics of <see cref="Metrics"/> do not suit one-class slices (in them
    /// accuracy is the recall and a macro average mostly counts classes the examples were mistaken for).
    /// </summary>
    /// <value><see langword="true"/>.</value>
    public bool SliceByLabel { get; init; } = true;

    /// <summary>The largest drop of a class's recall or F1 that does not block promotion (<see cref="SliceByLabel"/>).</summary>
    /// <value>0.02.</value>
    public double ClassTolerance { get; init; } = 0.02;

    /// <summary>
    /// Slices of your own: the slice an evaluation example belongs to (e.g. <c>"short"</c>, <c>"source = forum"</c>), or
    /// <see langword="null"/> for none. Together with <see cref="SliceByLabel"/>, an example is in up to two slices.
    /// </summary>
    /// <value><see langword="null"/>: no slices of your own.</value>
    public Func<LabeledText, string?>? SliceOf { get; init; }

    /// <summary>
    /// Slices with fewer examples are reported but do not block promotion: on a handful of examples one flipped answer
    /// moves accuracy by more than any sensible tolerance.
    /// </summary>
    /// <value>1: every slice is gated.</value>
    public int MinimumSliceSize { get; init; } = 1;
}

/// <summary>One metric on one slice, champion against challenger.</summary>
/// <param name="Slice"><c>"all"</c> for the whole evaluation set, else the slice's name.</param>
/// <param name="Examples">Evaluation examples in the slice.</param>
/// <param name="Metric">The metric's name.</param>
/// <param name="Champion">The current model's value.</param>
/// <param name="Challenger">The new model's value.</param>
/// <param name="Tolerance">The largest drop allowed.</param>
/// <param name="Gated">Whether this comparison can block promotion (the slice is large enough).</param>
public sealed record MetricComparison(string Slice, int Examples, string Metric, double Champion, double Challenger, double Tolerance, bool Gated)
{
    /// <summary>Challenger − champion; negative is a regression.</summary>
    public double Change => Challenger - Champion;

    /// <summary>Whether the challenger is worse by more than the tolerance on a gated slice: this blocks promotion.</summary>
    public bool Regressed => Gated && Change < -Tolerance - 1e-12;
}

/// <summary>What a <see cref="PromotionGate"/> decided, and every comparison it made.</summary>
public sealed class PromotionDecision
{
    internal PromotionDecision(IReadOnlyList<MetricComparison> comparisons, ClassificationReport champion, ClassificationReport challenger, BiasReport? bias = null)
    {
        Comparisons = comparisons;
        Regressions = [.. comparisons.Where(c => c.Regressed).OrderBy(c => c.Change + c.Tolerance)];
        Champion = champion;
        Challenger = challenger;
        Bias = bias;
    }

    /// <summary>
    /// Whether the challenger may replace the champion: no gated comparison regressed beyond its tolerance and, when
    /// bias checks are required (<see cref="RequireBiasChecks"/>), the challenger's bias report passed.
    /// </summary>
    public bool Promote => Regressions.Count == 0 && BiasPassed;

    /// <summary>The challenger's bias report when the decision requires it (<see cref="RequireBiasChecks"/>); otherwise null.</summary>
    public BiasReport? Bias { get; }

    private bool BiasPassed => Bias is null || Bias.Passed;

    /// <summary>
    /// The same decision, now also requiring the challenger to pass its bias checks: a model that is more accurate but
    /// flips its prediction when a name or pronoun changes, or treats one group worse beyond the report's thresholds, is
    /// refused, and the summary says which check failed.
    /// </summary>
    /// <param name="challengerBias">The challenger's bias report, built with the thresholds the release must meet.</param>
    /// <returns>A new decision; this one is unchanged.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="challengerBias"/> is null.</exception>
    public PromotionDecision RequireBiasChecks(BiasReport challengerBias)
    {
        ArgumentNullException.ThrowIfNull(challengerBias);
        return new PromotionDecision(Comparisons, Champion, Challenger, challengerBias);
    }

    /// <summary>Every comparison: the whole set first, then the label slices in label order, then your own slices in name order.</summary>
    public IReadOnlyList<MetricComparison> Comparisons { get; }

    /// <summary>The comparisons that block promotion, worst (furthest beyond its tolerance) first; empty when promoted.</summary>
    public IReadOnlyList<MetricComparison> Regressions { get; }

    /// <summary>The champion's classification report on the whole evaluation set.</summary>
    public ClassificationReport Champion { get; }

    /// <summary>The challenger's classification report on the whole evaluation set.</summary>
    public ClassificationReport Challenger { get; }

    /// <summary>One sentence: promoted, or refused and which slice and metric regressed by how much.</summary>
    public string Summary
    {
        get
        {
            string bias = Bias is null ? string.Empty
                : Bias.Passed ? string.Create(CultureInfo.InvariantCulture, $" Bias checks: {Bias.Checks.Count(c => c.Outcome == BiasCheckOutcome.Passed)} passed.")
                : string.Create(CultureInfo.InvariantCulture, $" Bias checks: {Bias.Failures.Length} failed; worst: {Bias.Failures[0]}.");
            if (Regressions.Count == 0)
            {
                MetricComparison first = Comparisons[0];
                string verdict = BiasPassed ? "Promote" : "Refuse";
                return string.Create(CultureInfo.InvariantCulture, $"{verdict}: no regression beyond tolerance on {Comparisons.Select(c => c.Slice).Distinct().Count()} slice(s); {first.Metric} on all {first.Champion:F4} → {first.Challenger:F4} ({Signed(first.Change)}).{bias}");
            }

            MetricComparison worst = Regressions[0];
            return string.Create(CultureInfo.InvariantCulture, $"Refuse: {Regressions.Count} regression(s); worst: slice '{worst.Slice}' ({worst.Examples} examples) {worst.Metric} {worst.Champion:F4} → {worst.Challenger:F4} ({Signed(worst.Change)}, tolerance {worst.Tolerance:F4}).{bias}");
        }
    }

    /// <summary>The decision as Markdown: the summary, the regressions, and the full comparison table.</summary>
    /// <returns>The Markdown text.</returns>
    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        sb.AppendLine("## Champion / challenger").AppendLine();
        sb.AppendLine(Markdown.Cell(Summary)).AppendLine();
        if (Regressions.Count > 0)
        {
            sb.AppendLine("### Regressions beyond tolerance").AppendLine();
            Markdown.Table(sb, ["slice", "examples", "metric", "champion", "challenger", "change", "tolerance"], [false, true, false, true, true, true, true],
                Regressions.Select(Row));
            sb.AppendLine();
        }

        if (Bias is not null && !Bias.Passed)
        {
            sb.AppendLine("### Bias checks that failed").AppendLine();
            foreach (BiasCheck check in Bias.Failures)
            {
                sb.Append("- ").AppendLine(Markdown.Cell(check.ToString()));
            }

            sb.AppendLine();
        }

        sb.AppendLine("### All comparisons").AppendLine();
        Markdown.Table(sb, ["slice", "examples", "metric", "champion", "challenger", "change", "tolerance", "verdict"], [false, true, false, true, true, true, true, false],
            Comparisons.Select(c => (IReadOnlyList<string>)[.. Row(c), c.Regressed ? "**regressed**" : c.Gated ? "ok" : "too small to gate"]));
        return sb.ToString();
    }

    private static IReadOnlyList<string> Row(MetricComparison c)
        => [c.Slice, Markdown.Integer(c.Examples), c.Metric, Markdown.Number(c.Champion), Markdown.Number(c.Challenger), Markdown.Signed(c.Change), Markdown.Number(c.Tolerance)];

    private static string Signed(double value) => Markdown.Signed(value);
}

/// <summary>
/// Champion / challenger: decides whether a re-trained model may replace the one in production by evaluating both on a
/// fixed evaluation set, as a whole and slice by slice (every gold label, and slices of your own), and refusing
/// promotion when any metric on any slice drops by more than its tolerance. A better average that hides a worse class
/// does not pass. Models plug in as prediction delegates (texts → predicted labels), so any model does.
/// </summary>
public sealed class PromotionGate
{
    private readonly LabeledText[] _evaluation;
    private readonly string[] _labels;
    private readonly Dictionary<string, int> _labelIndex;
    private readonly PromotionGateOptions _options;
    private readonly (string Name, int[] Members)[] _slices;
    private readonly int[] _support;

    /// <summary>Creates a gate over a fixed evaluation set.</summary>
    /// <param name="evaluationSet">The curated examples both models are judged on; keep it fixed across rounds.</param>
    /// <param name="labels">The label set, in label-id order.</param>
    /// <param name="options">Metrics, tolerances and slices; defaults when <see langword="null"/>.</param>
    /// <exception cref="ArgumentException">
    /// The evaluation set or the label set is empty, a label repeats, an example's label is not in the label set, the
    /// metrics are empty or repeat a name, or the minimum slice size is below 1.
    /// </exception>
    public PromotionGate(IReadOnlyList<LabeledText> evaluationSet, IReadOnlyList<string> labels, PromotionGateOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(evaluationSet);
        ArgumentNullException.ThrowIfNull(labels);
        _options = options ?? new PromotionGateOptions();
        if (evaluationSet.Count == 0)
        {
            throw new ArgumentException("The evaluation set is empty; give the gate the fixed, labelled examples both models are judged on.", nameof(evaluationSet));
        }

        if (labels.Count < 2 || labels.Distinct(StringComparer.Ordinal).Count() != labels.Count)
        {
            throw new ArgumentException($"The label set has {labels.Count} labels ({string.Join(", ", labels.Take(10))}); give two or more distinct labels in label-id order.", nameof(labels));
        }

        if (_options.Metrics is null || _options.Metrics.Count == 0 || _options.Metrics.Any(m => m is null))
        {
            throw new ArgumentException("Give the gate one or more metrics, e.g. [PromotionMetric.Accuracy(0.01), PromotionMetric.MacroF1(0.01)].", nameof(options));
        }

        if (_options.Metrics.Select(m => m.Name).Distinct(StringComparer.Ordinal).Count() != _options.Metrics.Count)
        {
            throw new ArgumentException($"The gate's metrics repeat a name ({string.Join(", ", _options.Metrics.Select(m => m.Name))}); give each metric once.", nameof(options));
        }

        if (_options.MinimumSliceSize < 1)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"MinimumSliceSize is {_options.MinimumSliceSize}; use 1 (gate every slice) or more."), nameof(options));
        }

        if (!(_options.ClassTolerance >= 0) || double.IsInfinity(_options.ClassTolerance))
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"ClassTolerance is {_options.ClassTolerance}; use 0 or a small positive number, e.g. 0.02."), nameof(options));
        }

        _evaluation = [.. evaluationSet];
        _labels = [.. labels];
        _labelIndex = _labels.Select((l, i) => (l, i)).ToDictionary(p => p.l, p => p.i, StringComparer.Ordinal);
        var members = new SortedDictionary<string, List<int>>(StringComparer.Ordinal);
        for (int i = 0; i < _evaluation.Length; i++)
        {
            LabeledText example = _evaluation[i] ?? throw new ArgumentException($"Evaluation example {i} is null.", nameof(evaluationSet));
            if (!_labelIndex.ContainsKey(example.Label))
            {
                throw new ArgumentException($"Evaluation example {i} has label '{example.Label}', which is not in the label set ({string.Join(", ", _labels)}); add it or fix the example.", nameof(evaluationSet));
            }

            if (_options.SliceOf?.Invoke(example) is { } slice)
            {
                Add(members, slice, i);
            }
        }

        _slices = [.. members.Select(m => (m.Key, m.Value.ToArray()))];
        _support = new int[_labels.Length];
        foreach (LabeledText example in _evaluation)
        {
            _support[_labelIndex[example.Label]]++;
        }
    }

    /// <summary>The fixed evaluation set.</summary>
    public IReadOnlyList<LabeledText> EvaluationSet => _evaluation;

    /// <summary>The slices and their sizes: the label slices in label order (when <see cref="PromotionGateOptions.SliceByLabel"/>), then your own in name order.</summary>
    public IReadOnlyList<(string Slice, int Examples)> Slices
        => [.. (_options.SliceByLabel ? _labels.Select((l, c) => (LabelSlice(l), _support[c])) : []), .. _slices.Select(s => (s.Name, s.Members.Length))];

    /// <summary>Runs both models over the evaluation texts and compares them.</summary>
    /// <param name="champion">The current model: evaluation texts → one predicted label each.</param>
    /// <param name="challenger">The new model, same contract.</param>
    /// <returns>The decision.</returns>
    /// <exception cref="InvalidOperationException">A model returned a different number of predictions than texts.</exception>
    public PromotionDecision Evaluate(Func<IReadOnlyList<string>, IReadOnlyList<string>> champion, Func<IReadOnlyList<string>, IReadOnlyList<string>> challenger)
    {
        ArgumentNullException.ThrowIfNull(champion);
        ArgumentNullException.ThrowIfNull(challenger);
        string[] texts = [.. _evaluation.Select(e => e.Text)];
        return Compare(Run(champion, texts, "champion"), Run(challenger, texts, "challenger"));
    }

    /// <summary>Compares predictions already made on the evaluation set (one per example, in its order).</summary>
    /// <param name="championPredictions">The current model's labels.</param>
    /// <param name="challengerPredictions">The new model's labels.</param>
    /// <returns>The decision. A label outside the label set counts as wrong (a separate "(other)" class in the reports).</returns>
    /// <exception cref="ArgumentException">A list's length differs from the evaluation set's.</exception>
    public PromotionDecision Compare(IReadOnlyList<string> championPredictions, IReadOnlyList<string> challengerPredictions)
    {
        ArgumentNullException.ThrowIfNull(championPredictions);
        ArgumentNullException.ThrowIfNull(challengerPredictions);
        CheckCount(championPredictions, nameof(championPredictions));
        CheckCount(challengerPredictions, nameof(challengerPredictions));
        int[] targets = [.. _evaluation.Select(e => _labelIndex[e.Label])];
        int[] champion = Indices(championPredictions);
        int[] challenger = Indices(challengerPredictions);
        bool other = champion.Concat(challenger).Any(p => p == _labels.Length);
        int classCount = _labels.Length + (other ? 1 : 0);
        string[] names = other ? [.. _labels, "(other)"] : _labels;

        var comparisons = new List<MetricComparison>();
        ClassificationReport championAll = ClassificationReport.FromLabels(targets, champion, classCount, names);
        ClassificationReport challengerAll = ClassificationReport.FromLabels(targets, challenger, classCount, names);
        AddComparisons(comparisons, "all", targets.Length, championAll, challengerAll, gated: true);
        if (_options.SliceByLabel)
        {
            for (int c = 0; c < _labels.Length; c++)
            {
                string slice = LabelSlice(_labels[c]);
                bool gated = _support[c] >= _options.MinimumSliceSize;
                ClassScores a = championAll.Classes[c], b = challengerAll.Classes[c];
                comparisons.Add(new MetricComparison(slice, _support[c], "recall", a.Recall, b.Recall, _options.ClassTolerance, gated));
                comparisons.Add(new MetricComparison(slice, _support[c], "f1", a.F1, b.F1, _options.ClassTolerance, gated));
            }
        }

        foreach ((string name, int[] members) in _slices)
        {
            int[] sliceTargets = [.. members.Select(i => targets[i])];
            ClassificationReport a = ClassificationReport.FromLabels(sliceTargets, [.. members.Select(i => champion[i])], classCount, names);
            ClassificationReport b = ClassificationReport.FromLabels(sliceTargets, [.. members.Select(i => challenger[i])], classCount, names);
            AddComparisons(comparisons, name, members.Length, a, b, members.Length >= _options.MinimumSliceSize);
        }

        return new PromotionDecision(comparisons, championAll, challengerAll);
    }

    private void AddComparisons(List<MetricComparison> comparisons, string slice, int examples, ClassificationReport champion, ClassificationReport challenger, bool gated)
    {
        foreach (PromotionMetric metric in _options.Metrics)
        {
            comparisons.Add(new MetricComparison(slice, examples, metric.Name, metric.Compute(champion), metric.Compute(challenger), metric.Tolerance, gated));
        }
    }

    private int[] Indices(IReadOnlyList<string> predictions)
    {
        var indices = new int[predictions.Count];
        for (int i = 0; i < indices.Length; i++)
        {
            indices[i] = predictions[i] is { } label && _labelIndex.TryGetValue(label, out int index) ? index : _labels.Length;
        }

        return indices;
    }

    private IReadOnlyList<string> Run(Func<IReadOnlyList<string>, IReadOnlyList<string>> model, string[] texts, string which)
    {
        IReadOnlyList<string> predictions = model(texts) ?? throw new InvalidOperationException($"The {which} returned null for {texts.Length} texts; return one label per text.");
        if (predictions.Count != texts.Length)
        {
            throw new InvalidOperationException($"The {which} returned {predictions.Count} predictions for {texts.Length} evaluation texts; return one label per text, in order.");
        }

        return predictions;
    }

    private void CheckCount(IReadOnlyList<string> predictions, string parameter)
    {
        if (predictions.Count != _evaluation.Length)
        {
            throw new ArgumentException($"There are {predictions.Count} predictions for {_evaluation.Length} evaluation examples; give one per example, in order.", parameter);
        }
    }

    private static string LabelSlice(string label) => "label = " + label;

    private static void Add(SortedDictionary<string, List<int>> members, string slice, int index)
    {
        if (!members.TryGetValue(slice, out List<int>? list))
        {
            members[slice] = list = [];
        }

        list.Add(index);
    }
}
