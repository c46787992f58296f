using NicheTune.Models;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace NicheTune.Tests.Models;

/// <summary>A Llama-flavoured toy: q_proj/v_proj/o_proj linears and a head, invoked with call() so hooks run.</summary>
internal sealed class TinyProjections : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "q_proj")]
    private readonly Linear _q;

    [ComponentName(Name = "v_proj")]
    private readonly Linear _v;

    [ComponentName(Name = "o_proj")]
    private readonly Linear _o;

    [ComponentName(Name = "norm")]
    private readonly LayerNorm _norm;

    [ComponentName(Name = "score")]
    private readonly Linear _score;

    private readonly bool _bypassHooks;

    public TinyProjections(int width = 12, int classes = 3, bool bypassHooks = false) : base(nameof(TinyProjections))
    {
        _q = nn.Linear(width, width);
        _v = nn.Linear(width, width);
        _o = nn.Linear(width, width, hasBias: false);
        _norm = nn.LayerNorm(width);
        _score = nn.Linear(width, classes);
        _bypassHooks = bypassHooks;
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        Tensor q = _bypassHooks ? _q.forward(input) : _q.call(input);
        Tensor h = nn.functional.gelu(q) + _v.call(input);
        return _score.call(_norm.call(_o.call(h)));
    }
}

/// <summary>Mean-pooled embeddings → dense (GELU) → score: a sequence classifier whose linears are called with call().</summary>
internal sealed class TinyTokenClassifier : nn.Module<Tensor, Tensor, Tensor>
{
    [ComponentName(Name = "embed")]
    private readonly Embedding _embed;

    [ComponentName(Name = "dense")]
    private readonly Linear _dense;

    [ComponentName(Name = "score")]
    private readonly Linear _score;

    public TinyTokenClassifier(int vocabulary, int classes, int width = 16) : base(nameof(TinyTokenClassifier))
    {
        _embed = nn.Embedding(vocabulary, width);
        _dense = nn.Linear(width, width);
        _score = nn.Linear(width, classes);
        RegisterComponents();
    }

    public override Tensor forward(Tensor inputIds, Tensor attentionMask)
    {
        Tensor mask = attentionMask.unsqueeze(-1).to(ScalarType.Float32);
        Tensor pooled = (_embed.call(inputIds) * mask).sum(1) / mask.sum(1).clamp_min(1);
        return _score.call(nn.functional.gelu(_dense.call(pooled)));
    }
}

internal static class LoRATestSupport
{
    public static Gpt2Config Gpt2(int vocabulary = 40, int context = 16, int width = 16, int layers = 2, int heads = 2) => new()
    {
        VocabularySize = vocabulary, ContextLength = context, EmbeddingSize = width, LayerCount = layers, HeadCount = heads,
        ResidualDropout = 0, EmbeddingDropout = 0, AttentionDropout = 0,
    };

    public static Tensor Ids(int batch = 2, int length = 10, int vocabulary = 40) => torch.randint(vocabulary, [batch, length], dtype: ScalarType.Int64);

    /// <summary>Gives every B (and A) random values so the adapter changes the output.</summary>
    public static void Randomise(LoRAAdapter adapter, double std = 0.2)
    {
        using var noGrad = torch.no_grad();
        foreach (LoRALayer layer in adapter.Layers)
        {
            nn.init.normal_(layer.B, 0, std);
            nn.init.normal_(layer.A, 0, std);
        }
    }

    /// <summary>Bit-for-bit equality (TorchSharp's Tensor.equal is element-wise).</summary>
    public static bool Same(Tensor a, Tensor b)
    {
        using var scope = torch.NewDisposeScope();
        return a.shape.SequenceEqual(b.shape) && a.dtype == b.dtype && a.eq(b).all().item<bool>();
    }

    public static Dictionary<string, bool> RequiresGrad(nn.Module model)
        => model.named_parameters().ToDictionary(p => p.name, p => p.parameter.requires_grad);
}
