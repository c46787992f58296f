using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Training;

/// <summary>
/// Mean cross-entropy of <c>linear(hidden, weight, bias)</c> against targets, computed a chunk of rows at a time so the
/// [N, V] logits never exist: each chunk's logits are written into one reused buffer, turned into the loss and, in
/// the same pass, into the gradient of the logits (softmax − smoothed one-hot), which two matrix products fold into the
/// gradients of the hidden states and of the weight before the next chunk overwrites the buffer. Rows whose target is
/// the ignore index are dropped before any product. The gradients are computed in the forward pass (under no_grad) and
/// reach autograd through a surrogate term whose value is exactly zero and whose derivatives are those gradients:
/// loss = value + (s − detach(s)) with s = ⟨hidden, ∂h⟩ + ⟨weight, ∂W⟩ (+ ⟨bias, ∂b⟩), so backward scales them by the
/// incoming gradient like any other op. The step does the same three large products as the unfused loss (logits, ∂h,
/// ∂W), without the gigabyte-sized temporaries and their page faults. Inside a Trainer's step the weight's term is
/// replaced by a probe and ∂W goes into a buffer kept between steps, which the Trainer adds into <c>.grad</c> after
/// backward (<see cref="FusedWeightGradients"/>): no weight-sized allocation a step.
/// </summary>
/// <remarks>
/// Why no custom autograd function: TorchSharp's <c>autograd.Function</c> nodes keep a step's tensors alive until the
/// garbage collector finalizes them, and training allocates too little managed memory for collections to come often:
/// native memory grew by the hidden-gradient size every step (measured, 2 MiB/step on the benchmark model).
/// </remarks>
/// <remarks>
/// Loss and gradients equal PyTorch's <c>cross_entropy(…, ignore_index, label_smoothing)</c> with mean reduction:
/// per row, (1 − ε)(lse − z_y) + ε(lse − mean z); ∂z = softmax(z) − (1 − ε)·onehot(y) − ε/V, divided by the number of
/// rows kept. With every target ignored the loss is NaN, as PyTorch's is.
/// </remarks>
internal static class FusedLinearCrossEntropy
{
    // Elements of one chunk's logits: 24M floats = 96 MiB at most (2,048 rows of a 50k vocabulary run as 5 × 410 in 82 MiB).
    // Against 16M (7 × 293) it was 50–90 ms faster in each of ten interleaved rounds of the benchmark model's output
    // layer, and 32M–64M gained nothing more (docs/performance.md, "Chunk size").
    internal const long DefaultChunkElements = 24L << 20;

    // The default limit, or NICHETUNE_FUSED_CHUNK_ELEMENTS=N (1M–1G elements) for measurement on other machines.
    internal static readonly long ChunkElements = ReadSetting("NICHETUNE_FUSED_CHUNK_ELEMENTS", 1L << 20, 1L << 30, DefaultChunkElements);

    // Each chunk's logits rows start on a multiple of RowAlignment elements (256 bytes in fp32): the buffer's row stride is
    // V rounded up, and the products read and write it through that leading dimension. With GPT-2's V = 50,257 (odd) every
    // row was misaligned, and MKL's logits product ran 25 % slower (docs/performance.md, "Layouts"). Overridable with
    // NICHETUNE_FUSED_ROW_ALIGNMENT=N elements (1 turns the padding off), for measurement on other CPUs.
    internal static readonly long RowAlignment = ReadSetting("NICHETUNE_FUSED_ROW_ALIGNMENT", 1, 4096, 64);

    internal static long RowStride(long vocabulary) => (vocabulary + RowAlignment - 1) / RowAlignment * RowAlignment;

    // Rows per chunk: as many as the limit allows, then evened out over the chunks that takes — 2,048 rows under a
    // 667-row limit run as 4 × 512, not 3 × 667 + 47 (a thin last chunk runs the products far below their speed).
    internal static long ChunkRows(long count, long stride, long chunkElements)
    {
        long limit = Math.Max(1, chunkElements / stride);
        long chunks = Math.Max(1, (count + limit - 1) / limit);
        return Math.Max(1, (count + chunks - 1) / chunks);
    }

    // A whole-number setting from the environment within [min, max], else the default (measurement on other machines).
    private static long ReadSetting(string name, long min, long max, long fallback) =>
        long.TryParse(Environment.GetEnvironmentVariable(name), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long parsed)
            && parsed >= min && parsed <= max
            ? parsed
            : fallback;

    /// <summary>The loss; differentiable with respect to <paramref name="hidden"/>, <paramref name="weight"/> and <paramref name="bias"/>.</summary>
    /// <param name="hidden">[N, d] hidden states.</param>
    /// <param name="weight">[V, d] output projection.</param>
    /// <param name="bias">[V] output bias or <see langword="null"/>.</param>
    /// <param name="targets">[N] int64 class indices, <paramref name="ignoreIndex"/> where a row has no target.</param>
    /// <param name="labelSmoothing">ε in [0, 1).</param>
    /// <param name="ignoreIndex">The target value of rows to skip.</param>
    /// <param name="chunkElements">
    /// Most elements one chunk's logits may take (0: the default); the rows go in the fewest chunks under it, evened out
    /// (<see cref="ChunkRows"/>).
    /// </param>
    /// <param name="matmulType">
    /// <see cref="ScalarType.BFloat16"/> runs the three matrix products in bf16 (inputs rounded to bf16, products accumulated
    /// in fp32 by the kernel, results rounded to bf16) while the softmax, the loss and the accumulation of the weight
    /// gradient stay in fp32 — the split autocast makes; <see langword="null"/> keeps everything in the inputs' type.
    /// </param>
    public static Tensor Compute(Tensor hidden, Tensor weight, Tensor? bias, Tensor targets, double labelSmoothing, long ignoreIndex = TokenBatch.IgnoreIndex, long chunkElements = 0, ScalarType? matmulType = null)
    {
        if (hidden.dim() != 2 || weight.dim() != 2 || hidden.shape[1] != weight.shape[1])
        {
            throw new ArgumentException($"The fused loss needs hidden states [N, d] and a weight [V, d]; got [{string.Join(", ", hidden.shape)}] and [{string.Join(", ", weight.shape)}].", nameof(hidden));
        }

        if (targets.dim() != 1 || targets.shape[0] != hidden.shape[0])
        {
            throw new ArgumentException($"The fused loss needs one target per hidden row: {hidden.shape[0]} rows but targets of shape [{string.Join(", ", targets.shape)}].", nameof(targets));
        }

        if (chunkElements <= 0)
        {
            chunkElements = ChunkElements;
        }

        bool grad = torch.is_grad_enabled();
        bool needHidden = grad && hidden.requires_grad;
        bool needWeight = grad && weight.requires_grad;
        bool needBias = grad && bias is not null && bias.requires_grad;
        // In a Trainer's step a parameter's gradient goes into a kept buffer and reaches .grad after backward
        // (FusedWeightGradients); elsewhere, and for a computed weight, through autograd.
        // A deferred gradient's probe is pending from here; a failure before backward leaves it unreached, and the
        // Trainer discards it after the step.
        (Tensor Buffer, Tensor Probe)? deferred = needWeight && weight.is_leaf ? FusedWeightGradients.Current?.Defer(weight, hidden.dtype) : null;
        Tensor? gradWeight = needWeight ? deferred?.Buffer ?? torch.empty_like(weight) : null;
        Tensor value;
        Tensor? gradHidden, gradBias;
        using (torch.no_grad())
        {
            (value, gradHidden, gradBias) = matmulType is { } low && low != hidden.dtype
                ? RunLowPrecision(hidden, weight, bias, targets, labelSmoothing, ignoreIndex, chunkElements, needHidden, needBias, gradWeight, low)
                : Run(hidden, weight, bias, targets, labelSmoothing, ignoreIndex, chunkElements, needHidden, needBias, gradWeight);
        }

        if (!(needHidden || needWeight || needBias))
        {
            return value;
        }

        Tensor surrogate = torch.zeros([], dtype: hidden.dtype, device: hidden.device);
        if (gradHidden is not null)
        {
            surrogate = surrogate.add(hidden.reshape(-1).dot(gradHidden.reshape(-1)), Scalars.One);
        }

        if (deferred is { Probe: var probe })
        {
            surrogate = surrogate.add(probe, Scalars.One);
        }
        else if (gradWeight is not null)
        {
            surrogate = surrogate.add(weight.reshape(-1).dot(gradWeight.reshape(-1)), Scalars.One);
        }

        if (gradBias is not null)
        {
            surrogate = surrogate.add(bias!.dot(gradBias), Scalars.One);
        }

        return value.add(surrogate - surrogate.detach(), Scalars.One);
    }

    // gradWeight, when the weight's gradient is wanted, is an uninitialised [V, d] tensor the run fills.
    private static (Tensor Value, Tensor? GradHidden, Tensor? GradBias) Run(
        Tensor hidden, Tensor weight, Tensor? bias, Tensor targets, double epsilon, long ignoreIndex, long chunkElements, bool needHidden, bool needBias, Tensor? gradWeight)
    {
        long width = hidden.shape[1];
        long vocabulary = weight.shape[0];
        (long count, Tensor h, Tensor y, Tensor? index) = KeptRows(hidden, targets, ignoreIndex);

        Tensor? gradHidden = needHidden ? torch.empty(count, width, dtype: hidden.dtype, device: hidden.device) : null;
        // The first chunk's product overwrites (beta 0), so the weight gradient needs no zero fill; with no rows it is zero.
        if (count == 0)
        {
            gradWeight?.zero_();
        }

        Tensor? gradBias = needBias ? torch.zeros_like(bias!) : null;
        Tensor total = torch.zeros(1, dtype: ScalarType.Float64, device: hidden.device);
        bool backward = needHidden || gradWeight is not null || needBias;
        if (count > 0)
        {
            long stride = RowStride(vocabulary);
            long chunk = ChunkRows(count, stride, chunkElements);
            Tensor buffer = BufferCache.Rent(chunk * stride, hidden.dtype, hidden.device);
            try
            {
                using Tensor weightT = weight.t();
                double scale = 1.0 / count;
                // The chunk loop's numbers as scalars that live until the loop ends (see Scalars).
                using Scalar scaleScalar = scale.ToScalar();
                using Scalar hit = (-(1 - epsilon)).ToScalar();
                using Scalar? uniform = epsilon > 0 ? (epsilon / vocabulary).ToScalar() : null;
                for (long start = 0; start < count; start += chunk)
                {
                    long length = Math.Min(chunk, count - start);
                    using var scope = torch.NewDisposeScope();
                    Tensor hc = h.narrow(0, start, length);
                    Tensor yc = y.narrow(0, start, length).unsqueeze(1);
                    Tensor z = Rows(buffer, length, stride, vocabulary);
                    if (bias is null)
                    {
                        z.addmm_(hc, weightT, beta: 0, alpha: 1);
                    }
                    else
                    {
                        z.copy_(bias.expand(length, vocabulary));
                        z.addmm_(hc, weightT, beta: 1, alpha: 1);
                    }

                    // Softmax in place, with only per-row temporaries: a chunk-sized temporary per chunk (log_softmax's
                    // output, logsumexp's internals) makes glibc's heap grow step after step once its mmap threshold has
                    // adapted to blocks of that size (measured: +2 MiB RSS per step on the benchmark model).
                    Tensor sumExp = AddLossAndExponentiate(z, yc, epsilon, total);
                    if (!backward)
                    {
                        continue;
                    }

                    Tensor gradient = z.div_(sumExp);
                    if (epsilon > 0)
                    {
                        gradient.sub_(uniform!);
                    }

                    gradient.scatter_add_(1, yc, torch.full(length, 1, hit, dtype: z.dtype, device: z.device));
                    gradHidden?.narrow(0, start, length).addmm_(gradient, weight, beta: 0, alpha: (float)scale);
                    gradWeight?.addmm_(gradient.t(), hc, beta: start == 0 ? 0 : 1, alpha: (float)scale);
                    // sum(0) would bind to sum(ScalarType) — the literal 0 converts to ScalarType.Byte; name the dimension.
                    gradBias?.add_(gradient.sum(dim: 0), alpha: scaleScalar);
                }
            }
            finally
            {
                BufferCache.Return(buffer);
            }
        }

        using Scalar kept = count.ToScalar();
        return (total.div_(kept).to(hidden.dtype).squeeze(0), ScatterKept(gradHidden, index, hidden), gradBias);
    }

    // The same computation with the products in a lower precision. Per chunk: logits = bf16(h)·bf16(W)ᵀ (rounded to bf16),
    // copied into the fp32 buffer (+ bias) for the softmax and the loss; the logit gradient, already scaled by 1/N, is
    // rounded to bf16 in place of the logits, and the two backward products read it: ∂h rows directly, ∂W through a
    // bf16 [V, d] partial added into the fp32 gradient (so the sum over chunks is fp32).
    private static (Tensor Value, Tensor? GradHidden, Tensor? GradBias) RunLowPrecision(
        Tensor hidden, Tensor weight, Tensor? bias, Tensor targets, double epsilon, long ignoreIndex, long chunkElements, bool needHidden, bool needBias, Tensor? gradWeight, ScalarType low)
    {
        long width = hidden.shape[1];
        long vocabulary = weight.shape[0];
        (long count, Tensor h, Tensor y, Tensor? index) = KeptRows(hidden, targets, ignoreIndex);

        Tensor? gradHidden = needHidden ? torch.empty(count, width, dtype: hidden.dtype, device: hidden.device) : null;
        gradWeight?.zero_();
        Tensor? gradBias = needBias ? torch.zeros_like(bias!) : null;
        Tensor total = torch.zeros(1, dtype: ScalarType.Float64, device: hidden.device);
        bool backward = needHidden || gradWeight is not null || needBias;
        if (count > 0)
        {
            long stride = RowStride(vocabulary);
            long chunk = ChunkRows(count, stride, chunkElements);
            Tensor buffer = BufferCache.Rent(chunk * stride, hidden.dtype, hidden.device);
            Tensor lowBuffer = BufferCache.Rent(chunk * stride, low, hidden.device);
            Tensor? lowWeightGradient = gradWeight is not null ? BufferCache.Rent(vocabulary * width, low, hidden.device) : null;
            try
            {
                using Tensor lowHidden = h.to(low);
                using Tensor lowWeight = weight.to(low);
                using Tensor lowWeightT = lowWeight.t();
                using Tensor partial = lowWeightGradient?.narrow(0, 0, vocabulary * width).view(vocabulary, width) ?? torch.empty(0);
                double scale = 1.0 / count;
                // The chunk loop's numbers as scalars that live until the loop ends (see Scalars).
                using Scalar rows = count.ToScalar();
                using Scalar hit = (-(1 - epsilon) * scale).ToScalar();
                using Scalar? uniform = epsilon > 0 ? (epsilon / vocabulary * scale).ToScalar() : null;
                for (long start = 0; start < count; start += chunk)
                {
                    long length = Math.Min(chunk, count - start);
                    using var scope = torch.NewDisposeScope();
                    Tensor hc = lowHidden.narrow(0, start, length);
                    Tensor yc = y.narrow(0, start, length).unsqueeze(1);
                    Tensor zLow = Rows(lowBuffer, length, stride, vocabulary);
                    Tensor z = Rows(buffer, length, stride, vocabulary);
                    zLow.addmm_(hc, lowWeightT, beta: 0, alpha: 1);
                    z.copy_(zLow);
                    if (bias is not null)
                    {
                        z.add_(bias, Scalars.One);
                    }

                    Tensor sumExp = AddLossAndExponentiate(z, yc, epsilon, total);
                    if (!backward)
                    {
                        continue;
                    }

                    // (softmax − smoothed one-hot) / N, with the 1/N folded into the normaliser: one pass fewer.
                    Tensor gradient = z.div_(sumExp.mul_(rows));
                    if (epsilon > 0)
                    {
                        gradient.sub_(uniform!);
                    }

                    gradient.scatter_add_(1, yc, torch.full(length, 1, hit, dtype: z.dtype, device: z.device));
                    gradBias?.add_(gradient.sum(dim: 0), Scalars.One);
                    Tensor gradientLow = zLow.copy_(gradient);
                    if (gradHidden is not null)
                    {
                        gradHidden.narrow(0, start, length).copy_(gradientLow.mm(lowWeight));
                    }

                    if (gradWeight is not null)
                    {
                        partial.addmm_(gradientLow.t(), hc, beta: 0, alpha: 1);
                        gradWeight.add_(partial, Scalars.One);
                    }
                }
            }
            finally
            {
                if (lowWeightGradient is not null)
                {
                    BufferCache.Return(lowWeightGradient);
                }

                BufferCache.Return(lowBuffer);
                BufferCache.Return(buffer);
            }
        }

        using Scalar kept = count.ToScalar();
        return (total.div_(kept).to(hidden.dtype).squeeze(0), ScatterKept(gradHidden, index, hidden), gradBias);
    }

    // A [length, vocabulary] view of the buffer whose rows are stride elements apart.
    private static Tensor Rows(Tensor buffer, long length, long stride, long vocabulary) =>
        buffer.narrow(0, 0, length * stride).view(length, stride).narrow(1, 0, vocabulary);

    // Rows whose target is not the ignore index: their count (read on the host, to size the chunks), and the hidden
    // states and targets of just those rows (the inputs themselves when none is ignored).
    private static (long Count, Tensor Hidden, Tensor Targets, Tensor? Index) KeptRows(Tensor hidden, Tensor targets, long ignoreIndex)
    {
        using Tensor keep = Scalars.NotEqual(targets, ignoreIndex);
        long count = keep.sum().item<long>();
        if (count == hidden.shape[0])
        {
            return (count, hidden, targets, null);
        }

        Tensor index = keep.nonzero().squeeze(1);
        return (count, hidden.index_select(0, index), targets.index_select(0, index), index);
    }

    // Adds the chunk's summed loss to total and leaves exp(z − max) in z, returning its row sums: per row
    // loss = logsumexp − z_y = log Σ exp(z − max) + max − z_y; smoothing adds ε(logsumexp − mean z).
    private static Tensor AddLossAndExponentiate(Tensor z, Tensor yc, double epsilon, Tensor total)
    {
        Tensor target = z.gather(1, yc).squeeze(1);
        Tensor? meanLogit = epsilon > 0 ? z.mean([1]) : null;
        Tensor max = z.amax([1], keepdim: true);
        Tensor sumExp = z.sub_(max).exp_().sum([1], keepdim: true);
        Tensor logSumExp = sumExp.log().add_(max, Scalars.One).squeeze(1);
        Tensor rowLoss = logSumExp - target;
        if (meanLogit is not null)
        {
            using Scalar keep = (1 - epsilon).ToScalar();
            using Scalar smoothing = epsilon.ToScalar();
            rowLoss = rowLoss.mul_(keep).add_(logSumExp - meanLogit, alpha: smoothing);
        }

        total.add_(rowLoss.sum(ScalarType.Float64), Scalars.One);
        return sumExp;
    }

    // The hidden-state gradient of the kept rows, scattered back to all rows (ignored rows get zero).
    private static Tensor? ScatterKept(Tensor? gradHidden, Tensor? index, Tensor hidden)
    {
        if (gradHidden is null || index is null)
        {
            return gradHidden;
        }

        Tensor full = torch.zeros(hidden.shape[0], hidden.shape[1], dtype: hidden.dtype, device: hidden.device);
        full.index_copy_(0, index, gradHidden);
        return full;
    }

    // Large buffers kept between steps (the fp32 logits, and with bf16 products the bf16 logits and weight-gradient
    // partial), at most four. Freeing and re-allocating tens of megabytes every step costs page faults (glibc hands
    // blocks this large straight back to the kernel). A caller gets the smallest kept buffer that fits; one that finds
    // none allocates its own; a returned buffer replaces a smaller kept one of its type when the cache is full.
    internal static class BufferCache
    {
        private const int MaxKept = 4;
        private static readonly object Gate = new();
        private static readonly List<Tensor> Kept = [];

        public static Tensor Rent(long elements, ScalarType dtype, Device device)
        {
            lock (Gate)
            {
                int best = -1;
                for (int i = 0; i < Kept.Count; i++)
                {
                    Tensor kept = Kept[i];
                    if (kept.numel() >= elements && kept.dtype == dtype && kept.device_type == device.type && kept.device_index == device.index
                        && (best < 0 || kept.numel() < Kept[best].numel()))
                    {
                        best = i;
                    }
                }

                if (best >= 0)
                {
                    Tensor found = Kept[best];
                    Kept.RemoveAt(best);
                    return found;
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
                if (Kept.Count < MaxKept)
                {
                    Kept.Add(buffer);
                    dispose = null;
                }
                else
                {
                    int smaller = Kept.FindIndex(k => k.dtype == buffer.dtype && k.numel() < buffer.numel());
                    if (smaller >= 0)
                    {
                        dispose = Kept[smaller];
                        Kept[smaller] = buffer;
                    }
                }
            }

            dispose?.Dispose();
        }

        /// <summary>Frees the kept buffers (tests and memory-sensitive hosts).</summary>
        public static void Clear()
        {
            Tensor[] kept;
            lock (Gate)
            {
                kept = [.. Kept];
                Kept.Clear();
            }

            foreach (Tensor tensor in kept)
            {
                tensor.Dispose();
            }
        }
    }
}
