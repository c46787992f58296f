using FluentAssertions;
using NicheTune.Evaluation;
using NicheTune.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace NicheTune.Tests.Evaluation;

[Collection(TorchCollection.Name)]
public sealed class MetricTests
{
    private static double Run(IMetric metric, params MetricBatch[] batches)
    {
        metric.Reset();
        foreach (var b in batches)
        {
            metric.Update(b);
        }

        return metric.Compute();
    }

    private static MetricBatch Batch(float[,] logits, long[] targets)
    {
        using var scope = torch.NewDisposeScope();
        Tensor outputs = torch.tensor(logits);
        Tensor t = torch.tensor(targets);
        Tensor loss = nn.functional.cross_entropy(outputs, t);
        long count = targets.Count(x => x != -100);
        return new MetricBatch(loss.MoveToOuterDisposeScope(), count, outputs.MoveToOuterDisposeScope(), t.MoveToOuterDisposeScope());
    }

    [Fact]
    public void Perplexity_TwoBatchesOfDifferentSizes_IsTokenWeightedNotMeanOfBatches()
    {
        // Batch 1: one token with p = 1/2 (uniform over 2 classes) → NLL ln 2.
        // Batch 2: three tokens with p = 1/4 (uniform over 4 classes, padded to 4 columns) → NLL ln 4 each.
        // Token-weighted: exp((ln2 + 3 ln4) / 4) = exp(7 ln2 / 4) = 2^(7/4) ≈ 3.3636.
        // The mean of batch perplexities would be (2 + 4) / 2 = 3: wrong.
        var first = Batch(new float[,] { { 0, 0, -1e9f, -1e9f } }, [1]);
        var second = Batch(new float[,] { { 0, 0, 0, 0 }, { 0, 0, 0, 0 }, { 0, 0, 0, 0 }, { 5, 5, 5, 5 } }, [0, 1, 2, -100]);

        Run(Metrics.Perplexity(), first, second).Should().BeApproximately(Math.Pow(2, 7.0 / 4), 1e-5);
        Run(Metrics.Loss(), first, second).Should().BeApproximately(7 * Math.Log(2) / 4, 1e-5);
    }

    [Fact]
    public void Accuracy_SkipsIgnoredTargets()
    {
        // Predictions: argmax = 1, 0, 2, (ignored); targets 1, 1, 2, -100 → 2 of 3 right.
        var batch = Batch(new float[,] { { 0, 3, 1 }, { 4, 1, 0 }, { 0, 0, 9 }, { 9, 0, 0 } }, [1, 1, 2, -100]);
        Run(Metrics.Accuracy(), batch).Should().BeApproximately(2.0 / 3, 1e-9);
    }

    [Fact]
    public void Metrics_Reset_ClearsPreviousPasses()
    {
        var metric = Metrics.Accuracy();
        Run(metric, Batch(new float[,] { { 0, 1 } }, [0])).Should().Be(0);
        Run(metric, Batch(new float[,] { { 0, 1 } }, [1])).Should().Be(1);
    }

    [Fact]
    public void Accuracy_WithoutOutputs_ExplainsWhatIsMissing()
    {
        var metric = Metrics.Accuracy();
        metric.Reset();
        using var loss = torch.tensor(1.0f);
        var update = () => metric.Update(new MetricBatch(loss, 1));
        update.Should().Throw<InvalidOperationException>().WithMessage("*outputs and targets*");
    }
}
