using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Evaluation;

/// <summary>Factories for the built-in metrics.</summary>
public static class Metrics
{
    /// <summary>The objective's loss, weighted by each batch's element count (tokens or examples) over the whole set.</summary>
    /// <returns>A new metric named <c>loss</c>.</returns>
    public static IMetric Loss() => new LossMetric();

    /// <summary>
    /// Perplexity: exp of the token-weighted mean cross-entropy over the whole set (not the mean of per-batch
    /// perplexities). Uses the plain cross-entropy of the outputs, so label smoothing does not inflate it.
    /// </summary>
    /// <returns>A new metric named <c>perplexity</c>.</returns>
    public static IMetric Perplexity() => new PerplexityMetric();

    /// <summary>Share of targets (tokens or examples, padding skipped) whose arg-max prediction is right.</summary>
    /// <returns>A new metric named <c>accuracy</c>.</returns>
    public static IMetric Accuracy() => new AccuracyMetric();

    /// <summary>
    /// Share of targets (padding skipped) among the <paramref name="k"/> highest scores, as torchmetrics'
    /// <c>MulticlassAccuracy(top_k=k, average="micro")</c>. Which of several equal scores make the cut is
    /// <c>torch.topk</c>'s choice, so on exact ties top-1 may differ from <see cref="Accuracy"/>'s arg-max.
    /// </summary>
    /// <param name="k">How many of the best-scored classes count as a hit; k at or above the class count always hits.</param>
    /// <returns>A new metric named <c>accuracy.top{k}</c>, e.g. <c>accuracy.top5</c>.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="k"/> is below 1.</exception>
    public static IMetric TopKAccuracy(int k)
    {
        if (k < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(k), k, "Top-k accuracy needs k ≥ 1; k = 1 is plain accuracy, typical values are 3 or 5.");
        }

        return new TopKAccuracyMetric(k);
    }

    /// <summary>
    /// Precision of the arg-max predictions (scikit-learn's <c>precision_score</c>): per class TP / predicted, 0 for a
    /// class never predicted, combined by <paramref name="average"/> over the classes present in the targets or the
    /// predictions. Keeps per-class counts on the device, so it also works over a token vocabulary.
    /// </summary>
    /// <param name="average">How to combine classes.</param>
    /// <returns>A new metric named <c>precision.macro</c>, <c>precision.micro</c> or <c>precision.weighted</c>.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="average"/> is not a defined value.</exception>
    public static IMetric Precision(Average average) => new ClassificationScoreMetric(ScoreKind.Precision, Check(average));

    /// <summary>Recall of the arg-max predictions (scikit-learn's <c>recall_score</c>): per class TP / support, combined by <paramref name="average"/>.</summary>
    /// <param name="average">How to combine classes.</param>
    /// <returns>A new metric named <c>recall.macro</c>, <c>recall.micro</c> or <c>recall.weighted</c>.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="average"/> is not a defined value.</exception>
    public static IMetric Recall(Average average) => new ClassificationScoreMetric(ScoreKind.Recall, Check(average));

    /// <summary>
    /// F1 of the arg-max predictions (scikit-learn's <c>f1_score</c>): per class 2·TP / (predicted + support), combined
    /// by <paramref name="average"/>; macro F1 is the mean of per-class F1.
    /// </summary>
    /// <param name="average">How to combine classes.</param>
    /// <returns>A new metric named <c>f1.macro</c>, <c>f1.micro</c> or <c>f1.weighted</c>.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="average"/> is not a defined value.</exception>
    public static IMetric F1(Average average) => new ClassificationScoreMetric(ScoreKind.F1, Check(average));

    /// <summary>Macro-averaged F1, the usual headline number for imbalanced niche labels: <c>F1(Average.Macro)</c>.</summary>
    /// <returns>A new metric named <c>f1.macro</c>.</returns>
    public static IMetric MacroF1() => F1(Average.Macro);

    /// <summary>
    /// The confusion matrix of the arg-max predictions (rows: targets, columns: predictions). Its value is the accuracy
    /// read off the matrix; keep the metric and call <see cref="IReportingMetric{TReport}.Report"/> after the evaluation
    /// for per-class precision / recall / F1 / support and the most confused pairs. At most 4096 classes.
    /// </summary>
    /// <param name="classNames">One display name per output column, or <see langword="null"/> to show indices.</param>
    /// <returns>A new metric named <c>confusion_matrix.accuracy</c>.</returns>
    public static IReportingMetric<ClassificationReport> ConfusionMatrix(IReadOnlyList<string>? classNames = null)
        => new ConfusionMatrixMetric(classNames is null ? null : [.. classNames]);

    /// <summary>
    /// Expected calibration error (L1), as torchmetrics' <c>MulticlassCalibrationError(n_bins, norm="l1")</c>: predictions
    /// are grouped by confidence (max softmax probability) into equal-width bins, and the gaps between each bin's
    /// accuracy and mean confidence are averaged, weighted by bin size. 0 is perfectly calibrated; fine-tuned models
    /// tend to be over-confident. The report holds the reliability diagram.
    /// </summary>
    /// <param name="bins">Number of equal-width confidence bins.</param>
    /// <returns>A new metric named <c>ece</c>.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="bins"/> is below 1.</exception>
    public static IReportingMetric<CalibrationReport> ExpectedCalibrationError(int bins = 15)
    {
        if (bins < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(bins), bins, "Calibration needs at least one confidence bin; 10 or 15 are usual.");
        }

        return new CalibrationErrorMetric(bins);
    }

    private static Average Check(Average average) => Enum.IsDefined(average)
        ? average
        : throw new ArgumentOutOfRangeException(nameof(average), average, "Use Average.Macro, Average.Micro or Average.Weighted.");
}

/// <summary>Holds a float64 scalar accumulator that lives outside every dispose scope.</summary>
internal sealed class ScalarAccumulator : IDisposable
{
    private Tensor? _value;

    public Tensor Value => _value ?? throw new InvalidOperationException("Reset() the metric before updating it.");

    public bool IsEmpty => _value is null;

    public void Reset()
    {
        if (_value is null)
        {
            _value = torch.zeros(1, dtype: ScalarType.Float64).DetachFromDisposeScope();
        }
        else
        {
            _value.zero_();
        }
    }

    public void Add(Tensor amount)
    {
        Value.add_(amount.to(ScalarType.Float64).reshape(1), Scalars.One);
    }

    public double Read() => _value is null ? 0.0 : _value.item<double>();

    public void Dispose() => _value?.Dispose();
}

internal sealed class LossMetric : IMetric
{
    private readonly ScalarAccumulator _sum = new();
    private long _count;

    public string Name => "loss";

    public bool HigherIsBetter => false;

    public void Reset()
    {
        _sum.Reset();
        _count = 0;
    }

    public void Update(in MetricBatch batch)
    {
        if (batch.Count <= 0)
        {
            return;
        }

        _sum.Add(Scalars.Times(batch.Loss.detach(), batch.Count));
        _count += batch.Count;
    }

    public double Compute() => _count == 0 ? double.NaN : _sum.Read() / _count;
}

internal sealed class PerplexityMetric : IMetric
{
    private readonly ScalarAccumulator _sum = new();
    private long _count;

    public string Name => "perplexity";

    public bool HigherIsBetter => false;

    public void Reset()
    {
        _sum.Reset();
        _count = 0;
    }

    public void Update(in MetricBatch batch)
    {
        if (batch.Count <= 0)
        {
            return;
        }

        if (batch.Outputs is { } outputs && batch.Targets is { } targets)
        {
            _sum.Add(nn.functional.cross_entropy(outputs.to(ScalarType.Float32), targets, ignore_index: batch.IgnoreIndex, reduction: nn.Reduction.Sum));
        }
        else
        {
            _sum.Add(Scalars.Times(batch.Loss.detach(), batch.Count));
        }

        _count += batch.Count;
    }

    public double Compute() => _count == 0 ? double.NaN : Math.Exp(_sum.Read() / _count);
}

internal sealed class AccuracyMetric : IMetric
{
    private readonly ScalarAccumulator _correct = new();
    private readonly ScalarAccumulator _total = new();

    public string Name => "accuracy";

    public bool HigherIsBetter => true;

    public void Reset()
    {
        _correct.Reset();
        _total.Reset();
    }

    public void Update(in MetricBatch batch)
    {
        if (batch.Outputs is not { } outputs || batch.Targets is not { } targets)
        {
            throw new InvalidOperationException("Accuracy needs the objective's outputs and targets; this objective reports only a loss. Use Metrics.Loss() or an objective with outputs.");
        }

        Tensor valid = Scalars.NotEqual(targets, batch.IgnoreIndex);
        Tensor correct = outputs.argmax(-1).eq(targets).logical_and(valid);
        _correct.Add(correct.sum());
        _total.Add(valid.sum());
    }

    public double Compute()
    {
        double total = _total.Read();
        return total == 0 ? double.NaN : _correct.Read() / total;
    }
}
