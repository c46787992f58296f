using System.Globalization;
using System.Text;

namespace NicheTune.Tuning;

/// <summary>Renders a study as Markdown: docs-ready tables.</summary>
internal static class StudyMarkdown
{
    public static string Render(Study study, IReadOnlyList<FrozenTrial> trials, int maxTrialRows)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTrialRows, 1);
        var md = new StringBuilder();
        string directions = string.Join(", ", study.Directions.Select(d => d.ToString().ToLowerInvariant()));
        md.AppendLine(CultureInfo.InvariantCulture, $"## Study `{study.Name}`").AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Objective: {directions} · sampler: {Describe(study.Sampler)} · pruner: {Describe(study.Pruner)} · trials: {trials.Count} "
            + $"({Count(trials, TrialState.Complete)} complete, {Count(trials, TrialState.Pruned)} pruned, {Count(trials, TrialState.Failed)} failed, {Count(trials, TrialState.Running)} running).").AppendLine();

        var names = trials.SelectMany(t => t.Distributions.Keys).Distinct().Order(StringComparer.Ordinal).ToList();
        var complete = trials.Where(t => t.State == TrialState.Complete && t.Values.Length == study.Directions.Length).ToList();
        if (complete.Count == 0)
        {
            md.AppendLine("No trial has completed yet.").AppendLine();
        }
        else if (study.Directions.Length == 1)
        {
            FrozenTrial best = study.BestTrial;
            md.AppendLine("### Best trial").AppendLine();
            md.AppendLine("| trial | value | " + string.Join(" | ", best.Distributions.Keys.Order(StringComparer.Ordinal)) + " |");
            md.AppendLine("| ---: | ---: | " + string.Join(" | ", best.Distributions.Keys.Select(_ => "---:")) + " |");
            string bestParameters = string.Join(" | ", best.Distributions.Keys.Order(StringComparer.Ordinal).Select(n => Parameter(best, n)));
            md.AppendLine(CultureInfo.InvariantCulture, $"| {best.Number} | {Number(best.Values[0])} | {bestParameters} |");
            md.AppendLine();
        }
        else
        {
            md.AppendLine("### Pareto front").AppendLine();
            AppendTable(md, study.ParetoFront, names, study.Directions.Length);
        }

        md.AppendLine("### Trials").AppendLine();
        IEnumerable<FrozenTrial> rows = trials;
        if (trials.Count > maxTrialRows)
        {
            double sign = study.Directions.Length == 1 && study.Directions[0] == StudyDirection.Maximize ? -1 : 1;
            rows = trials.OrderBy(t => t.State == TrialState.Complete ? 0 : 1).ThenBy(t => t.Values.Length > 0 ? sign * t.Values[0] : double.PositiveInfinity)
                .Take(maxTrialRows).OrderBy(t => t.Number);
            md.AppendLine(CultureInfo.InvariantCulture, $"The best {maxTrialRows} of {trials.Count} trials.").AppendLine();
        }

        AppendTable(md, [.. rows], names, study.Directions.Length);

        if (study.Directions.Length == 1 && complete.Count > 0)
        {
            md.AppendLine("### Optimisation history").AppendLine();
            md.AppendLine("| trial | state | value | best so far |");
            md.AppendLine("| ---: | --- | ---: | ---: |");
            double sign = study.Directions[0] == StudyDirection.Maximize ? -1 : 1;
            double? best = null;
            foreach (FrozenTrial t in trials.Where(t => t.State is TrialState.Complete or TrialState.Pruned))
            {
                if (t.State == TrialState.Complete && (best is null || sign * t.Values[0] < sign * best.Value))
                {
                    best = t.Values[0];
                }

                md.AppendLine(CultureInfo.InvariantCulture, $"| {t.Number} | {State(t.State)} | {(t.Values.Length > 0 ? Number(t.Values[0]) : "")} | {(best is { } b ? Number(b) : "")} |");
            }

            md.AppendLine();
        }

        var failed = trials.Where(t => t.State == TrialState.Failed && t.Error is not null).ToList();
        if (failed.Count > 0)
        {
            md.AppendLine("### Failures").AppendLine();
            foreach (FrozenTrial t in failed.Take(20))
            {
                md.AppendLine(CultureInfo.InvariantCulture, $"- trial {t.Number}: {FirstLine(t.Error!)}");
            }

            md.AppendLine();
        }

        return md.ToString();
    }

    internal static string Number(double value)
        => double.IsFinite(value) && value != 0 && (Math.Abs(value) < 1e-3 || Math.Abs(value) >= 1e6)
            ? value.ToString("0.###e+0", CultureInfo.InvariantCulture)
            : value.ToString("0.####", CultureInfo.InvariantCulture);

    internal static string Parameter(FrozenTrial trial, string name)
        => trial.Distributions.TryGetValue(name, out ParameterDistribution? d)
            ? d.ToExternal(trial.InternalParameters[name]) switch
            {
                double v => Number(v),
                object o => Convert.ToString(o, CultureInfo.InvariantCulture)!.Replace("|", "\\|", StringComparison.Ordinal),
            }
            : "—";

    internal static string State(TrialState state) => state.ToString().ToLowerInvariant();

    private static void AppendTable(StringBuilder md, IReadOnlyList<FrozenTrial> trials, List<string> names, int objectives)
    {
        string valueHeader = objectives == 1 ? "value" : string.Join(" | ", Enumerable.Range(0, objectives).Select(i => $"value {i}"));
        md.AppendLine("| trial | state | " + valueHeader + " | " + string.Join(" | ", names.Append("duration")) + " |");
        md.AppendLine("| ---: | --- | " + string.Join(" | ", Enumerable.Repeat("---:", objectives + names.Count + 1)) + " |");
        foreach (FrozenTrial t in trials)
        {
            IEnumerable<string> values = Enumerable.Range(0, objectives).Select(i => i < t.Values.Length ? Number(t.Values[i]) : "");
            string cells = string.Join(" | ", values.Concat(names.Select(n => Parameter(t, n))).Append(t.Duration is { } d ? string.Create(CultureInfo.InvariantCulture, $"{d.TotalSeconds:0.0} s") : ""));
            md.AppendLine(CultureInfo.InvariantCulture, $"| {t.Number} | {State(t.State)} | {cells} |");
        }

        md.AppendLine();
    }

    private static int Count(IReadOnlyList<FrozenTrial> trials, TrialState state) => trials.Count(t => t.State == state);

    private static string Describe(object component) => component.GetType().Name.Replace("Sampler", "", StringComparison.Ordinal).Replace("Pruner", "", StringComparison.Ordinal) switch
    {
        "" => component.GetType().Name,
        "Nop" => "none",
        string name => name,
    };

    private static string FirstLine(string text)
    {
        int end = text.IndexOf('\n', StringComparison.Ordinal);
        return (end < 0 ? text : text[..end]).Trim().Replace("|", "\\|", StringComparison.Ordinal);
    }
}
