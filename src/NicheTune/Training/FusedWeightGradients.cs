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
/// Buffers and probes are kept for the run: a step allocates neither. Thread-static like <see cref="MixedPrecision"/>:
/// a loss computed on another thread is unaffected.
/// </remarks>
internal sealed class FusedWeightGradients : IDisposable
{
    [ThreadStatic]
    private static FusedWeightGradients? t_current;

    private readonly List<Slot> _slots = [];
    private readonly List<(Slot Slot, Tensor Weight)> _pending = [];

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
    /// Defers <paramref name="weight"/>'s gradient to <see cref="Apply"/>: returns the buffer the loss writes the gradient
    /// into (uninitialised; one kept from an earlier step when one is free) and the probe to add to the loss (value zero,
    /// of type <paramref name="lossType"/>, derivative the multiplier).
    /// </summary>
    public (Tensor Buffer, Tensor Probe) Defer(Tensor weight, ScalarType lossType)
    {
        Slot slot = FreeSlot(weight) ?? NewSlot(weight);
        if (slot.Probe is not { } probe || probe.dtype != lossType)
        {
            slot.Probe?.Dispose();
            probe = torch.zeros([], dtype: lossType, device: weight.device, requires_grad: true);
            probe.DetachFromDisposeScope();
            slot.Probe = probe;
        }
        else
        {
            probe.grad = null;
        }

        _pending.Add((slot, weight));
        return (slot.Buffer, probe);
    }

    /// <summary>
    /// After backward: adds each pending gradient, times its probe's gradient, into its weight's <c>.grad</c> (or makes
    /// it the <c>.grad</c>). A loss that backward did not reach (its probe has no gradient) contributes nothing.
    /// </summary>
    public void Apply()
    {
        try
        {
            foreach ((Slot slot, Tensor weight) in _pending)
            {
                using Tensor? factor = slot.Probe!.grad;
                if (factor is null)
                {
                    continue;
                }

                // Autograd's arithmetic: the incoming gradient times the saved gradient, then accumulated.
                slot.Buffer.mul_(factor);
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
    public void Discard() => _pending.Clear();

    /// <summary>Frees the kept buffers and probes; a weight whose <c>.grad</c> is one of the buffers keeps that tensor.</summary>
    public void Dispose()
    {
        Discard();
        foreach (Slot slot in _slots)
        {
            slot.Dispose();
        }

        _slots.Clear();
    }

    // A kept buffer shaped like the weight that is neither pending nor still the .grad of the weight it was lent to.
    private Slot? FreeSlot(Tensor weight)
    {
        for (int i = _slots.Count - 1; i >= 0; i--)
        {
            Slot slot = _slots[i];
            if (_pending.Exists(p => ReferenceEquals(p.Slot, slot)))
            {
                continue;
            }

            if (slot.LentTo is { IsInvalid: true })
            {
                // Lent to a weight handle since disposed, so it cannot be checked: dropped (the gradient, if still
                // referenced, keeps its memory), so the pool never grows with transient handles.
                slot.Dispose();
                _slots.RemoveAt(i);
                continue;
            }

            if (!slot.Buffer.shape.SequenceEqual(weight.shape) || slot.Buffer.dtype != weight.dtype
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

            return slot;
        }

        return null;
    }

    private Slot NewSlot(Tensor weight)
    {
        Tensor buffer = torch.empty_like(weight);
        buffer.DetachFromDisposeScope();
        var slot = new Slot(buffer);
        _slots.Add(slot);
        return slot;
    }

    private sealed class Slot(Tensor buffer) : IDisposable
    {
        public Tensor Buffer { get; } = buffer;

        public Tensor? Probe { get; set; }

        // The weight whose .grad this buffer became; the buffer is free again once that .grad is cleared.
        public Tensor? LentTo { get; set; }

        public void Dispose()
        {
            Buffer.Dispose();
            Probe?.Dispose();
        }
    }

    /// <summary>Restores the previous sink when disposed.</summary>
    internal readonly struct Scope(FusedWeightGradients? previous) : IDisposable
    {
        public void Dispose() => t_current = previous;
    }
}
