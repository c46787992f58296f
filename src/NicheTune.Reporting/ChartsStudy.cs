using System.Globalization;
using NicheTune.Tuning;
using ScottPlot;

namespace NicheTune.Reporting;

/// <summary>The study report's plots.</summary>
internal static partial class Charts
{
    private static readonly Color PrunedColor = Color.FromHex("#afb8c1");

    public static Figure? StudyHistory(IReadOnlyList<FrozenTrial> trials, StudyDirection direction, HtmlReportOptions options)
    {
        var complete = trials.Where(t => t.State == TrialState.Complete && t.Values.Length == 1 && double.IsFinite(t.Values[0])).ToList();
        if (complete.Count == 0)
        {
            return null;
        }

        using var plot = NewPlot("Optimisation history", "trial", "objective value");
        var pruned = trials.Where(t => t.State == TrialState.Pruned && t.Values.Length == 1 && double.IsFinite(t.Values[0])).ToList();
        if (pruned.Count > 0)
        {
            var points = plot.Add.ScatterPoints(pruned.Select(t => (double)t.Number).ToArray(), pruned.Select(t => t.Values[0]).ToArray(), PrunedColor);
            points.LegendText = "pruned (last reported value)";
            points.MarkerSize = 6;
        }

        var values = plot.Add.ScatterPoints(complete.Select(t => (double)t.Number).ToArray(), complete.Select(t => t.Values[0]).ToArray(), Colors.Category10[0]);
        values.LegendText = "complete";
        values.MarkerSize = 7;
        double sign = direction == StudyDirection.Maximize ? -1 : 1;
        double best = double.NaN;
        var bestX = new List<double>();
        var bestY = new List<double>();
        foreach (FrozenTrial t in complete)
        {
            if (double.IsNaN(best) || sign * t.Values[0] < sign * best)
            {
                best = t.Values[0];
            }

            bestX.Add(t.Number);
            bestY.Add(best);
        }

        var line = plot.Add.ScatterLine(bestX.ToArray(), bestY.ToArray(), Colors.Category10[3]);
        line.LineWidth = 2;
        line.LegendText = "best so far";
        ShowLegendOutside(plot);
        return Render(plot, "Optimisation history", "Each complete trial's value by trial number, pruned trials at their last reported value, and the best value so far.", options.PlotWidth, options.PlotHeight, options);
    }

    public static Figure? IntermediateValues(IReadOnlyList<FrozenTrial> trials, HtmlReportOptions options)
    {
        var reporting = trials.Where(t => t.IntermediateValues.Count > 0).ToList();
        if (reporting.Count == 0)
        {
            return null;
        }

        using var plot = NewPlot("Intermediate values", "step", "reported value");
        foreach (FrozenTrial t in reporting)
        {
            double[] xs = [.. t.IntermediateValues.Keys.Select(k => (double)k)];
            double[] ys = [.. t.IntermediateValues.Values];
            var curve = plot.Add.Scatter(xs, ys, t.State == TrialState.Pruned ? PrunedColor : Colors.Category10[0]);
            curve.LineWidth = 1.5f;
            curve.MarkerSize = xs.Length <= 30 ? 4 : 0;
        }

        return Render(plot, "Intermediate values", "What every trial reported as it trained; grey curves were pruned, blue ran to the end.", options.PlotWidth, options.PlotHeight, options);
    }

    public static IEnumerable<Figure> ParameterSlices(IReadOnlyList<FrozenTrial> trials, HtmlReportOptions options)
    {
        var complete = trials.Where(t => t.State == TrialState.Complete && t.Values.Length >= 1 && double.IsFinite(t.Values[0])).ToList();
        foreach (string name in complete.SelectMany(t => t.Distributions.Keys).Distinct().Order(StringComparer.Ordinal))
        {
            var having = complete.Where(t => t.Distributions.ContainsKey(name)).ToList();
            ParameterDistribution distribution = having[^1].Distributions[name];
            bool log = distribution is FloatDistribution { Log: true } or IntDistribution { Log: true };
            double[] xs = [.. having.Select(t => log ? Math.Log10(t.InternalParameters[name]) : t.InternalParameters[name])];
            double[] ys = [.. having.Select(t => t.Values[0])];
            using var plot = NewPlot(name, log ? $"log10({name})" : name, "objective value");
            var points = plot.Add.ScatterPoints(xs, ys, Colors.Category10[0]);
            points.MarkerSize = 7;
            if (distribution is CategoricalDistribution categorical)
            {
                plot.Axes.Bottom.SetTicks([.. Enumerable.Range(0, categorical.Choices.Length).Select(i => (double)i)], [.. categorical.Choices]);
            }

            string caption = string.Create(CultureInfo.InvariantCulture, $"Objective value against {name} ({distribution.Describe()}) over {having.Count} complete trials.");
            yield return Render(plot, name, caption, options.PlotWidth, options.PlotHeight, options);
        }
    }

    public static Figure? ParetoPlot(IReadOnlyList<FrozenTrial> trials, IReadOnlyList<FrozenTrial> front, HtmlReportOptions options)
    {
        var complete = trials.Where(t => t.State == TrialState.Complete && t.Values.Length >= 2).ToList();
        if (complete.Count == 0)
        {
            return null;
        }

        using var plot = NewPlot("Objectives", "objective 0", "objective 1");
        var all = plot.Add.ScatterPoints(complete.Select(t => t.Values[0]).ToArray(), complete.Select(t => t.Values[1]).ToArray(), PrunedColor);
        all.LegendText = "trials";
        all.MarkerSize = 6;
        var pareto = plot.Add.ScatterPoints(front.Select(t => t.Values[0]).ToArray(), front.Select(t => t.Values[1]).ToArray(), Colors.Category10[3]);
        pareto.LegendText = "Pareto front";
        pareto.MarkerSize = 8;
        ShowLegendOutside(plot);
        return Render(plot, "Objectives", "The first two objectives of every complete trial; red points are not dominated by any other trial.", options.PlotWidth, options.PlotHeight, options);
    }
}
