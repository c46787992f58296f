using System.Globalization;
using System.Text;
using NicheTune.Evaluation;
using NicheTune.Training;

namespace NicheTune.Reporting;

/// <summary>
/// Renders a <see cref="FineTuneResult"/> as Markdown for a pull request, an issue, a model card or a notebook: the
/// run summary, the final metrics, one row per epoch and per evaluation, and the training-loss log. Lives in the core
/// package so that a text report needs no plotting dependency; the HTML report with plots is in
/// <c>NicheTune.Reporting</c>.
/// </summary>
public static class ResultMarkdown
{
    private const string ValidationPrefix = "validation.";

    /// <summary>Renders the run as Markdown (headings from level 2 down, so it can be pasted under a document's title).</summary>
    /// <param name="result">The run to describe.</param>
    /// <param name="title">Text of the level-2 heading.</param>
    /// <param name="maxLossRows">
    /// Most rows of the training-loss log: beyond it, rows are picked evenly over the run, always keeping the first and
    /// the last, so long runs stay readable.
    /// </param>
    /// <param name="maxEvaluationRows">Most rows of the evaluations table, picked the same way, always keeping the best step.</param>
    /// <returns>The Markdown text.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="result"/> or <paramref name="title"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxLossRows"/> or <paramref name="maxEvaluationRows"/> is below 2.</exception>
    public static string ToMarkdown(this FineTuneResult result, string title = "Fine-tuning run", int maxLossRows = 50, int maxEvaluationRows = 200)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(title);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLossRows, 2);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxEvaluationRows, 2);

        var sb = new StringBuilder();
        sb.Append("## ").AppendLine(Markdown.Cell(title)).AppendLine();
        AppendSummary(sb, result);
        AppendFinalMetrics(sb, result);
        AppendEpochs(sb, result);
        AppendEvaluations(sb, result, maxEvaluationRows);
        AppendLearningRates(sb, result);
        AppendLossLog(sb, result, maxLossRows);
        return sb.ToString();
    }

    /// <summary>"12.3 s" under a minute, "1:02:03" beyond: how a person reads a duration.</summary>
    internal static string Duration(TimeSpan time)
        => time.TotalSeconds < 60
            ? time.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + " s"
            : ((long)time.TotalHours).ToString(CultureInfo.InvariantCulture) + time.ToString(@"\:mm\:ss", CultureInfo.InvariantCulture);

    /// <summary>Learning rates span 1e-6 … 1: four significant digits instead of four decimals, small ones as <c>2e-5</c>.</summary>
    internal static string Rate(double value)
        => double.IsNaN(value) ? "n/a"
        : value != 0 && Math.Abs(value) < 1e-3 ? value.ToString("0.###e+0", CultureInfo.InvariantCulture)
        : value.ToString("G4", CultureInfo.InvariantCulture);

    /// <summary>
    /// Indices of at most <paramref name="max"/> of <paramref name="count"/> rows (3 when <paramref name="max"/> is 2 and
    /// <paramref name="keep"/> is inside), evenly spread, with the first, the last and <paramref name="keep"/> (when in
    /// range) always included, in ascending order.
    /// </summary>
    internal static IReadOnlyList<int> Sample(int count, int max, int keep = -1)
    {
        if (count <= max)
        {
            return [.. Enumerable.Range(0, count)];
        }

        var picked = new SortedSet<int> { 0, count - 1 };
        if (keep >= 0 && keep < count)
        {
            picked.Add(keep);
        }

        int slots = max - picked.Count;
        for (int i = 1; i <= slots; i++)
        {
            picked.Add((int)Math.Round(i * (count - 1) / (double)(slots + 1)));
        }

        return [.. picked];
    }

    private static void AppendSummary(StringBuilder sb, FineTuneResult result)
    {
        sb.AppendLine("### Summary").AppendLine();
        var rows = new List<IReadOnlyList<string>>
        {
            new[] { "steps", Markdown.Integer(result.Steps) },
            new[] { "epochs finished", Markdown.Integer(result.Epochs.Length) },
        };
        if (result.SkippedSteps > 0)
        {
            rows.Add(["skipped steps (non-finite gradient)", Markdown.Integer(result.SkippedSteps)]);
        }

        rows.Add(["stop reason", StopText(result.StopReason) + (result.StopMessage is { } message ? ": " + message : string.Empty)]);
        rows.Add(["wall time", Duration(result.WallTime)]);
        rows.Add(["throughput", $"{Markdown.Number(result.ExamplesPerSecond, 1)} examples/s, {Markdown.Number(result.TokensPerSecond, 0)} tokens/s"]);
        if (result.MonitoredMetric is { } monitored)
        {
            rows.Add(["monitored metric", monitored]);
        }

        if (result.BestMetric is { } best)
        {
            rows.Add(["best value", Markdown.Number(best)]);
        }

        if (result.BestStep is { } bestStep)
        {
            rows.Add(["best step", Markdown.Integer(bestStep)]);
        }

        rows.Add(["restored best weights", result.RestoredBestWeights ? "yes" : "no"]);
        rows.Add(["averaged weights (SWA/EMA)", result.AveragedWeights ? "yes" : "no"]);
        if (result.ParameterGroups.Length > 0)
        {
            rows.Add(["parameter groups", Markdown.Integer(result.ParameterGroups.Length)]);
        }

        if (result.LastCheckpoint is { } checkpoint)
        {
            rows.Add(["last checkpoint", checkpoint]);
        }

        Markdown.Table(sb, ["field", "value"], [false, false], rows);
        sb.AppendLine();
    }

    private static void AppendFinalMetrics(StringBuilder sb, FineTuneResult result)
    {
        if (result.FinalMetrics.Count == 0)
        {
            return;
        }

        sb.AppendLine("### Final metrics").AppendLine();
        if (result.RestoredBestWeights || result.AveragedWeights)
        {
            sb.AppendLine(result.AveragedWeights ? "Of the averaged weights." : "Of the restored best weights.").AppendLine();
        }

        Markdown.Table(sb, ["metric", "value"], [false, true],
            result.FinalMetrics.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (IReadOnlyList<string>)[kv.Key, Markdown.Number(kv.Value)]));
        sb.AppendLine();
    }

    private static void AppendEpochs(StringBuilder sb, FineTuneResult result)
    {
        if (result.Epochs.IsDefaultOrEmpty)
        {
            return;
        }

        string[] names = MetricNames(result.Epochs.Select(e => e.Validation));
        sb.AppendLine("### Epochs").AppendLine();
        Markdown.Table(
            sb,
            ["epoch", "step", "train loss", .. names.Select(ShortName)],
            [true, true, true, .. names.Select(_ => true)],
            result.Epochs.Select(e => (IReadOnlyList<string>)[
                Markdown.Integer(e.Epoch), Markdown.Integer(e.Step), Markdown.Number(e.TrainLoss), .. names.Select(n => Value(e.Validation, n))]));
        sb.AppendLine();
    }

    private static void AppendEvaluations(StringBuilder sb, FineTuneResult result, int maxRows)
    {
        if (result.Evaluations.IsDefaultOrEmpty)
        {
            return;
        }

        string[] names = MetricNames(result.Evaluations.Select(e => e.Metrics));
        int best = -1;
        for (int i = 0; i < result.Evaluations.Length && result.BestStep is { } bestStep; i++)
        {
            if (result.Evaluations[i].Step == bestStep)
            {
                best = i;
                break;
            }
        }

        IReadOnlyList<int> shown = Sample(result.Evaluations.Length, maxRows, best);
        sb.AppendLine("### Evaluations").AppendLine();
        if (shown.Count < result.Evaluations.Length)
        {
            sb.Append(Markdown.Integer(shown.Count)).Append(" of ").Append(Markdown.Integer(result.Evaluations.Length)).AppendLine(" evaluations, evenly spread; the best is kept.").AppendLine();
        }

        Markdown.Table(
            sb,
            ["step", "epoch", "elapsed", .. names.Select(ShortName)],
            [true, true, true, .. names.Select(_ => true)],
            shown.Select(i => result.Evaluations[i]).Select(e => (IReadOnlyList<string>)[
                Markdown.Integer(e.Step) + (e.Step == result.BestStep ? " (best)" : string.Empty),
                Markdown.Integer(e.Epoch), Duration(e.Elapsed), .. names.Select(n => Value(e.Metrics, n))]));
        sb.AppendLine();
    }

    private static void AppendLearningRates(StringBuilder sb, FineTuneResult result)
    {
        if (result.LearningRates.IsDefaultOrEmpty)
        {
            return;
        }

        int groups = result.LearningRates.Max(r => r.Rates.Length);
        sb.AppendLine("### Learning rates").AppendLine();
        var rows = new List<IReadOnlyList<string>>(groups);
        for (int g = 0; g < groups; g++)
        {
            LearningRateRecord[] steps = [.. result.LearningRates.Where(r => g < r.Rates.Length)];
            rows.Add([
                GroupName(result, g), Markdown.Integer(steps[0].Step), Rate(steps[0].Rates[g]),
                Rate(steps.Max(r => r.Rates[g])), Rate(steps[^1].Rates[g])]);
        }

        Markdown.Table(sb, ["group", "from step", "first", "peak", "last"], [false, true, true, true, true], rows);
        sb.AppendLine();
    }

    private static void AppendLossLog(StringBuilder sb, FineTuneResult result, int maxRows)
    {
        if (result.TrainingLoss.IsDefaultOrEmpty)
        {
            return;
        }

        IReadOnlyList<int> shown = Sample(result.TrainingLoss.Length, maxRows);
        sb.AppendLine("### Training loss").AppendLine();
        if (shown.Count < result.TrainingLoss.Length)
        {
            sb.Append(Markdown.Integer(shown.Count)).Append(" of ").Append(Markdown.Integer(result.TrainingLoss.Length)).AppendLine(" logged steps, evenly spread.").AppendLine();
        }

        Markdown.Table(sb, ["step", "loss", "learning rate"], [true, true, true],
            shown.Select(i => result.TrainingLoss[i]).Select(r => (IReadOnlyList<string>)[Markdown.Integer(r.Step), Markdown.Number(r.Loss), Rate(r.LearningRate)]));
    }

    internal static string GroupName(FineTuneResult result, int group)
        => group < result.ParameterGroups.Length ? result.ParameterGroups[group] : "group " + group.ToString(CultureInfo.InvariantCulture);

    internal static string StopText(StopReason reason) => reason switch
    {
        StopReason.Completed => "completed",
        StopReason.EarlyStopped => "early stopped",
        StopReason.StoppedByCallback => "stopped by a callback",
        _ => reason.ToString(),
    };

    /// <summary>Every metric name, <c>validation.loss</c> first, the others in ordinal order (evaluation dictionaries promise no order).</summary>
    internal static string[] MetricNames(IEnumerable<IReadOnlyDictionary<string, double>> records)
    {
        var names = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (IReadOnlyDictionary<string, double> metrics in records)
        {
            foreach (string name in metrics.Keys)
            {
                if (seen.Add(name))
                {
                    names.Add(name);
                }
            }
        }

        bool hasLoss = names.Remove(ValidationPrefix + "loss");
        names.Sort(StringComparer.Ordinal);
        if (hasLoss)
        {
            names.Insert(0, ValidationPrefix + "loss");
        }

        return [.. names];
    }

    /// <summary>Column headings drop the common <c>validation.</c> prefix: the section already says so.</summary>
    internal static string ShortName(string metric)
        => metric.StartsWith(ValidationPrefix, StringComparison.Ordinal) && metric.Length > ValidationPrefix.Length ? metric[ValidationPrefix.Length..] : metric;

    private static string Value(IReadOnlyDictionary<string, double> metrics, string name)
        => metrics.TryGetValue(name, out double value) ? Markdown.Number(value) : "-";
}
