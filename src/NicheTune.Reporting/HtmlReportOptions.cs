using System.ComponentModel.DataAnnotations;
using NicheTune.Evaluation;

namespace NicheTune.Reporting;

/// <summary>
/// What an <see cref="HtmlReport"/> shows besides the run's own history: the evaluation reports that a
/// <see cref="FineTuneResult"/> does not carry (they come from metrics the caller kept, such as
/// <see cref="Metrics.ConfusionMatrix"/>), and the size of the plots.
/// </summary>
public sealed class HtmlReportOptions
{
    /// <summary>The page's title and top heading.</summary>
    /// <value>Default <c>Fine-tuning report</c>.</value>
    [Required(AllowEmptyStrings = false)]
    public string Title { get; init; } = "Fine-tuning report";

    /// <summary>
    /// A classification report (e.g. from <see cref="Metrics.ConfusionMatrix"/>'s <c>Report()</c> after an evaluation);
    /// adds a confusion-matrix heat map and the per-class table.
    /// </summary>
    /// <value>Default <see langword="null"/>: no classification section.</value>
    public ClassificationReport? Classification { get; init; }

    /// <summary>
    /// A calibration report (from <see cref="Metrics.ExpectedCalibrationError"/>'s <c>Report()</c>); adds a reliability
    /// diagram, which shows at a glance whether the model is over-confident.
    /// </summary>
    /// <value>Default <see langword="null"/>: no calibration section.</value>
    public CalibrationReport? Calibration { get; init; }

    /// <summary>
    /// An error analysis (from <see cref="ErrorAnalysis"/>); adds the worst examples, the most confused pairs and the
    /// slice table: where to look next.
    /// </summary>
    /// <value>Default <see langword="null"/>: no error-analysis section.</value>
    public ErrorReport? ErrorReport { get; init; }

    /// <summary>
    /// Describes an example of <see cref="ErrorReport"/> by its index (e.g. the first 200 characters of its text), so the
    /// worst-examples table shows what the model got wrong and not just where; the text is escaped.
    /// </summary>
    /// <value>Default <see langword="null"/>: examples are shown by index only.</value>
    public Func<int, string>? ExampleText { get; init; }

    /// <summary>Rows of the worst-examples and most-confused-pairs tables.</summary>
    /// <value>Default 10.</value>
    [Range(0, 1000)]
    public int WorstExamples { get; init; } = 10;

    /// <summary>Width of each curve in CSS pixels; the page fits as many curves side by side as its width allows.</summary>
    /// <value>Default 560: two curves side by side on a 1280-pixel-wide window.</value>
    [Range(200, 4000)]
    public int PlotWidth { get; init; } = 560;

    /// <summary>Height of each curve in CSS pixels.</summary>
    /// <value>Default 340.</value>
    [Range(150, 4000)]
    public int PlotHeight { get; init; } = 340;

    /// <summary>
    /// Image pixels per CSS pixel: 2 keeps plots sharp on high-density screens, at about three times the file size.
    /// </summary>
    /// <value>Default 1.</value>
    [Range(1.0, 4.0)]
    public double PixelDensity { get; init; } = 1.0;

    /// <summary>Largest confusion matrix whose cells are annotated with their counts; beyond it the numbers would not fit the cells.</summary>
    /// <value>Default 20.</value>
    [Range(0, 100)]
    public int MaxAnnotatedClasses { get; init; } = 20;
}
