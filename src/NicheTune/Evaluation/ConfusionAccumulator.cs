using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Evaluation;

/// <summary>
/// Counts (target, arg-max prediction) pairs on the device, skipping ignored targets, in one int64 tensor that lives
/// outside every dispose scope. Two layouts of the same counts: the full C × C matrix (rows = target, columns =
/// prediction) for confusion reports, or only the per-class true positives, predictions and support (3 × C) for
/// precision/recall/F1, so that a 50k-token vocabulary costs 1.2 MB instead of 20 GB. Every classification metric and
/// the error analysis derive their numbers from this one type.
/// </summary>
internal sealed class ConfusionAccumulator : IDisposable
{
    /// <summary>Above this many classes the full matrix (C² int64 counters, 128 MiB at 4096) is refused.</summary>
    public const int MaxMatrixClasses = 4096;

    private readonly bool _fullMatrix;
    private readonly string _metricName;
    private Tensor? _counts;
    private int _classes;

    public ConfusionAccumulator(bool fullMatrix, string metricName)
    {
        _fullMatrix = fullMatrix;
        _metricName = metricName;
    }

    /// <summary>Number of classes seen in this pass; 0 before the first update.</summary>
    public int Classes => _classes;

    public bool IsEmpty => _classes == 0;

    public void Reset()
    {
        _classes = 0;
        _counts?.zero_();
    }

    /// <summary>Adds a batch of scores [N, C] and targets [N]; runs inside the caller's dispose scope.</summary>
    public void Update(Tensor outputs, Tensor targets, long ignoreIndex)
    {
        int classes = checked((int)outputs.shape[1]);
        Tensor counts = Prepare(classes, outputs.device);
        using var scope = torch.NewDisposeScope();
        Tensor predicted = outputs.argmax(-1);
        using Scalar width = classes.ToScalar();
        using Scalar twice = (2L * classes).ToScalar();
        Tensor valid = Scalars.NotEqual(targets, ignoreIndex);

        // Ignored rows get class 0 and weight 0 instead of being filtered out: a boolean-mask select has a
        // data-dependent shape and would force a device synchronisation on every batch. Targets outside [0, C)
        // cannot reach here: the objective's cross-entropy over the same targets fails first.
        Tensor truth = targets.masked_fill(valid.logical_not(), Scalars.Zero);
        Tensor weight = valid.to(ScalarType.Int64);
        if (_fullMatrix)
        {
            counts.scatter_add_(0, truth.mul(width).add(predicted, Scalars.One), weight);
        }
        else
        {
            Tensor hit = weight * predicted.eq(truth).to(ScalarType.Int64);
            Tensor index = torch.cat([truth, predicted.add(width, Scalars.One), truth.add(twice, Scalars.One)]);
            counts.scatter_add_(0, index, torch.cat([hit, weight, weight]));
        }
    }

    /// <summary>Reads the counts once (one device-to-host copy).</summary>
    public ClassCounts ReadCounts()
    {
        long[] data = Read();
        if (_fullMatrix)
        {
            return ClassCounts.FromMatrix(data, _classes);
        }

        return new ClassCounts(data[.._classes], data[_classes..(2 * _classes)], data[(2 * _classes)..]);
    }

    /// <summary>The row-major C × C matrix (full layout only).</summary>
    public long[] ReadMatrix()
    {
        if (!_fullMatrix)
        {
            throw new InvalidOperationException("This accumulator keeps per-class counts only; create it with fullMatrix: true for a confusion matrix.");
        }

        return Read();
    }

    public void Dispose() => _counts?.Dispose();

    private long[] Read()
    {
        if (_counts is null || _classes == 0)
        {
            throw new InvalidOperationException($"Metric '{_metricName}' has seen no batch since Reset(); evaluate at least one batch before reading it.");
        }

        using var scope = torch.NewDisposeScope();
        return _counts.cpu().data<long>().ToArray();
    }

    private Tensor Prepare(int classes, Device device)
    {
        if (_classes != 0)
        {
            if (classes != _classes)
            {
                throw new InvalidOperationException(
                    $"Metric '{_metricName}' saw outputs with {classes} classes after batches with {_classes}; every batch of one evaluation must score the same classes.");
            }

            return _counts!;
        }

        if (_fullMatrix && classes > MaxMatrixClasses)
        {
            throw new InvalidOperationException(
                $"Metric '{_metricName}' would need a {classes} × {classes} confusion matrix ({(double)classes * classes * 8 / (1 << 30):0.#} GiB); " +
                $"confusion matrices are limited to {MaxMatrixClasses} classes. For token-level scores over a vocabulary use Metrics.Precision/Recall/F1, which keep per-class counts only.");
        }

        long size = _fullMatrix ? (long)classes * classes : 3L * classes;
        if (_counts is null || _counts.numel() != size || !MetricInputs.SameDevice(_counts.device, device))
        {
            _counts?.Dispose();
            _counts = torch.zeros(size, dtype: ScalarType.Int64, device: device).DetachFromDisposeScope();
        }

        _classes = classes;
        return _counts;
    }
}
