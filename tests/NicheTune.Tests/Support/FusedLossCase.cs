using NicheTune.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Tests.Support;

/// <summary>Inputs and comparisons shared by the fused loss's tests: a small output layer, its gradients, and distances.</summary>
internal static class FusedLossCase
{
    public const long Rows = 37;
    public const long Width = 16;
    public const long Vocabulary = 101;

    /// <summary>Hidden states, weight and (optionally) bias that require gradients, and targets with every third row ignored when asked.</summary>
    public static (Tensor Hidden, Tensor Weight, Tensor? Bias, Tensor Targets) Inputs(int seed, bool withBias, bool ignoreSome)
    {
        torch.manual_seed(seed);
        Tensor hidden = torch.randn(Rows, Width).requires_grad_(true);
        Tensor weight = (torch.randn(Vocabulary, Width) * 0.5).requires_grad_(true);
        Tensor? bias = withBias ? (torch.randn(Vocabulary) * 0.1).requires_grad_(true) : null;
        Tensor targets = torch.randint(0, Vocabulary, Rows, dtype: ScalarType.Int64);
        if (ignoreSome)
        {
            targets[TensorIndex.Slice(0, null, 3)] = torch.tensor((long)TokenBatch.IgnoreIndex);
        }

        return (hidden, weight, bias, targets);
    }

    /// <summary>Copies of the gradients (hidden, weight, bias), which are then cleared for the next computation.</summary>
    public static List<Tensor> Grads(Tensor hidden, Tensor weight, Tensor? bias)
    {
        var grads = new List<Tensor> { hidden.grad!.clone(), weight.grad!.clone() };
        hidden.grad = null;
        weight.grad = null;
        if (bias is not null)
        {
            grads.Add(bias.grad!.clone());
            bias.grad = null;
        }

        return grads;
    }

    public static double RelativeError(Tensor actual, Tensor expected) =>
        (actual - expected).abs().max().item<float>() / Math.Max(expected.abs().max().item<float>(), 1e-12);

    // Tensor.equal in TorchSharp is the element-wise eq, not torch.equal.
    public static bool Identical(Tensor a, Tensor b)
    {
        using var scope = torch.NewDisposeScope();
        return a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
    }
}
