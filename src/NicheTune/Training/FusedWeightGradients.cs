using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Training;

/// <summary>
/// The fused loss's output-weight gradient, kept out of autograd during a Trainer's step: the loss computes it into a
/// buffer kept between steps, and after <c>backward()</c> the Trainer adds it, times the multiplier autograd gave the
/// loss, into the weight's <c>.grad</c> (or makes the buffer the <c>.grad</c> when there is none). Through autograd the
/// same gradient took two fresh weight-sized tensors a step — the forward pass's result, and its product with the
/// incoming gradient that became <c>.grad</c> — 2 × 51 MB and ≈ 25,000 page faults a step on the benchmark model.
/// </summary>
/// <remarks>
/// The multiplier comes from a probe: a zero-valued scalar leaf added to the loss, whose gradient after backward is
/// exactly the factor autograd would have multiplied the weight gradient by (1, 1/k with gradient accumulation, any
/// weighting of the loss in a sum). The arithmetic is autograd's: the buffer times that factor, then added to an
/// existing gradient — bit-identical results. Only a leaf weight (a parameter) is deferred; a computed weight (a
/// merged adapter, a view) keeps the autograd path, as does every use of the loss outside a Trainer's step.
/// Thread-static like <see cref="MixedPrecision"/>: a loss computed on another thread is unaffected.
/// </remarks>
internal sealed class FusedWeightGradients : IDisposable
{
    [ThreadStatic]
    private static FusedWeightGradients? t_current;

    private readonly List<Slot> _slots = [];
    private readonly List<(Slot Slot, Tensor Weight, Tensor Probe)> _pending = [];

    /// <summary>The gradients of the current thread's step, or <see langword="null"/> outside a Trainer's forward pass.</summary>
    public static FusedWeightGradients? Current => t_current;

    /// <summary>How many weight-sized buffers are kept (tests: the pool must not grow step after step).</summary>
    internal int KeptBuffers => _slots.Count;

    /// <summary>Makes this the current thread's sink until the returned scope is disposed.</summary>
    public Scope Enter()
    {
        FusedWeightGradients? previous = t_current;
        t_current = this;
        return new Scope(previous);
    }

    /// <summary>
    /// A buffer shaped like <paramref name="weight"/> for this step's gradient: one kept from an earlier step when one is
    /// free (not awaiting <see cref="Apply"/>, and not still the <c>.grad</c> of the weight it was lent to), else a new one.
    /// </summary>
    public Tensor Rent(Tensor weight)
    {
        // A buffer lent to a weight handle that has since been disposed cannot be checked: it is dropped from the pool
        // (the gradient, if still referenced, keeps its memory), so the pool never grows with transient handles.
        _slots.RemoveAll(slot =>
        {
            bool lost = !slot.Pending && slot.LentTo is { IsInvalid: true };
            if (lost)
            {
                slot.Buffer.Dispose();
            }

            return lost;
        });
        foreach (Slot slot in _slots)
        {
            if (slot.Pending || !slot.Buffer.shape.SequenceEqual(weight.shape) || slot.Buffer.dtype != weight.dtype
                || slot.Buffer.device_type != weight.device_type || slot.Buffer.device_index != weight.device_index)
            {
                continue;
            }

            if (slot.LentTo is { } owner)
            {
                using Tensor? grad = owner.grad;
                if (grad is not null)
                {
                    // Still (or possibly) the weight's gradient: an optimizer that zeroes gradients in place keeps it.
                    continue;
                }

                slot.LentTo = null;
            }

            slot.Pending = true;
            return slot.Buffer;
        }

        Tensor fresh = torch.empty_like(weight);
        fresh.DetachFromDisposeScope();
        _slots.Add(new Slot(fresh) { Pending = true });
        return fresh;
    }

    /// <summary>Gives back a rented buffer that will hold no gradient (the loss failed before registering it).</summary>
    public void Return(Tensor buffer)
    {
        if (_slots.Find(s => ReferenceEquals(s.Buffer, buffer)) is { } slot && !_pending.Exists(p => ReferenceEquals(p.Slot, slot)))
        {
            slot.Pending = false;
        }
    }

    /// <summary>
    /// Records that <paramref name="buffer"/> (from <see cref="Rent"/>) holds the loss's gradient for
    /// <paramref name="weight"/>, and returns the probe to add to the loss (value zero, derivative the multiplier).
    /// </summary>
    public Tensor Register(Tensor weight, Tensor buffer, ScalarType dtype)
    {
        Slot slot = _slots.Find(s => ReferenceEquals(s.Buffer, buffer))
            ?? throw new ArgumentException("The buffer was not rented from this sink.", nameof(buffer));
        Tensor probe = torch.zeros([], dtype: dtype, device: buffer.device, requires_grad: true);
        probe.DetachFromDisposeScope();
        _pending.Add((slot, weight, probe));
        return probe;
    }

    /// <summary>
    /// After backward: adds each pending gradient, times its probe's gradient, into its weight's <c>.grad</c> (or makes
    /// it the <c>.grad</c>). A loss that backward did not reach (its probe has no gradient) contributes nothing.
    /// </summary>
    public void Apply()
    {
        try
        {
            foreach ((Slot slot, Tensor weight, Tensor probe) in _pending)
            {
                using Tensor? factor = probe.grad;
                if (factor is null)
                {
                    continue;
                }

                // Autograd's arithmetic: the incoming gradient times the saved gradient, then accumulated. A factor of
                // exactly 1 (plain backward, no accumulation) leaves the values unchanged, so the pass is skipped on CPU.
                if (factor.device_type != DeviceType.CPU || factor.item<float>() != 1f)
                {
                    slot.Buffer.mul_(factor);
                }

                using Tensor? grad = weight.grad;
                if (grad is null)
                {
                    weight.grad = slot.Buffer;
                    slot.LentTo = weight;
                }
                else
                {
                    grad.add_(slot.Buffer, Scalars.One);
                }
            }
        }
        finally
        {
            Discard();
        }
    }

    /// <summary>Drops the pending gradients without applying them (a step that failed before or during backward).</summary>
    public void Discard()
    {
        foreach ((Slot slot, _, Tensor probe) in _pending)
        {
            slot.Pending = false;
            probe.Dispose();
        }

        _pending.Clear();
    }

    /// <summary>Frees the kept buffers; a weight whose <c>.grad</c> is one of them keeps that tensor.</summary>
    public void Dispose()
    {
        Discard();
        foreach (Slot slot in _slots)
        {
            slot.Buffer.Dispose();
        }

        _slots.Clear();
    }

    private sealed class Slot(Tensor buffer)
    {
        public Tensor Buffer { get; } = buffer;

        public bool Pending { get; set; }

        // The weight whose .grad this buffer became; the buffer is free again once that .grad is cleared.
        public Tensor? LentTo { get; set; }
    }

    /// <summary>Restores the previous sink when disposed.</summary>
    internal readonly struct Scope(FusedWeightGradients? previous) : IDisposable
    {
        public void Dispose() => t_current = previous;
    }
}
