using FluentAssertions;
using NicheTune.Tests.Support;
using NicheTune.Training;
using TorchSharp;
using Xunit;
using static NicheTune.Tests.Support.FusedLossCase;
using static TorchSharp.torch;

namespace NicheTune.Tests.Training;

/// <summary>
/// The fused loss's weight gradient delivered after backward (a Trainer's step) must be exactly what autograd delivers:
/// bit for bit, scaled, accumulated and summed with other terms the same way, and from buffers that are reused.
/// </summary>
[Collection(TorchCollection.Name)]
public sealed class FusedWeightGradientsTests
{
    public static TheoryData<bool, bool, double, long, double> Cases() => new()
    {
        // bias, ignored rows, label smoothing, chunk elements, factor the loss is multiplied by before backward
        { false, false, 0.0, 1L << 20, 1.0 },
        { true, true, 0.1, 3 * Vocabulary, 1.0 },
        { false, true, 0.0, 5 * Vocabulary, 0.25 },
        { true, false, 0.05, 1, 3.0 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Apply_GivesTheGradientsAutogradGives_BitForBit(bool withBias, bool ignoreSome, double smoothing, long chunkElements, double factor)
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, weight, bias, targets) = Inputs(seed: 31, withBias, ignoreSome);
        using Tensor scale = torch.tensor((float)factor);

        FusedLinearCrossEntropy.Compute(hidden, weight, bias, targets, smoothing, chunkElements: chunkElements).mul(scale).backward();
        var autograd = Grads(hidden, weight, bias);

        using var sink = new FusedWeightGradients();
        Tensor loss = InSink(sink, () => FusedLinearCrossEntropy.Compute(hidden, weight, bias, targets, smoothing, chunkElements: chunkElements));

        loss.mul(scale).backward();
        weight.grad.Should().BeNull("the weight gradient waits for Apply");
        sink.Apply();
        var deferred = Grads(hidden, weight, bias);

        for (int i = 0; i < autograd.Count; i++)
        {
            Identical(deferred[i], autograd[i]).Should().BeTrue($"gradient {i} must be autograd's, bit for bit");
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Apply_AccumulatesAcrossMicroBatches_AsAutogradDoes(bool withOtherTerm)
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, weight, _, targets) = Inputs(seed: 32, withBias: false, ignoreSome: true);
        Tensor otherTargets = targets.flip(0);
        using Tensor half = torch.tensor(0.5f);
        using Tensor decay = torch.tensor(0.01f);

        // Two micro-batches of half weight each; with the other term the second also penalises the weight itself (a tied
        // or regularised head), whose gradient autograd delivers during backward and Apply adds to afterwards.
        Tensor Second(Tensor loss) => withOtherTerm ? loss.add(weight.square().sum().mul(decay)) : loss;
        FusedLinearCrossEntropy.Compute(hidden, weight, null, targets, 0.0).mul(half).backward();
        Second(FusedLinearCrossEntropy.Compute(hidden, weight, null, otherTargets, 0.0)).mul(half).backward();
        Tensor autograd = weight.grad!.clone();
        weight.grad = null;
        hidden.grad = null;

        using var sink = new FusedWeightGradients();
        foreach (Tensor y in new[] { targets, otherTargets })
        {
            Tensor loss = InSink(sink, () => FusedLinearCrossEntropy.Compute(hidden, weight, null, y, 0.0));

            (ReferenceEquals(y, targets) ? loss : Second(loss)).mul(half).backward();
            sink.Apply();
        }

        if (withOtherTerm)
        {
            // Three addends summed in another order ((G + b) + a against G + (a + b)): equal up to fp32 rounding.
            RelativeError(weight.grad!, autograd).Should().BeLessThan(1e-6);
        }
        else
        {
            Identical(weight.grad!, autograd).Should().BeTrue("micro-batches accumulate as autograd accumulates them");
        }
    }

    [Fact]
    public void Rent_ReusesItsBuffers_WhetherTheOptimizerClearsOrZeroesTheGradient()
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, weight, _, targets) = Inputs(seed: 33, withBias: false, ignoreSome: false);
        FusedLinearCrossEntropy.Compute(hidden, weight, null, targets, 0.0).backward();
        Tensor expected = weight.grad!.clone();
        weight.grad = null;

        using var sink = new FusedWeightGradients();
        foreach (bool clear in new[] { true, false })
        {
            for (int step = 0; step < 5; step++)
            {
                Tensor loss = InSink(sink, () => FusedLinearCrossEntropy.Compute(hidden, weight, null, targets, 0.0));

                loss.backward();
                sink.Apply();
                Identical(weight.grad!, expected).Should().BeTrue($"step {step} ({(clear ? "cleared" : "zeroed")} gradients)");
                if (clear)
                {
                    weight.grad = null;
                }
                else
                {
                    using Tensor grad = weight.grad!;
                    grad.zero_();
                }
            }
        }

        sink.KeptBuffers.Should().BeLessThanOrEqualTo(2, "a cleared gradient's buffer is reused; a zeroed one is kept, and one more is the scratch");
    }

    [Fact]
    public void Compute_ComputedWeight_KeepsTheAutogradPath()
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, leaf, _, targets) = Inputs(seed: 34, withBias: false, ignoreSome: false);
        FusedLinearCrossEntropy.Compute(hidden, leaf, null, targets, 0.0).backward();
        Tensor expected = leaf.grad!.clone();
        leaf.grad = null;

        using var sink = new FusedWeightGradients();
        // A merged adapter or a view: the gradient must flow through autograd to the tensors it is computed from.
        Tensor loss = InSink(sink, () => FusedLinearCrossEntropy.Compute(hidden, leaf.mul(torch.ones([], dtype: leaf.dtype)), null, targets, 0.0));

        loss.backward();
        leaf.grad.Should().NotBeNull("autograd delivers it without Apply");
        sink.KeptBuffers.Should().Be(0);
        sink.Apply();
        RelativeError(leaf.grad!, expected).Should().BeLessThan(1e-6);
    }

    [Fact]
    public void Apply_LossThatBackwardNeverReached_ChangesNothingAndFreesItsBuffer()
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, weight, _, targets) = Inputs(seed: 35, withBias: false, ignoreSome: false);
        using var sink = new FusedWeightGradients();
        for (int i = 0; i < 3; i++)
        {
            _ = InSink(sink, () => FusedLinearCrossEntropy.Compute(hidden, weight, null, targets, 0.0));

            sink.Apply();
        }

        weight.grad.Should().BeNull();
        sink.KeptBuffers.Should().Be(1);
    }

    [Fact]
    public async Task Compute_OnAnotherThread_IsUnaffectedByThisThreadsSink()
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, weight, _, targets) = Inputs(seed: 36, withBias: false, ignoreSome: false);
        using var sink = new FusedWeightGradients();
        Task other;
        using (sink.Enter())
        {
            other = Task.Factory.StartNew(
                () =>
                {
                    using var inner = torch.NewDisposeScope();
                    FusedLinearCrossEntropy.Compute(hidden, weight, null, targets, 0.0).backward();
                },
                CancellationToken.None,
                TaskCreationOptions.LongRunning,
                TaskScheduler.Default);
        }

        await other;

        weight.grad.Should().NotBeNull("the other thread's loss went through autograd");
        sink.KeptBuffers.Should().Be(0);
    }

    // The loss as a Trainer's forward pass computes it: with the sink current.
    private static Tensor InSink(FusedWeightGradients sink, Func<Tensor> loss)
    {
        using (sink.Enter())
        {
            return loss();
        }
    }
}
