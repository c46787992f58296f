using System.Text;

namespace NicheTune.Evaluation;

/// <summary>
/// The reliability diagram behind the expected calibration error: per confidence bin, how many predictions fell in
/// it, their mean confidence and their accuracy. A well-calibrated model's accuracy matches its confidence in every bin.
/// </summary>
public sealed class CalibrationReport
{
    internal CalibrationReport(int binCount, double[] state)
    {
        int slots = binCount + 1;
        var bins = new List<CalibrationBin>(slots);
        long total = 0;
        double gapSum = 0;
        double maxGap = double.NaN;
        for (int b = 0; b < slots; b++)
        {
            long count = (long)Math.Round(state[b]);
            double confidence = state[slots + b];
            double correct = state[(2 * slots) + b];
            total += count;
            gapSum += Math.Abs(correct - confidence);
            bool lastSlot = b == binCount;
            if (lastSlot && count == 0)
            {
                continue;
            }

            double lower = lastSlot ? 1.0 : b / (double)binCount;
            double upper = lastSlot ? 1.0 : (b + 1) / (double)binCount;
            double meanConfidence = count == 0 ? double.NaN : confidence / count;
            double accuracy = count == 0 ? double.NaN : correct / count;
            if (count > 0)
            {
                double gap = Math.Abs(accuracy - meanConfidence);
                maxGap = double.IsNaN(maxGap) ? gap : Math.Max(maxGap, gap);
            }

            bins.Add(new CalibrationBin(lower, upper, count, meanConfidence, accuracy));
        }

        Bins = bins;
        Count = total;
        ExpectedCalibrationError = total == 0 ? double.NaN : gapSum / total;
        MaxCalibrationError = maxGap;
    }

    /// <summary>
    /// The equal-width bins [lower, upper) in order, plus a last bin [1, 1] holding confidences of exactly 1 when there
    /// are any (torchmetrics' binning).
    /// </summary>
    public IReadOnlyList<CalibrationBin> Bins { get; }

    /// <summary>Number of predictions counted (ignored targets excluded).</summary>
    public long Count { get; }

    /// <summary>Σ over bins of (bin count / total) · |accuracy − mean confidence|; <see cref="double.NaN"/> when nothing was counted.</summary>
    public double ExpectedCalibrationError { get; }

    /// <summary>The largest |accuracy − mean confidence| of a non-empty bin (torchmetrics' <c>norm="max"</c>).</summary>
    public double MaxCalibrationError { get; }

    /// <summary>Markdown: the errors and one row per non-empty bin.</summary>
    /// <returns>The Markdown text.</returns>
    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        sb.Append("ECE: ").Append(Markdown.Number(ExpectedCalibrationError)).Append(", MCE: ").Append(Markdown.Number(MaxCalibrationError))
            .Append(" over ").Append(Markdown.Integer(Count)).AppendLine(" predictions.").AppendLine();
        Markdown.Table(
            sb,
            ["confidence bin", "count", "mean confidence", "accuracy"],
            [false, true, true, true],
            Bins.Where(b => b.Count > 0).Select(b => (IReadOnlyList<string>)[
                b.Lower == b.Upper ? "[1, 1]" : $"[{Markdown.Number(b.Lower, 3)}, {Markdown.Number(b.Upper, 3)})",
                Markdown.Integer(b.Count), Markdown.Number(b.MeanConfidence), Markdown.Number(b.Accuracy)]));
        return sb.ToString();
    }
}

/// <summary>One confidence bin of a <see cref="CalibrationReport"/>.</summary>
/// <param name="Lower">Inclusive lower edge.</param>
/// <param name="Upper">Exclusive upper edge (equal to <paramref name="Lower"/> for the [1, 1] bin).</param>
/// <param name="Count">Predictions whose confidence fell in the bin.</param>
/// <param name="MeanConfidence">Their mean max-softmax probability; <see cref="double.NaN"/> for an empty bin.</param>
/// <param name="Accuracy">Share of them that were right; <see cref="double.NaN"/> for an empty bin.</param>
public sealed record CalibrationBin(double Lower, double Upper, long Count, double MeanConfidence, double Accuracy);
