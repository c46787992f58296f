using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Training;

/// <summary>
/// Mean cross-entropy of <c>linear(hidden, weight, bias)</c> against targets, computed a chunk of rows at a time so the
/// [N, V] logits never exist: each chunk's logits are written into one reused buffer, turned into the loss and, in
/// the same pass, into the gradient of the logits (softmax − smoothed one-hot), which two matrix products fold into the
/// gradients of the hidden states and of the weight before the next chunk overwrites the buffer. Rows whose target is
/// the ignore index are dropped before any product. The gradients are computed in the forward pass and handed to
/// autograd in backward, scaled by the incoming gradient — so the step does the same three products as the unfused
/// loss (logits, ∂h, ∂W), without the gigabyte-sized temporaries and their page faults.
/// </summary>
/// <remarks>
/// Loss and gradients equal PyTorch's <c>cross_entropy(…, ignore_index, label_smoothing)</c> with mean reduction:
/// per row, (1 − ε)(lse − z_y) + ε(lse − mean z); ∂z = softmax(z) − (1 − ε)·onehot(y) − ε/V, divided by the number of
/// rows kept. With every target ignored the loss is NaN, as PyTorch's is.
/// </remarks>
internal sealed class FusedLinearCrossEntropy : torch.autograd.SingleTensorFunction<FusedLinearCrossEntropy>
{
    // Elements of one chunk's logits: 8M floats = 32 MiB (163 rows of a 50k vocabulary). Measured on the benchmark
    // model's output layer (docs/performance.md): 2M 1.19 s, 4M 1.04 s, 8M 0.93 s, 16M 1.03 s per forward + backward.
    internal const long DefaultChunkElements = 8L << 20;

    public override string Name => nameof(FusedLinearCrossEntropy);

    /// <summary>The loss; differentiable with respect to <paramref name="hidden"/>, <paramref name="weight"/> and <paramref name="bias"/>.</summary>
    /// <param name="hidden">[N, d] hidden states.</param>
    /// <param name="weight">[V, d] output projection.</param>
    /// <param name="bias">[V] output bias or <see langword="null"/>.</param>
    /// <param name="targets">[N] int64 class indices, <paramref name="ignoreIndex"/> where a row has no target.</param>
    /// <param name="labelSmoothing">ε in [0, 1).</param>
    /// <param name="ignoreIndex">The target value of rows to skip.</param>
    /// <param name="chunkElements">Size of the logits buffer in elements; a chunk holds chunkElements / V rows.</param>
    public static Tensor Compute(Tensor hidden, Tensor weight, Tensor? bias, Tensor targets, double labelSmoothing, long ignoreIndex = TokenBatch.IgnoreIndex, long chunkElements = DefaultChunkElements)
    {
        if (hidden.dim() != 2 || weight.dim() != 2 || hidden.shape[1] != weight.shape[1])
        {
            throw new ArgumentException($"The fused loss needs hidden states [N, d] and a weight [V, d]; got [{string.Join(", ", hidden.shape)}] and [{string.Join(", ", weight.shape)}].", nameof(hidden));
        }

        if (targets.dim() != 1 || targets.shape[0] != hidden.shape[0])
        {
            throw new ArgumentException($"The fused loss needs one target per hidden row: {hidden.shape[0]} rows but targets of shape [{string.Join(", ", targets.shape)}].", nameof(targets));
        }

        bool grad = torch.is_grad_enabled();
        bool needHidden = grad && hidden.requires_grad;
        bool needWeight = grad && weight.requires_grad;
        bool needBias = grad && bias is not null && bias.requires_grad;
        return bias is null
            ? apply(hidden, weight, targets, labelSmoothing, ignoreIndex, needHidden, needWeight, needBias, chunkElements, false)
            : apply(hidden, weight, targets, labelSmoothing, ignoreIndex, needHidden, needWeight, needBias, chunkElements, true, bias);
    }

    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var hidden = (Tensor)vars[0];
        var weight = (Tensor)vars[1];
        var targets = (Tensor)vars[2];
        double epsilon = (double)vars[3];
        long ignoreIndex = (long)vars[4];
        bool needHidden = (bool)vars[5];
        bool needWeight = (bool)vars[6];
        bool needBias = (bool)vars[7];
        long chunkElements = (long)vars[8];
        bool hasBias = (bool)vars[9];
        Tensor? bias = hasBias ? (Tensor)vars[10] : null;

        long rows = hidden.shape[0];
        long width = hidden.shape[1];
        long vocabulary = weight.shape[0];
        ctx.save_data("hasBias", hasBias);

        using Tensor keep = targets.ne(ignoreIndex);
        long count = keep.sum().item<long>();
        Tensor h = hidden;
        Tensor y = targets;
        Tensor? index = null;
        if (count < rows)
        {
            index = keep.nonzero().squeeze(1);
            h = hidden.index_select(0, index);
            y = targets.index_select(0, index);
        }

        Tensor? gradHidden = needHidden ? torch.empty(count, width, dtype: hidden.dtype, device: hidden.device) : null;
        // The first chunk's product overwrites (beta 0), so the weight gradient needs no zero fill; with no rows it is zero.
        Tensor? gradWeight = needWeight ? (count > 0 ? torch.empty_like(weight) : torch.zeros_like(weight)) : null;
        Tensor? gradBias = needBias ? torch.zeros_like(bias!) : null;
        Tensor total = torch.zeros(1, dtype: ScalarType.Float64, device: hidden.device);
        bool backward = needHidden || needWeight || needBias;
        if (count > 0)
        {
            long chunk = Math.Clamp(chunkElements / vocabulary, 1, count);
            Tensor buffer = BufferCache.Rent(chunk * vocabulary, hidden.dtype, hidden.device);
            try
            {
                using Tensor weightT = weight.t();
                double scale = 1.0 / count;
                for (long start = 0; start < count; start += chunk)
                {
                    long length = Math.Min(chunk, count - start);
                    using var scope = torch.NewDisposeScope();
                    Tensor hc = h.narrow(0, start, length);
                    Tensor yc = y.narrow(0, start, length).unsqueeze(1);
                    Tensor z = buffer.narrow(0, 0, length * vocabulary).view(length, vocabulary);
                    if (bias is null)
                    {
                        z.addmm_(hc, weightT, beta: 0, alpha: 1);
                    }
                    else
                    {
                        z.copy_(bias.expand(length, vocabulary));
                        z.addmm_(hc, weightT, beta: 1, alpha: 1);
                    }

                    // log_softmax is one vectorised kernel (max, sum of exponentials, subtract); the loss reads it and,
                    // exponentiated in place, it becomes the softmax the gradient needs — two passes over the chunk
                    // fewer than logsumexp + subtract + exp (measured: docs/performance.md).
                    Tensor logProbabilities = z.log_softmax(1);
                    Tensor rowLoss = logProbabilities.gather(1, yc).squeeze(1).neg_();
                    if (epsilon > 0)
                    {
                        rowLoss = rowLoss.mul_(1 - epsilon).add_(logProbabilities.mean([1]), alpha: -epsilon);
                    }

                    total.add_(rowLoss.sum(ScalarType.Float64));
                    if (!backward)
                    {
                        continue;
                    }

                    Tensor gradient = logProbabilities.exp_();
                    if (epsilon > 0)
                    {
                        gradient.sub_(epsilon / vocabulary);
                    }

                    gradient.scatter_add_(1, yc, torch.full(length, 1, -(1 - epsilon), dtype: z.dtype, device: z.device));
                    gradHidden?.narrow(0, start, length).addmm_(gradient, weight, beta: 0, alpha: (float)scale);
                    gradWeight?.addmm_(gradient.t(), hc, beta: start == 0 ? 0 : 1, alpha: (float)scale);
                    // sum(0) would bind to sum(ScalarType) — the literal 0 converts to ScalarType.Byte; name the dimension.
                    gradBias?.add_(gradient.sum(dim: 0), alpha: scale);
                }
            }
            finally
            {
                BufferCache.Return(buffer);
            }
        }

        if (gradHidden is not null && index is not null)
        {
            Tensor full = torch.zeros(rows, width, dtype: hidden.dtype, device: hidden.device);
            full.index_copy_(0, index, gradHidden);
            gradHidden = full;
        }

        // Only real tensors are saved; which of the three exist is recorded beside them.
        var saved = new List<Tensor>(3);
        foreach (Tensor? gradient in (ReadOnlySpan<Tensor?>)[gradHidden, gradWeight, gradBias])
        {
            if (gradient is not null)
            {
                saved.Add(gradient);
            }
        }

        ctx.save_data("present", new[] { gradHidden is not null, gradWeight is not null, gradBias is not null });
        ctx.save_for_backward(saved);
        return total.div_(count).to(hidden.dtype).squeeze(0);
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad_output)
    {
        List<Tensor> saved = ctx.get_saved_variables();
        var present = (bool[])ctx.get_data("present");
        bool hasBias = (bool)ctx.get_data("hasBias");
        bool unit = grad_output.item<float>() == 1f;
        var gradients = new Tensor?[3];
        for (int i = 0, next = 0; i < 3; i++)
        {
            if (present[i])
            {
                Tensor g = saved[next++];
                gradients[i] = unit ? g : g.mul(grad_output);
            }
        }

        // TorchSharp wants one entry per argument of apply, tensor or not: hidden, weight, then eight settings and the bias.
        var result = new List<Tensor>(new Tensor[hasBias ? 11 : 10]);
        result[0] = gradients[0]!;
        result[1] = gradients[1]!;
        if (hasBias)
        {
            result[10] = gradients[2]!;
        }

        return result;
    }

    // One logits buffer kept between steps. Freeing and re-allocating tens of megabytes every step costs page faults
    // (glibc hands blocks this large straight back to the kernel); a concurrent caller that finds the slot empty simply
    // allocates its own, and a larger request replaces the kept buffer, so the cache never holds more than one.
    internal static class BufferCache
    {
        private static readonly object Gate = new();
        private static Tensor? _kept;

        public static Tensor Rent(long elements, ScalarType dtype, Device device)
        {
            lock (Gate)
            {
                if (_kept is { } kept && kept.numel() >= elements && kept.dtype == dtype && kept.device_type == device.type && kept.device_index == device.index)
                {
                    _kept = null;
                    return kept;
                }
            }

            Tensor fresh = torch.empty(elements, dtype: dtype, device: device);
            fresh.DetachFromDisposeScope();
            return fresh;
        }

        public static void Return(Tensor buffer)
        {
            Tensor? dispose = buffer;
            lock (Gate)
            {
                if (_kept is null || _kept.numel() < buffer.numel())
                {
                    (dispose, _kept) = (_kept, buffer);
                }
            }

            dispose?.Dispose();
        }

        /// <summary>Frees the kept buffer (tests and memory-sensitive hosts).</summary>
        public static void Clear()
        {
            Tensor? kept;
            lock (Gate)
            {
                (kept, _kept) = (_kept, null);
            }

            kept?.Dispose();
        }
    }
}
