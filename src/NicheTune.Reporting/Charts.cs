using System.Globalization;
using NicheTune.Evaluation;
using ScottPlot;

namespace NicheTune.Reporting;

/// <summary>The report's plots, drawn with ScottPlot into PNG images.</summary>
internal static partial class Charts
{
    private const string ValidationLoss = "validation.loss";

    // Per series: more points than image pixels only cost file size and render time.
    private const int MaxPointsPerSeries = 2000;

    // ScottPlot's default family resolves through fontconfig's "sans" alias, which on minimal Linux images can land on a
    // serif face; name a sans family explicitly when one is installed.
    private static readonly string[] SansFamilies = ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica", "Segoe UI", "Noto Sans", "Open Sans"];
    private static readonly Lazy<string?> SansFont = new(() =>
    {
        var installed = new HashSet<string>(SkiaSharp.SKFontManager.Default.FontFamilies, StringComparer.OrdinalIgnoreCase);
        return SansFamilies.FirstOrDefault(installed.Contains);
    });

    private static readonly Color BestColor = Color.FromHex("#6e7781");

    public static Figure? Loss(FineTuneResult result, HtmlReportOptions options)
    {
        (double[] trainX, double[] trainY) = Series(result.TrainingLoss.Select(r => (r.Step, r.Loss)));
        (double[] validX, double[] validY) = Series(result.Evaluations
            .Where(e => e.Metrics.ContainsKey(ValidationLoss))
            .Select(e => (e.Step, e.Metrics[ValidationLoss])));
        if (trainX.Length == 0 && validX.Length == 0)
        {
            return null;
        }

        using var plot = NewPlot("Loss", "step", "loss");
        if (trainX.Length > 0)
        {
            AddCurve(plot, trainX, trainY, "training", Colors.Category10[0]);
        }

        if (validX.Length > 0)
        {
            AddCurve(plot, validX, validY, "validation", Colors.Category10[1], markers: true);
        }

        MarkBest(plot, result);
        ShowLegendOutside(plot);
        string caption = "Training loss at each logging step and validation loss at each evaluation, on the same axes: a widening gap is over-fitting.";
        return Render(plot, "Loss", caption, options.PlotWidth, options.PlotHeight, options);
    }

    public static IEnumerable<Figure> Metrics(FineTuneResult result, HtmlReportOptions options)
    {
        foreach (string name in MetricNames(result.Evaluations.Select(e => e.Metrics)).Where(n => n != ValidationLoss))
        {
            (double[] xs, double[] ys) = Series(result.Evaluations
                .Where(e => e.Metrics.ContainsKey(name))
                .Select(e => (e.Step, e.Metrics[name])));
            if (xs.Length == 0)
            {
                continue;
            }

            string label = ShortName(name);
            using var plot = NewPlot(label, "step", label);
            AddCurve(plot, xs, ys, "validation " + label, Colors.Category10[2], markers: true);
            MarkBest(plot, result);
            ShowLegendOutside(plot);
            bool monitored = result.MonitoredMetric == name;
            string caption = "Validation " + label + " at each evaluation" + (monitored ? "; the run's monitored metric, whose best step the dashed line marks." : ".");
            yield return Render(plot, label, caption, options.PlotWidth, options.PlotHeight, options);
        }
    }

    public static Figure? LearningRates(FineTuneResult result, HtmlReportOptions options)
    {
        if (!result.LearningRates.IsDefaultOrEmpty)
        {
            int groups = result.LearningRates.Max(r => r.Rates.Length);
            // Groups on the same schedule (e.g. a layer and its no-decay twin) would hide each other: draw one line per
            // distinct curve and name every group that follows it.
            var curves = new List<(double[] X, double[] Y, List<string> Names)>();
            for (int g = 0; g < groups; g++)
            {
                int group = g;
                (double[] xs, double[] ys) = Series(result.LearningRates.Where(r => group < r.Rates.Length).Select(r => (r.Step, r.Rates[group])));
                int same = curves.FindIndex(c => c.X.AsSpan().SequenceEqual(xs) && c.Y.AsSpan().SequenceEqual(ys));
                if (same >= 0)
                {
                    curves[same].Names.Add(GroupName(result, g));
                }
                else
                {
                    curves.Add((xs, ys, [GroupName(result, g)]));
                }
            }

            using var plot = NewPlot("Learning rate per parameter group", "step", "learning rate");
            for (int c = 0; c < curves.Count; c++)
            {
                List<string> names = curves[c].Names;
                string label = names.Count <= 3 ? string.Join(", ", names) : $"{names[0]}, {names[1]} and {names.Count - 2} more";
                var curve = AddCurve(plot, curves[c].X, curves[c].Y, label, Colors.Category10[c % Colors.Category10.Length]);
                // Ten colours, then the same colours dashed, then dotted: layer-wise rates can have dozens of groups.
                curve.LinePattern = (c / Colors.Category10.Length % 3) switch { 0 => LinePattern.Solid, 1 => LinePattern.Dashed, _ => LinePattern.Dotted };
            }

            ShowLegendOutside(plot, curves.Count);
            // A legend at the side lists one group per line; make the plot tall enough that it stays one column.
            int height = curves.Count > 4 ? Math.Max(options.PlotHeight, 110 + (21 * curves.Count)) : options.PlotHeight;
            return Render(plot, "Learning rate", "The learning rate of every optimizer parameter group after each step (recorded with RecordLearningRates()).",
                options.PlotWidth, height, options);
        }

        if (!result.TrainingLoss.IsDefaultOrEmpty)
        {
            (double[] xs, double[] ys) = Series(result.TrainingLoss.Select(r => (r.Step, r.LearningRate)));
            using var plot = NewPlot("Learning rate", "step", "learning rate");
            AddCurve(plot, xs, ys, "base rate", Colors.Category10[0]);
            return Render(plot, "Learning rate", "The base learning rate after the schedule, at each logging step; set RecordLearningRates() to plot every parameter group.",
                options.PlotWidth, options.PlotHeight, options);
        }

        return null;
    }

    public static Figure ConfusionMatrix(ClassificationReport report, HtmlReportOptions options)
    {
        int n = report.ClassCount;
        var share = new double[n, n];
        for (int t = 0; t < n; t++)
        {
            long row = 0;
            for (int p = 0; p < n; p++)
            {
                row += report.Count(t, p);
            }

            for (int p = 0; p < n; p++)
            {
                share[t, p] = row == 0 ? 0 : report.Count(t, p) / (double)row;
            }
        }

        int width = Math.Clamp(320 + (48 * n), 560, Math.Max(options.PlotWidth, 1400));
        string[] names = [.. Enumerable.Range(0, n).Select(report.ClassName)];
        int longest = names.Max(s => s.Length);
        double cell = (width - 220.0) / n;
        bool rotate = longest * 7.5 > cell * 0.9;
        int labelExtra = rotate ? (int)Math.Min(200, longest * 5.5) : 0;
        int height = width - 100 + labelExtra;

        using var plot = NewPlot("Confusion matrix", "predicted", "true");
        var heatmap = plot.Add.Heatmap(share);
        // ScottPlot's Blues runs dark → light; reversed, a full diagonal is the darkest cell, as in scikit-learn's plots.
        heatmap.Colormap = new ScottPlot.Colormaps.Reversed(new ScottPlot.Colormaps.Blues());
        heatmap.ManualRange = new ScottPlot.Range(0, 1);
        var colorBar = plot.Add.ColorBar(heatmap);
        colorBar.Label = "share of the true class";
        // ScottPlot's automatic ticks on a short bar crowd into its label; five percentages read at a glance.
        colorBar.Axis.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            [0, 0.25, 0.5, 0.75, 1], ["0%", "25%", "50%", "75%", "100%"]);

        if (n <= options.MaxAnnotatedClasses)
        {
            float fontSize = (float)Math.Clamp(cell * 0.28, 9, 20);
            for (int t = 0; t < n; t++)
            {
                for (int p = 0; p < n; p++)
                {
                    Color fill = heatmap.Colormap.GetColor(share[t, p]);
                    double luminance = ((0.299 * fill.Red) + (0.587 * fill.Green) + (0.114 * fill.Blue)) / 255.0;
                    var text = plot.Add.Text(report.Count(t, p).ToString(CultureInfo.InvariantCulture), p, n - 1 - t);
                    text.LabelAlignment = Alignment.MiddleCenter;
                    text.LabelFontSize = fontSize;
                    text.LabelBold = t == p;
                    text.LabelFontColor = luminance < 0.5 ? Colors.White : Colors.Black;
                }
            }
        }

        // At most ~50 names per axis stay legible; beyond that every k-th class is named.
        int every = Math.Max(1, (int)Math.Ceiling(n / 50.0));
        int[] ticks = [.. Enumerable.Range(0, n).Where(i => i % every == 0)];
        plot.Axes.Bottom.SetTicks([.. ticks.Select(i => (double)i)], [.. ticks.Select(i => names[i])]);
        plot.Axes.Left.SetTicks([.. ticks.Select(i => (double)(n - 1 - i))], [.. ticks.Select(i => names[i])]);
        plot.Axes.Bottom.TickLabelStyle.FontSize = 13;
        plot.Axes.Left.TickLabelStyle.FontSize = 13;
        if (rotate)
        {
            plot.Axes.Bottom.TickLabelStyle.Rotation = 45;
            plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
            plot.Axes.Bottom.TickLabelStyle.OffsetY = 6;
            plot.Axes.Bottom.MinimumSize = labelExtra + 30;
        }

        plot.HideGrid();
        plot.Axes.SetLimits(-0.5, n - 0.5, -0.5, n - 0.5);
        string caption = "Rows: true class; columns: predicted class. Colour: share of the row (recall on the diagonal)"
            + (n <= options.MaxAnnotatedClasses ? "; numbers: counts." : ".");
        return Render(plot, "Confusion matrix", caption, width, height, options);
    }

    public static Figure? Reliability(CalibrationReport report, HtmlReportOptions options)
    {
        CalibrationBin[] bins = [.. report.Bins.Where(b => b.Count > 0)];
        if (bins.Length == 0)
        {
            return null;
        }

        using var plot = NewPlot("Reliability diagram", "confidence", "accuracy");
        var bars = bins.Select(b => new Bar
        {
            Position = b.Lower == b.Upper ? b.Upper : (b.Lower + b.Upper) / 2,
            Value = b.Accuracy,
            Size = b.Lower == b.Upper ? 0.02 : (b.Upper - b.Lower) * 0.92,
            FillColor = Colors.Category10[0].WithAlpha(0.75),
            LineWidth = 0,
        }).ToArray();
        var barPlot = plot.Add.Bars(bars);
        barPlot.LegendText = "accuracy per bin";
        var diagonal = plot.Add.Line(0, 0, 1, 1);
        diagonal.LinePattern = LinePattern.Dashed;
        diagonal.LineColor = BestColor;
        diagonal.LineWidth = 1.5f;
        diagonal.LegendText = "perfect calibration";
        double[] confidence = [.. bins.Select(b => b.MeanConfidence)];
        double[] accuracy = [.. bins.Select(b => b.Accuracy)];
        var points = plot.Add.ScatterPoints(confidence, accuracy, Colors.Category10[1]);
        points.MarkerSize = 7;
        points.LegendText = "(mean confidence, accuracy)";
        plot.Axes.SetLimits(0, 1.02, 0, 1.05);
        ShowLegendOutside(plot);
        string caption = string.Create(CultureInfo.InvariantCulture,
            $"Predictions grouped by confidence; bars below the diagonal mean over-confidence. ECE {report.ExpectedCalibrationError:F4}, MCE {report.MaxCalibrationError:F4} over {report.Count} predictions.");
        // Confidence and accuracy share a scale: a near-square plot keeps the diagonal at 45°.
        return Render(plot, "Reliability diagram", caption, options.PlotWidth, Math.Max(options.PlotHeight, (int)(options.PlotWidth * 0.85)), options);
    }

    internal static string[] MetricNames(IEnumerable<IReadOnlyDictionary<string, double>> records) => ResultMarkdown.MetricNames(records);

    internal static string ShortName(string metric) => ResultMarkdown.ShortName(metric);

    internal static string GroupName(FineTuneResult result, int group) => ResultMarkdown.GroupName(result, group);

    private static (double[] X, double[] Y) Series(IEnumerable<(long Step, double Value)> points)
    {
        var all = points.Where(p => double.IsFinite(p.Value)).ToList();
        if (all.Count > MaxPointsPerSeries)
        {
            double stride = (all.Count - 1) / (double)(MaxPointsPerSeries - 1);
            all = [.. Enumerable.Range(0, MaxPointsPerSeries).Select(i => all[(int)Math.Round(i * stride)])];
        }

        return ([.. all.Select(p => (double)p.Step)], [.. all.Select(p => p.Value)]);
    }

    private static ScottPlot.Plottables.Scatter AddCurve(Plot plot, double[] xs, double[] ys, string label, Color color, bool markers = false)
    {
        var scatter = plot.Add.Scatter(xs, ys, color);
        scatter.LegendText = label;
        scatter.LineWidth = 2;
        // A handful of evaluations reads better as points joined by lines; a long per-step series as a plain line.
        scatter.MarkerSize = markers || xs.Length <= 30 ? 6 : 0;
        return scatter;
    }

    /// <summary>
    /// Outside the axes, a legend never hides a curve, however the curve runs: below for a few entries, at the right
    /// for many (one per line, so a long list of layer groups grows down the side instead of overflowing the width).
    /// </summary>
    private static void ShowLegendOutside(Plot plot, int entries = 3)
    {
        plot.ShowLegend(entries > 4 ? Edge.Right : Edge.Bottom);
    }

    private static void MarkBest(Plot plot, FineTuneResult result)
    {
        if (result.BestStep is { } best)
        {
            var line = plot.Add.VerticalLine(best, 1.5f, BestColor, LinePattern.Dashed);
            line.LegendText = "best step " + best.ToString(CultureInfo.InvariantCulture);
        }
    }

    private static Plot NewPlot(string title, string xLabel, string yLabel)
    {
        var plot = new Plot();
        plot.Title(title, 16);
        plot.XLabel(xLabel, 13);
        plot.YLabel(yLabel, 13);
        return plot;
    }

    private static Figure Render(Plot plot, string title, string caption, int width, int height, HtmlReportOptions options)
    {
        if (SansFont.Value is { } font)
        {
            plot.Font.Set(font);
        }

        plot.Axes.Title.Label.Bold = true;

        plot.ScaleFactor = options.PixelDensity;
        int pixelWidth = (int)Math.Round(width * options.PixelDensity);
        int pixelHeight = (int)Math.Round(height * options.PixelDensity);
        byte[] png = plot.GetImageBytes(pixelWidth, pixelHeight, ImageFormat.Png);
        return new Figure(title, caption, png, width, height);
    }
}
