using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NicheTune.Models;

/// <summary>
/// The low-rank update attached to one linear module. <c>lora_A</c> (and <c>lora_dropout</c>, when the dropout is not
/// zero) and <c>lora_B</c> are registered as sub-modules of the target, so the parameter names read
/// <c>….c_attn.lora_A.weight</c> as in PEFT, <c>train()</c>/<c>eval()</c> and <c>to(device)</c> reach them, and the base
/// parameters keep their names (a base checkpoint still loads by name). The update is added by a forward post-hook, which
/// TorchSharp runs only when the parent invokes the module with <c>call(x)</c>, never with <c>forward(x)</c>; the hook counts
/// its calls so that a parent that bypasses it is detected instead of silently training nothing.
/// </summary>
internal sealed class LoRALayer : IDisposable
{
    public const string AName = "lora_A";
    public const string BName = "lora_B";
    public const string DropoutName = "lora_dropout";

    private readonly nn.Module<Tensor, Tensor> _target;
    private readonly Linear _a;
    private readonly Linear _b;
    private readonly Dropout? _dropout;
    private readonly Scalar _scaling;
    private readonly nn.HookableModule<Func<nn.Module<Tensor, Tensor>, Tensor, Tensor>, Func<nn.Module<Tensor, Tensor>, Tensor, Tensor, Tensor>>.HookRemover _hook;
    private bool _attached = true;

    private LoRALayer(string path, nn.Module<Tensor, Tensor> target, bool fanInFanOut, long inFeatures, long outFeatures, LoRAOptions options)
    {
        Path = path;
        _target = target;
        FanInFanOut = fanInFanOut;
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Tensor weight = BaseWeight;
        _a = nn.Linear(inFeatures, options.Rank, hasBias: false, device: weight.device, dtype: weight.dtype);
        _b = nn.Linear(options.Rank, outFeatures, hasBias: false, device: weight.device, dtype: weight.dtype);
        using (torch.no_grad())
        {
            // PEFT's default initialisation: A as nn.Linear's own (Kaiming-uniform, a = √5), B zero, so B A = 0 at the start.
            nn.init.kaiming_uniform_(_a.weight, a: Math.Sqrt(5));
            nn.init.zeros_(_b.weight);
        }

        _scaling = options.Scaling.ToScalar();
        target.register_module(AName, _a);
        target.register_module(BName, _b);
        if (options.Dropout > 0)
        {
            _dropout = nn.Dropout(options.Dropout);
            target.register_module(DropoutName, _dropout);
        }

        _a.train(target.training);
        _b.train(target.training);
        _dropout?.train(target.training);
        _hook = target.register_forward_hook(AddUpdate);
    }

    /// <summary>The target's dotted module name, e.g. <c>transformer.h.0.attn.c_attn</c>.</summary>
    public string Path { get; }

    /// <summary>Whether the base weight is stored [in, out] (GPT-2's Conv1D) rather than [out, in] (<c>nn.Linear</c>).</summary>
    public bool FanInFanOut { get; }

    public long InFeatures { get; }

    public long OutFeatures { get; }

    public bool IsMerged { get; private set; }

    /// <summary>Forward calls that went through the hook since the adapter was applied.</summary>
    public long Calls { get; private set; }

    public nn.Module<Tensor, Tensor> Target => _target;

    public Parameter A => _a.weight;

    public Parameter B => _b.weight;

    public Parameter BaseWeight => _target switch
    {
        Linear linear => linear.weight,
        Gpt2Conv1D conv => conv.Weight,
        _ => throw new InvalidOperationException($"'{Path}' is no longer a supported linear module."),
    };

    public Parameter? BaseBias => _target switch
    {
        Linear linear => linear.bias,
        Gpt2Conv1D conv => conv.Bias,
        _ => null,
    };

    /// <summary>Whether <paramref name="module"/> is a layer LoRA can adapt, with its shape.</summary>
    public static bool TryDescribe(nn.Module module, out bool fanInFanOut, out long inFeatures, out long outFeatures)
    {
        switch (module)
        {
            case Linear linear:
                fanInFanOut = false;
                inFeatures = linear.weight.shape[1];
                outFeatures = linear.weight.shape[0];
                return true;
            case Gpt2Conv1D conv:
                fanInFanOut = true;
                inFeatures = conv.Weight.shape[0];
                outFeatures = conv.Weight.shape[1];
                return true;
            default:
                fanInFanOut = false;
                inFeatures = outFeatures = 0;
                return false;
        }
    }

    public static LoRALayer Attach(string path, nn.Module module, LoRAOptions options)
    {
        if (!TryDescribe(module, out bool fanInFanOut, out long inFeatures, out long outFeatures))
        {
            throw new ArgumentException($"Module '{path}' ({module.GetType().Name}) is not a linear layer LoRA can adapt.", nameof(module));
        }

        return new LoRALayer(path, (nn.Module<Tensor, Tensor>)module, fanInFanOut, inFeatures, outFeatures, options);
    }

    /// <summary>The update s · B A in the base weight's layout ([in, out] for Conv1D).</summary>
    public Tensor DeltaWeight()
    {
        using var scope = torch.NewDisposeScope();
        Tensor delta = torch.matmul(_b.weight, _a.weight).mul_(_scaling);
        return (FanInFanOut ? delta.t().contiguous() : delta).MoveToOuterDisposeScope();
    }

    public void Merge()
    {
        if (IsMerged)
        {
            return;
        }

        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        BaseWeight.add_(DeltaWeight(), Scalars.One);
        IsMerged = true;
    }

    public void Unmerge()
    {
        if (!IsMerged)
        {
            return;
        }

        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        BaseWeight.sub_(DeltaWeight());
        IsMerged = false;
    }

    /// <summary>Unregisters the sub-modules and the hook; the target is left as a plain linear layer.</summary>
    public void Detach()
    {
        if (!_attached)
        {
            return;
        }

        _hook.remove();
        _target.register_module(AName, null!);
        _target.register_module(BName, null!);
        if (_dropout is not null)
        {
            _target.register_module(DropoutName, null!);
        }

        _attached = false;
    }

    public void Dispose()
    {
        Detach();
        _a.Dispose();
        _b.Dispose();
        _dropout?.Dispose();
        _scaling.Dispose();
    }

    private Tensor AddUpdate(nn.Module<Tensor, Tensor> module, Tensor input, Tensor output)
    {
        Calls++;
        if (IsMerged)
        {
            return output;
        }

        Tensor x = _dropout is null ? input : _dropout.forward(input);
        // output + s · B(A(dropout(x))): one fused add; B and A run as bias-free linear maps over the last dimension, so
        // the same code serves [B, T, in] activations of Conv1D and Linear.
        return output.add(_b.forward(_a.forward(x)), _scaling);
    }
}
