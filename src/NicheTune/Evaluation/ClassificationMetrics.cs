using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Evaluation;

/// <summary>Checks that a batch carries what a classification metric needs: scores [N, C] and targets [N].</summary>
internal static class MetricInputs
{
    public static (Tensor Outputs, Tensor Targets) Require(in MetricBatch batch, string metric)
    {
        if (batch.Outputs is not { } outputs || batch.Targets is not { } targets)
        {
            throw new InvalidOperationException(
                $"Metric '{metric}' needs the objective's outputs and targets; this objective reports only a loss. Use Metrics.Loss() or an objective with outputs.");
        }

        if (outputs.dim() != 2 || targets.dim() != 1 || outputs.shape[0] != targets.shape[0])
        {
            throw new InvalidOperationException(
                $"Metric '{metric}' needs outputs [N, C] and targets [N]; got outputs [{string.Join(", ", outputs.shape)}] and targets [{string.Join(", ", targets.shape)}]. " +
                "Flatten the objective's outputs to one row per prediction.");
        }

        return (outputs, targets);
    }

    // TorchSharp's Device has reference equality: each tensor.device call returns a new object.
    public static bool SameDevice(Device a, Device b) => a.type == b.type && a.index == b.index;
}

internal sealed class TopKAccuracyMetric(int k) : IMetric
{
    private readonly ScalarAccumulator _correct = new();
    private readonly ScalarAccumulator _total = new();

    public string Name { get; } = $"accuracy.top{k}";

    public bool HigherIsBetter => true;

    public void Reset()
    {
        _correct.Reset();
        _total.Reset();
    }

    public void Update(in MetricBatch batch)
    {
        (Tensor outputs, Tensor targets) = MetricInputs.Require(batch, Name);
        Tensor valid = Scalars.NotEqual(targets, batch.IgnoreIndex);

        // torch.topk decides which of several equal scores make the cut, as torchmetrics does; k ≥ C is always a hit.
        int kept = (int)Math.Min(k, outputs.shape[1]);
        Tensor top = outputs.topk(kept).indexes;
        Tensor hit = top.eq(targets.unsqueeze(1)).any(1).logical_and(valid);
        _correct.Add(hit.sum());
        _total.Add(valid.sum());
    }

    public double Compute()
    {
        double total = _total.Read();
        return total == 0 ? double.NaN : _correct.Read() / total;
    }
}

internal sealed class ClassificationScoreMetric : IMetric
{
    private readonly ScoreKind _kind;
    private readonly Average _average;
    private readonly ConfusionAccumulator _counts;

    public ClassificationScoreMetric(ScoreKind kind, Average average)
    {
        _kind = kind;
        _average = average;
        Name = $"{kind.ToString().ToLowerInvariant()}.{average.ToString().ToLowerInvariant()}";
        _counts = new ConfusionAccumulator(fullMatrix: false, Name);
    }

    public string Name { get; }

    public bool HigherIsBetter => true;

    public void Reset() => _counts.Reset();

    public void Update(in MetricBatch batch)
    {
        (Tensor outputs, Tensor targets) = MetricInputs.Require(batch, Name);
        _counts.Update(outputs, targets, batch.IgnoreIndex);
    }

    public double Compute() => _counts.IsEmpty ? double.NaN : _counts.ReadCounts().Score(_kind, _average);
}

internal sealed class ConfusionMatrixMetric(IReadOnlyList<string>? classNames) : IReportingMetric<ClassificationReport>
{
    private readonly ConfusionAccumulator _matrix = new(fullMatrix: true, "confusion_matrix.accuracy");

    public string Name => "confusion_matrix.accuracy";

    public bool HigherIsBetter => true;

    public void Reset() => _matrix.Reset();

    public void Update(in MetricBatch batch)
    {
        (Tensor outputs, Tensor targets) = MetricInputs.Require(batch, Name);
        if (_matrix.IsEmpty && classNames is not null && classNames.Count != outputs.shape[1])
        {
            throw new InvalidOperationException(
                $"Metrics.ConfusionMatrix was given {classNames.Count} class names but the outputs score {outputs.shape[1]} classes; pass one name per output column.");
        }

        _matrix.Update(outputs, targets, batch.IgnoreIndex);
    }

    public double Compute() => _matrix.IsEmpty ? double.NaN : Report().Accuracy;

    public ClassificationReport Report() => new(_matrix.ReadMatrix(), _matrix.Classes, classNames);
}

/// <summary>
/// L1 expected calibration error as torchmetrics' <c>MulticlassCalibrationError(norm="l1")</c>: confidence = max softmax
/// probability, equal-width bins from <c>linspace(0, 1, B + 1)</c> with <c>bucketize(right=True) − 1</c>, so bins are
/// [lo, hi) and a confidence of exactly 1 gets a slot of its own; ECE = Σ_b |Σ correct − Σ confidence|_b / N.
/// </summary>
internal sealed class CalibrationErrorMetric(int bins) : IReportingMetric<CalibrationReport>
{
    private Tensor? _state;
    private Tensor? _boundaries;
    private bool _seen;

    public string Name => "ece";

    public bool HigherIsBetter => false;

    public void Reset()
    {
        _seen = false;
        _state?.zero_();
    }

    public void Update(in MetricBatch batch)
    {
        (Tensor outputs, Tensor targets) = MetricInputs.Require(batch, Name);
        int slots = bins + 1;
        Prepare(outputs.device, slots);
        using var scope = torch.NewDisposeScope();

        // Outputs are logits (the objectives' contract), so softmax always applies; torchmetrics skips it when every
        // score already lies in [0, 1].
        Tensor confidence = nn.functional.softmax(outputs.to(ScalarType.Float32), -1).max(-1).values;
        using Scalar width = slots.ToScalar();
        using Scalar twice = (2L * slots).ToScalar();
        Tensor valid = Scalars.NotEqual(targets, batch.IgnoreIndex);
        Tensor weight = valid.to(ScalarType.Float64);
        Tensor correct = outputs.argmax(-1).eq(targets).to(ScalarType.Float64) * weight;
        Tensor slot = torch.bucketize(confidence, _boundaries!, false, true).add(Scalars.MinusOne, Scalars.One);
        Tensor index = torch.cat([slot, slot.add(width, Scalars.One), slot.add(twice, Scalars.One)]);
        Tensor amounts = torch.cat([weight, confidence.to(ScalarType.Float64) * weight, correct]);
        _state!.scatter_add_(0, index, amounts);
        _seen = true;
    }

    public double Compute() => _seen ? Report().ExpectedCalibrationError : double.NaN;

    public CalibrationReport Report()
    {
        if (!_seen || _state is null)
        {
            throw new InvalidOperationException($"Metric '{Name}' has seen no batch since Reset(); evaluate at least one batch before reading it.");
        }

        using var scope = torch.NewDisposeScope();
        double[] data = _state.cpu().data<double>().ToArray();
        return new CalibrationReport(bins, data);
    }

    private void Prepare(Device device, int slots)
    {
        if (_state is not null && MetricInputs.SameDevice(_state.device, device))
        {
            return;
        }

        if (_seen)
        {
            throw new InvalidOperationException($"Metric '{Name}' received batches on two devices ({_state!.device} and {device}) in one evaluation; keep the model on one device.");
        }

        _state?.Dispose();
        _boundaries?.Dispose();
        _state = torch.zeros(3L * slots, dtype: ScalarType.Float64, device: device).DetachFromDisposeScope();
        _boundaries = torch.linspace(0, 1, slots, dtype: ScalarType.Float32, device: device).DetachFromDisposeScope();
    }
}
