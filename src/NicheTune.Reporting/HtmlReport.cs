using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Text;
using NicheTune.Evaluation;
using NicheTune.Training;

namespace NicheTune.Reporting;

/// <summary>
/// Renders a <see cref="FineTuneResult"/> as one self-contained HTML page that a person would rather look at than
/// read: the run summary, the loss curve (training and validation on the same axes), one curve per validation metric,
/// the learning rate of every parameter group, and, when the options carry them, a confusion-matrix heat map, a
/// reliability diagram and the error analysis; tables for the final metrics and the epochs. Plots are drawn by
/// ScottPlot and embedded as PNG, the styles are inline: the file opens offline and can be attached to an issue or
/// archived next to a checkpoint.
/// </summary>
public static class HtmlReport
{
    internal const string Style = """
        :root { --fg: #1f2328; --muted: #59636e; --border: #d1d9e0; --panel: #f6f8fa; --accent: #0969da; }
        * { box-sizing: border-box; }
        body { margin: 0; color: var(--fg); background: #fff; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", Roboto, "Helvetica Neue", Arial, sans-serif; }
        main { max-width: 1240px; margin: 0 auto; padding: 24px 32px 48px; }
        h1 { font-size: 1.9rem; margin: 0 0 4px; }
        h2 { font-size: 1.35rem; margin: 36px 0 12px; padding-bottom: 4px; border-bottom: 1px solid var(--border); }
        h3 { font-size: 1.05rem; margin: 20px 0 8px; }
        p { margin: 6px 0 12px; }
        .subtitle, .muted { color: var(--muted); }
        .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 12px; }
        .card { background: var(--panel); border: 1px solid var(--border); border-radius: 8px; padding: 10px 14px; }
        .card .label { color: var(--muted); font-size: .78rem; text-transform: uppercase; letter-spacing: .05em; }
        .card .value { font-size: 1.3rem; font-weight: 600; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
        .card .note { color: var(--muted); font-size: .85rem; overflow-wrap: anywhere; }
        .figures { display: grid; gap: 16px; align-items: start; }
        figure { margin: 0; background: #fff; border: 1px solid var(--border); border-radius: 8px; padding: 8px; }
        figure.wide { display: inline-block; max-width: 100%; }
        figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
        figcaption { color: var(--muted); font-size: .85rem; margin: 6px 4px 0; }
        .table-wrap { overflow-x: auto; }
        table { border-collapse: collapse; margin: 8px 0 16px; font-variant-numeric: tabular-nums; font-size: .92rem; }
        th, td { border: 1px solid var(--border); padding: 4px 10px; vertical-align: top; }
        th { background: var(--panel); text-align: left; font-weight: 600; }
        th.num, td.num { text-align: right; }
        tbody tr:nth-child(even) { background: #fafbfc; }
        tr.emphasis td { font-weight: 600; background: #fff8c5; }
        details > summary { cursor: pointer; color: var(--accent); margin: 8px 0; }
        footer { color: var(--muted); font-size: .8rem; margin-top: 48px; border-top: 1px solid var(--border); padding-top: 8px; }
        """;

    /// <summary>Renders the report as an HTML document.</summary>
    /// <param name="result">The run to report.</param>
    /// <param name="options">Title, extra evaluation reports and plot size; <see langword="null"/> for the defaults.</param>
    /// <returns>The complete HTML document (UTF-8 text, no external resources).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="result"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException">The options are invalid; the message lists every problem.</exception>
    public static string Render(FineTuneResult result, HtmlReportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(result);
        options ??= new HtmlReportOptions();
        Validate(options);

        var html = new HtmlWriter();
        html.Line("<!DOCTYPE html>").Line("<html lang=\"en\">").Line("<head>").Line("<meta charset=\"utf-8\">")
            .Line("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
            .Element("title", options.Title)
            .Raw("<style>\n").Raw(Style).Line("</style>").Line("</head>").Line("<body>").Line("<main>");
        html.Element("h1", options.Title);
        html.Paragraph(Subtitle(result), "subtitle");

        AppendSummary(html, result);
        AppendCurves(html, result, options);
        AppendFinalMetrics(html, result);
        if (options.Classification is { } classification)
        {
            AppendClassification(html, classification, options);
        }

        if (options.Calibration is { } calibration)
        {
            AppendCalibration(html, calibration, options);
        }

        if (options.ErrorReport is { } errors)
        {
            AppendErrors(html, errors, options);
        }

        AppendEpochs(html, result);
        AppendEvaluations(html, result);
        html.Line("<footer>Generated by NicheTune.Reporting; plots drawn with ScottPlot.</footer>");
        html.Line("</main>").Line("</body>").Line("</html>");
        return html.ToString();
    }

    /// <summary>
    /// Writes the report's training curves — loss, one per validation metric, learning rates — as separate PNG files,
    /// for documentation, slides or an issue where a whole page is too much. Each file is written atomically.
    /// </summary>
    /// <param name="result">The run to plot.</param>
    /// <param name="folder">The folder to write into (created when missing).</param>
    /// <param name="prefix">Prepended to every file name, e.g. <c>"llrd-"</c> gives <c>llrd-learning-rate.png</c>.</param>
    /// <param name="options">Plot size and pixel density; <see langword="null"/> for the defaults.</param>
    /// <returns>The paths written, in the order the report shows the plots.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="result"/> or <paramref name="folder"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException"><paramref name="folder"/> is empty, or the options are invalid.</exception>
    /// <exception cref="IOException">A file could not be written.</exception>
    public static IReadOnlyList<string> WriteFigures(FineTuneResult result, string folder, string prefix = "", HtmlReportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        ArgumentNullException.ThrowIfNull(prefix);
        options ??= new HtmlReportOptions();
        Validate(options);
        var figures = new List<Figure>();
        if (Charts.Loss(result, options) is { } loss)
        {
            figures.Add(loss);
        }

        figures.AddRange(Charts.Metrics(result, options));
        if (Charts.LearningRates(result, options) is { } rates)
        {
            figures.Add(rates);
        }

        Directory.CreateDirectory(folder);
        var paths = new List<string>(figures.Count);
        foreach (Figure figure in figures)
        {
            string slug = new([.. figure.Title.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-')]);
            string path = Path.Combine(folder, $"{prefix}{slug.Trim('-')}.png");
            string temporary = path + $".{Environment.ProcessId}.tmp";
            File.WriteAllBytes(temporary, figure.Png);
            File.Move(temporary, path, overwrite: true);
            paths.Add(path);
        }

        return paths;
    }

    /// <summary>
    /// Renders the report and writes it to <paramref name="path"/> atomically: the page goes to a temporary file in the
    /// same folder, which then replaces the target in one rename, so a reader (or a crash) never sees half a report and
    /// an existing report is kept when rendering fails.
    /// </summary>
    /// <param name="result">The run to report.</param>
    /// <param name="path">The file to write (conventionally <c>*.html</c>); its folder is created when missing.</param>
    /// <param name="options">Title, extra evaluation reports and plot size; <see langword="null"/> for the defaults.</param>
    /// <exception cref="ArgumentNullException"><paramref name="result"/> or <paramref name="path"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException"><paramref name="path"/> is empty or names a folder, or the options are invalid.</exception>
    /// <exception cref="IOException">The file could not be written or replaced.</exception>
    /// <exception cref="UnauthorizedAccessException">The process may not write to the folder.</exception>
    public static void Write(FineTuneResult result, string path, HtmlReportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string full = Path.GetFullPath(path);
        string name = Path.GetFileName(full);
        if (name.Length == 0 || Directory.Exists(full))
        {
            throw new ArgumentException($"The report path '{path}' names a folder; pass a file path such as '{Path.Combine(path, "report.html")}'.", nameof(path));
        }

        string page = Render(result, options);
        string folder = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(folder);
        // Same folder, so the rename below stays on one file system and is atomic.
        string temporary = Path.Combine(folder, "." + name + "." + Guid.NewGuid().ToString("N")[..12] + ".tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                byte[] bytes = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(page);
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, full, overwrite: true);
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }
    }

    private static void Validate(HtmlReportOptions options)
    {
        var problems = new List<ValidationResult>();
        if (Validator.TryValidateObject(options, new ValidationContext(options), problems, validateAllProperties: true))
        {
            return;
        }

        IEnumerable<string> lines = problems.Select(p =>
        {
            string member = p.MemberNames.FirstOrDefault() ?? string.Empty;
            object? value = typeof(HtmlReportOptions).GetProperty(member)?.GetValue(options);
            return $"{member} is {Convert.ToString(value, CultureInfo.InvariantCulture) ?? "null"}: {p.ErrorMessage}";
        });
        throw new ArgumentException("The HTML report options are invalid:" + Environment.NewLine + string.Join(Environment.NewLine, lines), nameof(options));
    }

    private static string Subtitle(FineTuneResult result)
    {
        var parts = new List<string> { $"{HtmlWriter.Integer(result.Steps)} steps", StopText(result.StopReason), HtmlWriter.Duration(result.WallTime) };
        if (result.BestMetric is { } best && result.MonitoredMetric is { } monitored)
        {
            parts.Add($"best {Charts.ShortName(monitored)} {HtmlWriter.Number(best)}");
        }

        return string.Join(" · ", parts);
    }

    private static void AppendSummary(HtmlWriter html, FineTuneResult result)
    {
        html.OpenSection("summary", "Summary").Line("<div class=\"cards\">");
        string stepsNote = $"{HtmlWriter.Integer(result.Epochs.Length)} epoch{(result.Epochs.Length == 1 ? string.Empty : "s")} finished"
            + (result.SkippedSteps > 0 ? $", {HtmlWriter.Integer(result.SkippedSteps)} skipped (non-finite gradient)" : string.Empty);
        html.Card("Steps", HtmlWriter.Integer(result.Steps), stepsNote);
        html.Card("Stopped", StopText(result.StopReason), result.StopMessage);
        html.Card("Wall time", HtmlWriter.Duration(result.WallTime),
            $"{HtmlWriter.Number(result.ExamplesPerSecond, 1)} examples/s · {HtmlWriter.Integer((long)Math.Round(result.TokensPerSecond))} tokens/s");
        if (result.MonitoredMetric is { } monitored)
        {
            string value = result.BestMetric is { } best ? HtmlWriter.Number(best) : "n/a";
            string note = result.BestStep is { } step ? $"{monitored} at step {HtmlWriter.Integer(step)}" : monitored;
            html.Card("Best " + Charts.ShortName(monitored), value, note);
        }

        string weights = result.AveragedWeights ? "averaged" : result.RestoredBestWeights ? "best restored" : "final";
        string weightsNote = result.AveragedWeights
            ? "SWA/EMA weights replaced the final ones"
            : result.RestoredBestWeights ? "the weights of the best step were restored" : "the weights after the last step";
        html.Card("Weights", weights, weightsNote);
        if (result.ParameterGroups.Length > 0)
        {
            html.Card("Parameter groups", HtmlWriter.Integer(result.ParameterGroups.Length), string.Join(", ", result.ParameterGroups.Take(6)) + (result.ParameterGroups.Length > 6 ? ", …" : string.Empty));
        }

        if (result.LastCheckpoint is { } checkpoint)
        {
            html.Card("Last checkpoint", Path.GetFileName(checkpoint.TrimEnd('/', '\\')), checkpoint);
        }

        html.Line("</div>").CloseSection();
    }

    private static void AppendCurves(HtmlWriter html, FineTuneResult result, HtmlReportOptions options)
    {
        var figures = new List<Figure>();
        if (Charts.Loss(result, options) is { } loss)
        {
            figures.Add(loss);
        }

        figures.AddRange(Charts.Metrics(result, options));
        if (Charts.LearningRates(result, options) is { } rates)
        {
            figures.Add(rates);
        }

        if (figures.Count == 0)
        {
            return;
        }

        html.OpenSection("curves", "Training curves");
        html.Raw("<div class=\"figures\" style=\"grid-template-columns: repeat(auto-fill, minmax(min(100%, ")
            .Raw((options.PlotWidth + 18).ToString(CultureInfo.InvariantCulture)).Line("px), 1fr));\">");
        foreach (Figure figure in figures)
        {
            html.Figure(figure);
        }

        html.Line("</div>").CloseSection();
    }

    private static void AppendFinalMetrics(HtmlWriter html, FineTuneResult result)
    {
        if (result.FinalMetrics.Count == 0)
        {
            return;
        }

        html.OpenSection("final-metrics", "Final metrics");
        if (result.AveragedWeights || result.RestoredBestWeights)
        {
            html.Paragraph(result.AveragedWeights ? "Of the averaged weights." : "Of the restored best weights.", "muted");
        }

        html.Table(["metric", "value"], [false, true],
            result.FinalMetrics.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (IReadOnlyList<string>)[kv.Key, HtmlWriter.Number(kv.Value)]));
        html.CloseSection();
    }

    private static void AppendClassification(HtmlWriter html, ClassificationReport report, HtmlReportOptions options)
    {
        html.OpenSection("confusion-matrix", "Classification");
        html.Paragraph($"Accuracy {HtmlWriter.Number(report.Accuracy)} over {HtmlWriter.Integer(report.Total)} examples; macro F1 {HtmlWriter.Number(report.F1(Average.Macro))}.");
        html.Figure(Charts.ConfusionMatrix(report, options), wide: true);
        html.Element("h3", "Per class");
        ClassScores[] present = [.. report.Classes.Where(c => c.Support + c.Predicted > 0)];
        IEnumerable<IReadOnlyList<string>> rows = present
            .Select(c => (IReadOnlyList<string>)[c.Name, HtmlWriter.Number(c.Precision), HtmlWriter.Number(c.Recall), HtmlWriter.Number(c.F1), HtmlWriter.Integer(c.Support), HtmlWriter.Integer(c.Predicted)])
            .Append(["macro avg", HtmlWriter.Number(report.Precision(Average.Macro)), HtmlWriter.Number(report.Recall(Average.Macro)), HtmlWriter.Number(report.F1(Average.Macro)), HtmlWriter.Integer(report.Total), string.Empty])
            .Append(["weighted avg", HtmlWriter.Number(report.Precision(Average.Weighted)), HtmlWriter.Number(report.Recall(Average.Weighted)), HtmlWriter.Number(report.F1(Average.Weighted)), HtmlWriter.Integer(report.Total), string.Empty]);
        html.Table(["class", "precision", "recall", "f1", "support", "predicted"], [false, true, true, true, true, true], rows,
            new HashSet<int> { present.Length, present.Length + 1 });
        AppendConfusedPairs(html, report.MostConfusedPairs(options.WorstExamples));
        html.CloseSection();
    }

    private static void AppendConfusedPairs(HtmlWriter html, IReadOnlyList<ConfusedPair> pairs)
    {
        if (pairs.Count == 0)
        {
            return;
        }

        html.Element("h3", "Most confused pairs");
        html.Table(["true class", "predicted as", "count"], [false, false, true],
            pairs.Select(p => (IReadOnlyList<string>)[p.TrueName, p.PredictedName, HtmlWriter.Integer(p.Count)]));
    }

    private static void AppendCalibration(HtmlWriter html, CalibrationReport report, HtmlReportOptions options)
    {
        html.OpenSection("calibration", "Calibration");
        html.Paragraph($"Expected calibration error {HtmlWriter.Number(report.ExpectedCalibrationError)}, maximum {HtmlWriter.Number(report.MaxCalibrationError)}, over {HtmlWriter.Integer(report.Count)} predictions.");
        if (Charts.Reliability(report, options) is { } figure)
        {
            html.Figure(figure, wide: true);
        }

        html.Table(["confidence bin", "count", "mean confidence", "accuracy"], [false, true, true, true],
            report.Bins.Where(b => b.Count > 0).Select(b => (IReadOnlyList<string>)[
                b.Lower == b.Upper ? "[1, 1]" : $"[{HtmlWriter.Number(b.Lower, 3)}, {HtmlWriter.Number(b.Upper, 3)})",
                HtmlWriter.Integer(b.Count), HtmlWriter.Number(b.MeanConfidence), HtmlWriter.Number(b.Accuracy)]));
        html.CloseSection();
    }

    private static void AppendErrors(HtmlWriter html, ErrorReport report, HtmlReportOptions options)
    {
        html.OpenSection("error-analysis", "Error analysis");
        html.Paragraph($"{HtmlWriter.Integer(report.Examples.Count)} examples; loss {HtmlWriter.Number(report.Loss)}, accuracy {HtmlWriter.Number(report.Accuracy)}.");
        IReadOnlyList<ExampleResult> worst = report.WorstExamples(options.WorstExamples);
        if (worst.Count > 0)
        {
            bool classified = worst[0].Predicted is not null;
            bool sliced = report.Slices.Count > 0;
            bool described = options.ExampleText is not null;
            var header = new List<string> { "example" };
            var numeric = new List<bool> { true };
            if (described)
            {
                header.Add("text");
                numeric.Add(false);
            }

            header.Add("loss");
            numeric.Add(true);
            header.AddRange(classified ? ["target", "predicted"] : ["targets", "correct"]);
            numeric.AddRange(classified ? [false, false] : [true, true]);
            if (sliced)
            {
                header.Add("slice");
                numeric.Add(false);
            }

            html.Element("h3", "Worst examples");
            html.Table(header, numeric, worst.Select(e =>
            {
                var row = new List<string> { e.Index.ToString(CultureInfo.InvariantCulture) };
                if (options.ExampleText is { } text)
                {
                    row.Add(text(e.Index) ?? string.Empty);
                }

                row.Add(HtmlWriter.Number(e.Loss));
                if (classified)
                {
                    row.Add(e.Target is { } t ? ClassName(report, t) : "-");
                    row.Add(e.Predicted is { } p ? ClassName(report, p) : "-");
                }
                else
                {
                    row.Add(HtmlWriter.Integer(e.TargetCount));
                    row.Add(HtmlWriter.Integer(e.CorrectCount));
                }

                if (sliced)
                {
                    row.Add(e.Slice ?? string.Empty);
                }

                return (IReadOnlyList<string>)row;
            }));
        }

        if (options.Classification is null)
        {
            AppendConfusedPairs(html, report.MostConfusedPairs(options.WorstExamples));
        }

        if (report.Slices.Count > 0)
        {
            string[] names = [.. report.Overall.Keys];
            html.Element("h3", "Slices (gap = slice − whole set)");
            var header = new List<string> { "slice", "examples" };
            var numeric = new List<bool> { false, true };
            foreach (string name in names)
            {
                header.AddRange([name, "gap"]);
                numeric.AddRange([true, true]);
            }

            IEnumerable<IReadOnlyList<string>> rows = report.Slices
                .Select(s => (IReadOnlyList<string>)[s.Slice, HtmlWriter.Integer(s.Examples), .. names.SelectMany(n => new[] { HtmlWriter.Number(s.Metrics[n]), HtmlWriter.Signed(s.Gaps[n]) })])
                .Append(["all", HtmlWriter.Integer(report.Examples.Count), .. names.SelectMany(n => new[] { HtmlWriter.Number(report.Overall[n]), string.Empty })]);
            html.Table(header, numeric, rows, new HashSet<int> { report.Slices.Count });
        }

        html.CloseSection();
    }

    private static void AppendEpochs(HtmlWriter html, FineTuneResult result)
    {
        if (result.Epochs.IsDefaultOrEmpty)
        {
            return;
        }

        string[] names = Charts.MetricNames(result.Epochs.Select(e => e.Validation));
        html.OpenSection("epochs", "Epochs");
        html.Table(
            ["epoch", "step", "train loss", .. names.Select(Charts.ShortName)],
            [true, true, true, .. names.Select(_ => true)],
            result.Epochs.Select(e => (IReadOnlyList<string>)[
                e.Epoch.ToString(CultureInfo.InvariantCulture), HtmlWriter.Integer(e.Step), HtmlWriter.Number(e.TrainLoss),
                .. names.Select(n => e.Validation.TryGetValue(n, out double v) ? HtmlWriter.Number(v) : "-")]));
        html.CloseSection();
    }

    private static void AppendEvaluations(HtmlWriter html, FineTuneResult result)
    {
        if (result.Evaluations.IsDefaultOrEmpty)
        {
            return;
        }

        string[] names = Charts.MetricNames(result.Evaluations.Select(e => e.Metrics));
        var best = new HashSet<int>();
        for (int i = 0; i < result.Evaluations.Length; i++)
        {
            if (result.Evaluations[i].Step == result.BestStep)
            {
                best.Add(i);
            }
        }

        html.OpenSection("evaluations", "Evaluations");
        html.Raw("<details><summary>").Raw(HtmlWriter.Encode($"{result.Evaluations.Length} evaluation passes (best step highlighted)")).Line("</summary>");
        html.Table(
            ["step", "epoch", "elapsed", .. names.Select(Charts.ShortName)],
            [true, true, true, .. names.Select(_ => true)],
            result.Evaluations.Select(e => (IReadOnlyList<string>)[
                HtmlWriter.Integer(e.Step), e.Epoch.ToString(CultureInfo.InvariantCulture), HtmlWriter.Duration(e.Elapsed),
                .. names.Select(n => e.Metrics.TryGetValue(n, out double v) ? HtmlWriter.Number(v) : "-")]),
            best);
        html.Line("</details>").CloseSection();
    }

    private static string StopText(StopReason reason) => ResultMarkdown.StopText(reason);

    private static string ClassName(ErrorReport report, int index)
        => report.Classes is { } classes && index < classes.ClassCount ? classes.ClassName(index) : index.ToString(CultureInfo.InvariantCulture);

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
