using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NicheTune.Training;

/// <summary>
/// TorchSharp's AdamW with each parameter group's weights, gradients and moments moved into four contiguous buffers:
/// every parameter becomes a view of the weight buffer (<c>set_</c>), its gradient a view of the gradient buffer (autograd
/// accumulates into an existing gradient in place), and the optimizer state of TorchSharp's <see cref="AdamW.State"/>
/// views of the moment buffers, so checkpoints keep TorchSharp's format. A step then walks the buffers in blocks that
/// stay in cache, doing the update's six operations per block instead of six full-size passes — and without the two
/// full-size temporaries (√v and √v / √(1 − β₂ᵗ)) that TorchSharp's loop allocates and frees for every parameter on
/// every step. The arithmetic is TorchSharp's, operation for operation, in the same order.
/// </summary>
/// <remarks>
/// A group falls back to TorchSharp's per-parameter loop for a step where one of its parameters has no gradient (a
/// parameter frozen again during training must not move), and a gradient that is no longer the buffer's view (set by
/// hand) is copied back into it first.
/// </remarks>
internal sealed class FlatAdamW : AdamW
{
    // Elements per block of the fused update: 512 Ki floats = 2 MiB per buffer, 8 MiB for the four, within L3.
    internal const long BlockElements = 512L << 10;

    private readonly Dictionary<TorchSharp.Modules.ParamGroup, FlatGroup> _flat = new(ReferenceEqualityComparer.Instance);

    public FlatAdamW(IEnumerable<ParamGroup> groups, double learningRate, double beta1, double beta2, double epsilon, double weightDecay)
        : base(groups, learningRate, beta1, beta2, epsilon, weightDecay)
    {
    }

    /// <summary>Number of groups whose parameters live in flat buffers (tests).</summary>
    internal int FlatGroupCount => _flat.Count;

    public override void add_param_group(TorchSharp.Modules.ParamGroup param_group)
    {
        base.add_param_group(param_group);
        FlatGroup? flat = FlatGroup.TryCreate(param_group, _state);
        if (flat is not null)
        {
            _flat[param_group] = flat;
        }
    }

    public override void zero_grad()
    {
        foreach (TorchSharp.Modules.ParamGroup group in _parameter_groups)
        {
            if (_flat.TryGetValue(group, out FlatGroup? flat))
            {
                flat.Gradients.zero_();
                flat.ZeroForeignGradients();
            }
            else
            {
                foreach (Parameter p in group.Parameters)
                {
                    using Tensor? grad = p.grad;
                    grad?.zero_();
                }
            }
        }
    }

    public override Tensor step(Func<Tensor>? closure = null)
    {
        return _step<ParamGroup>(group =>
        {
            var options = (Options)group.Options;
            double lr = options.LearningRate!.Value;
            double beta1 = options.beta1!.Value;
            double beta2 = options.beta2!.Value;
            double eps = options.eps!.Value;
            double weightDecay = options.weight_decay!.Value;
            if (_flat.TryGetValue(group, out FlatGroup? flat) && flat.Reattach())
            {
                FlatStep(flat, lr, beta1, beta2, eps, weightDecay);
            }
            else
            {
                ParameterStep(group, lr, beta1, beta2, eps, weightDecay);
            }
        }, closure);
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            foreach (FlatGroup flat in _flat.Values)
            {
                flat.Dispose();
            }

            _flat.Clear();
        }
    }

    private void FlatStep(FlatGroup flat, double lr, double beta1, double beta2, double eps, double weightDecay)
    {
        long step = flat.AdvanceStep();
        double biasCorrection1 = 1 - Math.Pow(beta1, step);
        double biasCorrection2 = 1 - Math.Pow(beta2, step);
        using var coefficients = new Blockwise.AdamW.Coefficients(step, 1 - lr * weightDecay, beta1, beta2, eps, Math.Sqrt(biasCorrection2), -(lr / biasCorrection1));
        long total = flat.Weights.shape[0];
        long block = Math.Min(BlockElements, total);
        Tensor scratch = flat.Scratch;
        for (long start = 0; start < total; start += block)
        {
            long length = Math.Min(block, total - start);
            using var scope = torch.NewDisposeScope();
            // The blockwise AdamW's arithmetic: TorchSharp's, in its order.
            Blockwise.AdamW.Apply(flat.Weights.narrow(0, start, length), flat.Gradients.narrow(0, start, length), flat.ExpAvg.narrow(0, start, length), flat.ExpAvgSq.narrow(0, start, length), scratch.narrow(0, 0, length), coefficients);
        }
    }

    // TorchSharp's per-parameter loop (without amsgrad and maximize, which the flat optimizer is never built with), in
    // the blockwise AdamW's arithmetic with the whole parameter as one block.
    private void ParameterStep(ParamGroup group, double lr, double beta1, double beta2, double eps, double weightDecay)
    {
        foreach (Parameter param in group.Parameters)
        {
            var state = (State)_state[param.Handle];
            using Tensor? grad = param.grad;
            if (grad is null)
            {
                continue;
            }

            state.step += 1;
            double biasCorrection1 = 1 - Math.Pow(beta1, state.step);
            double biasCorrection2 = 1 - Math.Pow(beta2, state.step);
            using var update = new Blockwise.AdamW.Coefficients(state.step, 1 - lr * weightDecay, beta1, beta2, eps, Math.Sqrt(biasCorrection2), -(lr / biasCorrection1));
            using Tensor denom = torch.empty_like(state.exp_avg_sq);
            Blockwise.AdamW.Apply(param, grad, state.exp_avg, state.exp_avg_sq, denom, update);
        }

        if (_flat.TryGetValue(group, out FlatGroup? flat))
        {
            flat.SyncStepFromStates();
        }
    }

    private sealed class FlatGroup : IDisposable
    {
        private readonly Parameter[] _parameters;
        private readonly State[] _states;
        private readonly Tensor[] _gradientViews;
        private readonly long[] _gradientIdentity;
        private readonly long[] _weightIdentity;
        private readonly Tensor[] _weightViews;
        private long _step;

        private FlatGroup(Parameter[] parameters, State[] states, Tensor weights, Tensor gradients, Tensor expAvg, Tensor expAvgSq)
        {
            _parameters = parameters;
            _states = states;
            Weights = weights;
            Gradients = gradients;
            ExpAvg = expAvg;
            ExpAvgSq = expAvgSq;
            _gradientViews = new Tensor[parameters.Length];
            _weightViews = new Tensor[parameters.Length];
            _gradientIdentity = new long[parameters.Length];
            _weightIdentity = new long[parameters.Length];
        }

        public Tensor Weights { get; }

        public Tensor Gradients { get; }

        public Tensor ExpAvg { get; }

        public Tensor ExpAvgSq { get; }

        // One block of √v̂ + ε, reused by every step: made with the group, outside any step's dispose scope.
        public Tensor Scratch { get; private init; } = null!;

        public static FlatGroup? TryCreate(TorchSharp.Modules.ParamGroup group, TorchSharp.Utils.OrderedDict<IntPtr, OptimizerState> stateTable)
        {
            Parameter[] parameters = [.. group.Parameters];
            if (parameters.Length == 0 || group.Options is not Options { amsgrad: false, maximize: false })
            {
                return null;
            }

            ScalarType dtype = parameters[0].dtype;
            Device device = parameters[0].device;
            long total = 0;
            foreach (Parameter p in parameters)
            {
                if (p.dtype != dtype || dtype is not (ScalarType.Float32 or ScalarType.Float64) || p.device_type != device.type || p.device_index != device.index || p.is_sparse)
                {
                    return null;
                }

                total += p.numel();
            }

            var states = new State[parameters.Length];
            for (int i = 0; i < parameters.Length; i++)
            {
                states[i] = (State)stateTable[parameters[i].Handle];
            }

            // Each buffer starts with one unused element, so every parameter's view has a storage offset of at least 1 while
            // a tensor allocated elsewhere (autograd's fresh gradient, a hand-set one) has offset 0: that is how a view
            // that was replaced is recognised, with one native call and no allocation.
            Tensor weights = Padded(torch.empty(total + 1, dtype: dtype, device: device));
            Tensor gradients = Padded(torch.zeros(total + 1, dtype: dtype, device: device));
            Tensor expAvg = Padded(torch.zeros(total + 1, dtype: dtype, device: device));
            Tensor expAvgSq = Padded(torch.zeros(total + 1, dtype: dtype, device: device));
            var flat = new FlatGroup(parameters, states, weights, gradients, expAvg, expAvgSq)
            {
                Scratch = torch.empty(Math.Min(BlockElements, total), dtype: dtype, device: device).DetachFromDisposeScope(),
            };
            using (torch.no_grad())
            {
                long offset = 0;
                for (int i = 0; i < parameters.Length; i++)
                {
                    Parameter p = parameters[i];
                    long n = p.numel();
                    long[] shape = p.shape;
                    Tensor weightView = weights.narrow(0, offset, n).view(shape).DetachFromDisposeScope();
                    weightView.copy_(p);
                    p.set_(weightView);
                    Tensor gradientView = gradients.narrow(0, offset, n).view(shape).DetachFromDisposeScope();
                    using (Tensor? existing = p.grad)
                    {
                        if (existing is not null)
                        {
                            gradientView.copy_(existing);
                        }
                    }

                    p.grad = gradientView;
                    State state = states[i];
                    Tensor m = expAvg.narrow(0, offset, n).view(shape).DetachFromDisposeScope();
                    Tensor v = expAvgSq.narrow(0, offset, n).view(shape).DetachFromDisposeScope();
                    m.copy_(state.exp_avg);
                    v.copy_(state.exp_avg_sq);
                    state.exp_avg.Dispose();
                    state.exp_avg_sq.Dispose();
                    state.exp_avg = m;
                    state.exp_avg_sq = v;
                    flat._gradientViews[i] = gradientView;
                    flat._weightViews[i] = weightView;
                    flat._gradientIdentity[i] = Identity(gradientView);
                    flat._weightIdentity[i] = Identity(weightView);
                    offset += n;
                }
            }

            flat._step = states[0].step;
            return flat;
        }

        public long AdvanceStep()
        {
            _step++;
            foreach (State state in _states)
            {
                state.step = _step;
            }

            return _step;
        }

        public void SyncStepFromStates() => _step = _states.Max(s => s.step);

        // True when every parameter still lives in the weight buffer and has its gradient in the gradient buffer (after
        // copying back any gradient replaced by hand); false when one has no gradient, so the group must step per tensor.
        public bool Reattach()
        {
            long step = _states[0].step;
            for (int i = 0; i < _parameters.Length; i++)
            {
                Parameter p = _parameters[i];
                if (_states[i].step != step)
                {
                    return false;
                }

                if (Identity(p) != _weightIdentity[i])
                {
                    using (torch.no_grad())
                    {
                        _weightViews[i].copy_(p);
                        p.set_(_weightViews[i]);
                    }
                }

                using Tensor? grad = p.grad;
                if (grad is null)
                {
                    return false;
                }

                if (Identity(grad) != _gradientIdentity[i])
                {
                    _gradientViews[i].copy_(grad);
                    p.grad = _gradientViews[i];
                }
            }

            _step = step;
            return true;
        }

        public void ZeroForeignGradients()
        {
            for (int i = 0; i < _parameters.Length; i++)
            {
                using Tensor? grad = _parameters[i].grad;
                if (grad is not null && Identity(grad) != _gradientIdentity[i])
                {
                    grad.zero_();
                }
            }
        }

        public void Dispose()
        {
            foreach (Tensor view in _gradientViews.Concat(_weightViews))
            {
                view?.Dispose();
            }

            Weights.Dispose();
            Scratch.Dispose();
            Gradients.Dispose();
            ExpAvg.Dispose();
            ExpAvgSq.Dispose();
        }

        private static Tensor Padded(Tensor buffer)
        {
            Tensor view = buffer.narrow(0, 1, buffer.shape[0] - 1).DetachFromDisposeScope();
            buffer.Dispose();
            return view;
        }

        // A view's offset in its buffer (≥ 1); tensors allocated elsewhere start at 0. (Reading the storage's address
        // through TorchSharp's typed storage accessor made native memory grow by tens of megabytes a step.)
        private static long Identity(Tensor tensor) => tensor.storage_offset();
    }
}
