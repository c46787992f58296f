using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune;

/// <summary>
/// Scalars that libtorch reads while a call is in flight, kept alive by something other than the finalizer.
/// </summary>
/// <remarks>
/// TorchSharp turns every number passed to a tensor method (<c>t * 0.5</c>, <c>addmm_(…, beta: 0)</c>, and the implicit
/// <c>alpha = 1</c> of <c>a + b</c> and <c>a.add_(b)</c>) into a native <see cref="Scalar"/> whose only owner is its
/// finalizer, and passes the handle on without keeping the object alive. A garbage collection during the native call
/// (another thread allocating is enough) can run that finalizer and free the scalar while libtorch reads it: the call
/// fails with libtorch's "Expected false to be true" from <c>Scalar::toFloat</c>, or silently computes with a wrong value
/// (docs/performance.md, "The optimizer step: blockwise AdamW", where the race and its fix are measured). The library therefore never passes a number where
/// TorchSharp would make such a scalar: constants come from here (created once, rooted by these static fields, never
/// finalized), and per-call values are created with <see cref="ScalarExtensionMethods.ToScalar(double)"/> in a
/// <c>using</c> declaration, which keeps them alive until the call has returned. A test scans the assembly's IL for any
/// call that would create one (<c>FinalizerOwnedScalarTests</c>).
/// </remarks>
internal static class Scalars
{
    /// <summary>1: the alpha of a plain <c>a.add(b, Scalars.One)</c>.</summary>
    public static readonly Scalar One = 1.ToScalar();

    /// <summary>0: the beta of a product that overwrites its output.</summary>
    public static readonly Scalar Zero = 0.ToScalar();

    /// <summary>−1: added to shift indices down by one.</summary>
    public static readonly Scalar MinusOne = (-1).ToScalar();

    /// <summary>2: the exponent of a square.</summary>
    public static readonly Scalar Two = 2.ToScalar();

    /// <summary>The target value of positions without a target (<see cref="Training.TokenBatch.IgnoreIndex"/>).</summary>
    public static readonly Scalar IgnoreIndex = Training.TokenBatch.IgnoreIndex.ToScalar();

    /// <summary>−∞: the fill of masked-out logits.</summary>
    public static readonly Scalar NegativeInfinity = double.NegativeInfinity.ToScalar();

    /// <summary><see langword="false"/>: the fill of a boolean mask.</summary>
    public static readonly Scalar False = false.ToScalar();

    /// <summary><c>tensor != value</c>, with the scalar alive for the call.</summary>
    public static Tensor NotEqual(Tensor tensor, long value)
    {
        using Scalar scalar = value.ToScalar();
        return tensor.ne(scalar);
    }

    /// <summary><c>tensor * value</c>, with the scalar alive for the call.</summary>
    public static Tensor Times(Tensor tensor, double value)
    {
        using Scalar scalar = value.ToScalar();
        return tensor.mul(scalar);
    }

    /// <summary><c>tensor / value</c>, with the scalar alive for the call.</summary>
    public static Tensor DividedBy(Tensor tensor, double value)
    {
        using Scalar scalar = value.ToScalar();
        return tensor.div(scalar);
    }
}
