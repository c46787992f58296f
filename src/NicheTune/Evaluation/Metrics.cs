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
        Value.add_(amount.to(ScalarType.Float64).reshape(1));
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

        _sum.Add(batch.Loss.detach() * batch.Count);
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
            _sum.Add(batch.Loss.detach() * batch.Count);
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

        Tensor valid = targets.ne(batch.IgnoreIndex);
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
