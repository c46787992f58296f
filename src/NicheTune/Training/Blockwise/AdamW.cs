using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NicheTune.Training.Blockwise;

/// <summary>
/// TorchSharp's AdamW with the same arithmetic, operation for operation and in the same order, but without its two
/// full-size temporaries: for every parameter on every step TorchSharp's loop allocates √v and √v / √(1 − β₂ᵗ) (for the
/// benchmark model's 50,257 × 256 embedding and head, four 51 MB allocations a step, each served by a fresh mmap whose
/// pages fault in again). Here each parameter is walked in blocks that stay in cache (views of the weight, its gradient
/// and its two moments), and the denominator of each block goes into one scratch buffer the optimizer keeps for its
/// lifetime. Parameters, gradients and optimizer state stay where TorchSharp and autograd put them (unlike
/// <see cref="NicheTune.Training.FlatAdamW"/>), so checkpoints, <c>load_state_dict</c> and parameter groups added during training behave
/// exactly as with <see cref="TorchSharp.Modules.AdamW"/>.
/// </summary>
/// <remarks>
/// <para>
/// The class is named <c>AdamW</c> on purpose: TorchSharp's optimizer state files (<c>save_state_dict</c>) record the
/// optimizer's short class name and <c>load_state_dict</c> refuses any other, so under this name a checkpoint written by
/// TorchSharp's AdamW (or by NicheTune before this optimizer became its default) resumes here, and one written here loads
/// into TorchSharp's AdamW.
/// </para>
/// <para>
/// A parameter whose weight, gradient or moments are not contiguous is updated as a whole (still without allocating
/// when it fits the scratch buffer); a group built with <c>amsgrad</c> or <c>maximize</c> makes the whole step
/// TorchSharp's.
/// </para>
/// </remarks>
internal sealed class AdamW : TorchSharp.Modules.AdamW
{
    // Elements per block: 512 Ki floats = 2 MiB per tensor, 10 MiB for the five a block touches, within L2 + L3.
    internal const long DefaultBlockElements = 512L << 10;

    private readonly long _blockElements;
    private readonly Dictionary<(ScalarType Type, DeviceType Device, int Index), Tensor> _scratch = [];

    public AdamW(IEnumerable<ParamGroup> groups, double learningRate, double beta1, double beta2, double epsilon, double weightDecay, long blockElements = DefaultBlockElements)
        : base(groups, learningRate, beta1, beta2, epsilon, weightDecay)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(blockElements, 1, nameof(blockElements));
        _blockElements = blockElements;
        foreach (TorchSharp.Modules.ParamGroup group in _parameter_groups)
        {
            AllocateScratch(group);
        }
    }

    /// <summary>Scratch buffers allocated so far (tests: one per dtype and device, never one per step).</summary>
    internal int ScratchBufferCount => _scratch.Count;

    public override void add_param_group(TorchSharp.Modules.ParamGroup param_group)
    {
        base.add_param_group(param_group);
        // The base constructor adds its groups before this class's constructor has set the block size; that constructor
        // allocates for them. Groups added later (gradual unfreezing) get theirs here.
        if (_blockElements > 0)
        {
            AllocateScratch(param_group);
        }
    }

    public override Tensor step(Func<Tensor>? closure = null)
    {
        if (_parameter_groups.Any(g => g.Options is Options { amsgrad: true } or Options { maximize: true }))
        {
            return base.step(closure);
        }

        return _step<ParamGroup>(group =>
        {
            var options = (Options)group.Options;
            double lr = options.LearningRate!.Value;
            double beta1 = options.beta1!.Value;
            double beta2 = options.beta2!.Value;
            double eps = options.eps!.Value;
            double decay = 1 - lr * options.weight_decay!.Value;
            // Parameters of a group normally share their step count, so the group's coefficients are made once per step;
            // a parameter whose count differs (it had no gradient at some step) gets its own.
            Coefficients? shared = null;
            try
            {
                foreach (Parameter param in group.Parameters)
                {
                    using Tensor? grad = param.grad;
                    if (grad is null)
                    {
                        continue;
                    }

                    var state = (State)_state[param.Handle];
                    state.step += 1;
                    if (shared is null || shared.Step != state.step)
                    {
                        shared?.Dispose();
                        double biasCorrection1 = 1 - Math.Pow(beta1, state.step);
                        double biasCorrection2 = 1 - Math.Pow(beta2, state.step);
                        shared = new Coefficients(state.step, decay, beta1, beta2, eps, Math.Sqrt(biasCorrection2), -(lr / biasCorrection1));
                    }

                    Update(param, grad, state, shared);
                }
            }
            finally
            {
                shared?.Dispose();
            }
        }, closure);
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            foreach (Tensor scratch in _scratch.Values)
            {
                scratch.Dispose();
            }

            _scratch.Clear();
        }
    }

    private void Update(Parameter param, Tensor grad, State state, Coefficients update)
    {
        using var scope = torch.NewDisposeScope();
        long total = param.numel();
        bool blockable = param.is_contiguous() && grad.is_contiguous() && state.exp_avg.is_contiguous() && state.exp_avg_sq.is_contiguous()
            && grad.dtype == param.dtype && !grad.is_sparse;
        if (!blockable || total <= _blockElements)
        {
            // One block, in the parameter's own shape (no views of the weight, gradient or moments); the scratch buffer holds
            // the denominator when it is large enough.
            Tensor denom = total <= _blockElements
                ? Scratch(param).narrow(0, 0, total).view(param.shape)
                : torch.empty_like(state.exp_avg_sq);
            Apply(param, grad, state.exp_avg, state.exp_avg_sq, denom, update);
            return;
        }

        Tensor p = param.view(-1);
        Tensor g = grad.view(-1);
        Tensor m = state.exp_avg.view(-1);
        Tensor v = state.exp_avg_sq.view(-1);
        Tensor scratch = Scratch(param);
        for (long start = 0; start < total; start += _blockElements)
        {
            long length = Math.Min(_blockElements, total - start);
            using var block = torch.NewDisposeScope();
            Apply(p.narrow(0, start, length), g.narrow(0, start, length), m.narrow(0, start, length), v.narrow(0, start, length), scratch.narrow(0, 0, length), update);
        }
    }

    // TorchSharp's AdamW, in its order: decay, first moment, second moment, (√v / √bc2) + ε, addcdiv. Multiplying by
    // exactly 1 (no weight decay) leaves every value unchanged, so that pass is skipped.
    internal static void Apply(Tensor p, Tensor g, Tensor m, Tensor v, Tensor denom, Coefficients u)
    {
        if (u.DecayFactor != 1.0)
        {
            p.mul_(u.Decay);
        }

        m.mul_(u.Beta1).add_(g, alpha: u.OneMinusBeta1);
        v.mul_(u.Beta2).addcmul_(g, g, value: u.OneMinusBeta2);
        denom.copy_(v).sqrt_().div_(u.SqrtCorrection2).add_(u.Epsilon, Scalars.One);
        p.addcdiv_(m, denom, value: u.StepSize);
    }

    // Scratch buffers are made when the optimizer or a group is created, outside the steps' dispose scopes, so a step
    // creates no tensor that outlives it; Scratch still makes one for a parameter whose dtype or device changed since.
    private void AllocateScratch(TorchSharp.Modules.ParamGroup group)
    {
        foreach (Parameter p in group.Parameters)
        {
            _ = Scratch(p);
        }
    }

    // One block of √v̂ + ε per dtype and device, reused for the optimizer's life.
    private Tensor Scratch(Tensor like)
    {
        var key = (like.dtype, like.device_type, like.device_index);
        if (!_scratch.TryGetValue(key, out Tensor? scratch))
        {
            scratch = torch.empty(_blockElements, dtype: like.dtype, device: like.device).DetachFromDisposeScope();
            _scratch[key] = scratch;
        }

        return scratch;
    }

    // A group's coefficients for one step count, as native scalars made once and disposed when the group is done: the
    // implicit double → Scalar conversions would make eight per block and leave them all to the finalizer.
    internal sealed class Coefficients : IDisposable
    {
        public Coefficients(long step, double decay, double beta1, double beta2, double epsilon, double sqrtCorrection2, double stepSize)
        {
            Step = step;
            DecayFactor = decay;
            Decay = decay.ToScalar();
            Beta1 = beta1.ToScalar();
            OneMinusBeta1 = (1 - beta1).ToScalar();
            Beta2 = beta2.ToScalar();
            OneMinusBeta2 = (1 - beta2).ToScalar();
            Epsilon = epsilon.ToScalar();
            SqrtCorrection2 = sqrtCorrection2.ToScalar();
            StepSize = stepSize.ToScalar();
        }

        public long Step { get; }

        public double DecayFactor { get; }

        public Scalar Decay { get; }

        public Scalar Beta1 { get; }

        public Scalar OneMinusBeta1 { get; }

        public Scalar Beta2 { get; }

        public Scalar OneMinusBeta2 { get; }

        public Scalar Epsilon { get; }

        public Scalar SqrtCorrection2 { get; }

        public Scalar StepSize { get; }

        public void Dispose()
        {
            foreach (Scalar scalar in new[] { Decay, Beta1, OneMinusBeta1, Beta2, OneMinusBeta2, Epsilon, SqrtCorrection2, StepSize })
            {
                scalar.Dispose();
            }
        }
    }
}
