using System;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace NicheTune.Models;

// These modules reproduce Hugging Face's LlamaForCausalLM module tree so that the parameter names TorchSharp
// derives from [ComponentName] fields are exactly a checkpoint's names ("model.layers.0.self_attn.q_proj.weight").
// Sub-layers are invoked with .call(...) so forward hooks (LoRA adapters) see every projection.
// Parameter fields are not readonly: Module.to(...) writes replaced parameters back into them by reflection.

/// <summary>A lookup table named like <c>nn.Embedding</c> whose weight object is stable, so tying the output head to it works by reference.</summary>
internal sealed class LlamaEmbedding : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "weight")]
    private Parameter _weight;

    public LlamaEmbedding(long rows, long width, Device? device) : base(nameof(LlamaEmbedding))
    {
        // Detached so that building a model inside a caller's dispose scope does not free its weights.
        _weight = new Parameter(torch.empty([rows, width], device: device));
        _weight.DetachFromDisposeScope();
    }

    public Parameter Weight => _weight;

    /// <summary>Maps ids [B, T] to rows [B, T, width].</summary>
    public override Tensor forward(Tensor ids) =>
        _weight.index_select(0, ids.reshape(-1)).view(ids.size(0), ids.size(1), _weight.size(1));
}

/// <summary>HF's <c>LlamaRMSNorm</c>: x / sqrt(mean(x²) + ε) · weight, computed in float32 whatever the input dtype.</summary>
internal sealed class LlamaRmsNorm : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "weight")]
    private Parameter _weight;

    private readonly Scalar _epsilon;

    public LlamaRmsNorm(long width, double epsilon, Device? device) : base(nameof(LlamaRmsNorm))
    {
        _weight = new Parameter(torch.ones([width], device: device));
        _weight.DetachFromDisposeScope();
        _epsilon = epsilon.ToScalar();
    }

    public Parameter Weight => _weight;

    public override Tensor forward(Tensor input)
    {
        var dtype = input.dtype;
        var x = dtype == ScalarType.Float32 ? input : input.to_type(ScalarType.Float32);
        var normalized = x * x.pow(Scalars.Two).mean([-1L], keepdim: true).add(_epsilon, Scalars.One).rsqrt();
        // HF casts back to the input dtype before the weight multiply; the order matters for half precision.
        return _weight * (dtype == ScalarType.Float32 ? normalized : normalized.to_type(dtype));
    }

    // The module owns its ε scalar: freed with the module, not left to the finalizer.
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _epsilon.Dispose();
        }

        base.Dispose(disposing);
    }
}

/// <summary>Rotary position embeddings in HF Llama's "rotate half" layout (the two halves of a head are the pairs).</summary>
internal static class LlamaRotary
{
    /// <summary>
    /// The cos and sin tables [T, D] for positions offset … offset + T − 1. Computed in float32 exactly as HF
    /// does (θ^(2i/D) with a float32 exponent, then the reciprocal), then cast to <paramref name="dtype"/>.
    /// </summary>
    public static (Tensor Cos, Tensor Sin) Tables(long offset, long length, int headDimension, double theta, ScalarType dtype, Device device)
    {
        using Scalar dimension = headDimension.ToScalar();
        using Scalar thetaScalar = theta.ToScalar();
        using Scalar first = offset.ToScalar();
        using Scalar end = (offset + length).ToScalar();
        var exponents = torch.arange(Scalars.Zero, dimension, Scalars.Two, dtype: ScalarType.Int64, device: device).to_type(ScalarType.Float32).div(dimension);
        var inverseFrequencies = torch.full_like(exponents, thetaScalar).pow(exponents).reciprocal();
        var positions = torch.arange(first, end, Scalars.One, dtype: ScalarType.Float32, device: device);
        var frequencies = torch.outer(positions, inverseFrequencies);
        var angles = torch.cat([frequencies, frequencies], -1);
        return (angles.cos().to_type(dtype), angles.sin().to_type(dtype));
    }

    /// <summary>Rotates x [B, H, T, D] by the tables [T, D]: x·cos + rotate_half(x)·sin, rotate_half(x) = [−x₂, x₁].</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        var half = x.size(-1) / 2;
        var rotated = torch.cat([x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)], -1);
        return (x * cos).add(rotated * sin, Scalars.One);
    }
}

/// <summary>Grouped-query self-attention with rotary embeddings and HF's q/k/v/o_proj names.</summary>
internal sealed class LlamaAttention : nn.Module
{
    [ComponentName(Name = "q_proj")]
    private readonly Linear _qProj;

    [ComponentName(Name = "k_proj")]
    private readonly Linear _kProj;

    [ComponentName(Name = "v_proj")]
    private readonly Linear _vProj;

    [ComponentName(Name = "o_proj")]
    private readonly Linear _oProj;

    private readonly int _headCount;
    private readonly int _keyValueHeadCount;
    private readonly int _headDimension;
    private readonly double _attentionDropout;

    public LlamaAttention(LlamaConfig config, Device? device) : base(nameof(LlamaAttention))
    {
        _headCount = config.HeadCount;
        _keyValueHeadCount = config.ResolvedKeyValueHeadCount;
        _headDimension = config.ResolvedHeadDimension;
        _attentionDropout = config.AttentionDropout;
        long hidden = config.HiddenSize;
        _qProj = nn.Linear(hidden, (long)_headCount * _headDimension, config.HasQueryKeyValueBias, device);
        _kProj = nn.Linear(hidden, (long)_keyValueHeadCount * _headDimension, config.HasQueryKeyValueBias, device);
        _vProj = nn.Linear(hidden, (long)_keyValueHeadCount * _headDimension, config.HasQueryKeyValueBias, device);
        _oProj = nn.Linear((long)_headCount * _headDimension, hidden, config.HasOutputBias, device);
        RegisterComponents();
    }

    public Linear QueryProjection => _qProj;

    public Linear KeyProjection => _kProj;

    public Linear ValueProjection => _vProj;

    public Linear OutputProjection => _oProj;

    /// <summary>
    /// Attends over <paramref name="hidden"/> [B, T, d]. <paramref name="mask"/> is null (then
    /// <paramref name="causal"/> says whether libtorch's square causal mask applies) or a boolean mask
    /// broadcastable to [B, H, T, keys] with true = may attend. With a cache, the new keys and values are
    /// appended to layer <paramref name="layer"/> and the queries attend to all cached positions.
    /// </summary>
    public Tensor Forward(Tensor hidden, Tensor cos, Tensor sin, Tensor? mask, bool causal, KeyValueCache? cache, int layer)
    {
        var batch = hidden.size(0);
        var length = hidden.size(1);

        var query = _qProj.call(hidden).view(batch, length, _headCount, _headDimension).transpose(1, 2);
        var key = _kProj.call(hidden).view(batch, length, _keyValueHeadCount, _headDimension).transpose(1, 2);
        var value = _vProj.call(hidden).view(batch, length, _keyValueHeadCount, _headDimension).transpose(1, 2);

        query = LlamaRotary.Apply(query, cos, sin);
        key = LlamaRotary.Apply(key, cos, sin);
        if (cache is not null)
        {
            (key, value) = cache.Append(layer, key, value);
        }

        if (_keyValueHeadCount != _headCount)
        {
            // HF's repeat_kv: query head h reads key/value head h / (H / KV).
            var groups = _headCount / _keyValueHeadCount;
            var keys = key.size(2);
            key = key.unsqueeze(2).expand(batch, _keyValueHeadCount, groups, keys, _headDimension).reshape(batch, _headCount, keys, _headDimension);
            value = value.unsqueeze(2).expand(batch, _keyValueHeadCount, groups, keys, _headDimension).reshape(batch, _headCount, keys, _headDimension);
        }

        var dropout = training ? _attentionDropout : 0.0;
        // TorchSharp throws when both a mask and the causal flag are given.
        var attended = nn.functional.scaled_dot_product_attention(query, key, value, mask, p: dropout, is_casual: mask is null && causal);
        var merged = attended.transpose(1, 2).reshape(batch, length, (long)_headCount * _headDimension);
        return _oProj.call(merged);
    }
}

/// <summary>The SwiGLU feed-forward network: down_proj(silu(gate_proj(x)) · up_proj(x)).</summary>
internal sealed class LlamaMlp : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "gate_proj")]
    private readonly Linear _gateProj;

    [ComponentName(Name = "up_proj")]
    private readonly Linear _upProj;

    [ComponentName(Name = "down_proj")]
    private readonly Linear _downProj;

    public LlamaMlp(LlamaConfig config, Device? device) : base(nameof(LlamaMlp))
    {
        _gateProj = nn.Linear(config.HiddenSize, config.IntermediateSize, config.MlpBias, device);
        _upProj = nn.Linear(config.HiddenSize, config.IntermediateSize, config.MlpBias, device);
        _downProj = nn.Linear(config.IntermediateSize, config.HiddenSize, config.MlpBias, device);
        RegisterComponents();
    }

    public Linear GateProjection => _gateProj;

    public Linear UpProjection => _upProj;

    public Linear DownProjection => _downProj;

    public override Tensor forward(Tensor hidden) =>
        _downProj.call(nn.functional.silu(_gateProj.call(hidden)) * _upProj.call(hidden));
}

/// <summary>A pre-norm decoder layer: x + attn(input_layernorm(x)), then + mlp(post_attention_layernorm(x)).</summary>
internal sealed class LlamaDecoderLayer : nn.Module
{
    [ComponentName(Name = "self_attn")]
    private readonly LlamaAttention _selfAttn;

    [ComponentName(Name = "mlp")]
    private readonly LlamaMlp _mlp;

    [ComponentName(Name = "input_layernorm")]
    private readonly LlamaRmsNorm _inputLayerNorm;

    [ComponentName(Name = "post_attention_layernorm")]
    private readonly LlamaRmsNorm _postAttentionLayerNorm;

    public LlamaDecoderLayer(LlamaConfig config, Device? device) : base(nameof(LlamaDecoderLayer))
    {
        _selfAttn = new LlamaAttention(config, device);
        _mlp = new LlamaMlp(config, device);
        _inputLayerNorm = new LlamaRmsNorm(config.HiddenSize, config.RmsNormEpsilon, device);
        _postAttentionLayerNorm = new LlamaRmsNorm(config.HiddenSize, config.RmsNormEpsilon, device);
        RegisterComponents();
    }

    public LlamaAttention Attention => _selfAttn;

    public LlamaMlp Mlp => _mlp;

    public Tensor Forward(Tensor hidden, Tensor cos, Tensor sin, Tensor? mask, bool causal, KeyValueCache? cache, int layer)
    {
        // A scope per layer frees its temporaries as soon as it is done; under no_grad that bounds
        // inference memory to one layer's activations.
        using var scope = torch.NewDisposeScope();
        var afterAttention = hidden.add(_selfAttn.Forward(_inputLayerNorm.call(hidden), cos, sin, mask, causal, cache, layer), Scalars.One);
        var output = afterAttention.add(_mlp.call(_postAttentionLayerNorm.call(afterAttention)), Scalars.One);
        return output.MoveToOuterDisposeScope();
    }
}

/// <summary>HF's <c>LlamaModel</c> (the "model" prefix): token embedding, decoder layers and the final norm.</summary>
internal sealed class LlamaModel : nn.Module
{
    [ComponentName(Name = "embed_tokens")]
    private readonly LlamaEmbedding _embedTokens;

    [ComponentName(Name = "layers")]
    private readonly ModuleList<LlamaDecoderLayer> _layers;

    [ComponentName(Name = "norm")]
    private readonly LlamaRmsNorm _norm;

    private readonly LlamaConfig _config;

    public LlamaModel(LlamaConfig config, Device? device) : base(nameof(LlamaModel))
    {
        _config = config;
        _embedTokens = new LlamaEmbedding(config.VocabularySize, config.HiddenSize, device);
        var layers = new LlamaDecoderLayer[config.LayerCount];
        for (var i = 0; i < layers.Length; i++)
        {
            layers[i] = new LlamaDecoderLayer(config, device);
        }

        _layers = nn.ModuleList(layers);
        _norm = new LlamaRmsNorm(config.HiddenSize, config.RmsNormEpsilon, device);
        RegisterComponents();
    }

    public LlamaEmbedding TokenEmbedding => _embedTokens;

    public ModuleList<LlamaDecoderLayer> Layers => _layers;

    /// <summary>
    /// Runs the layers on validated ids [B, T] at positions cache.Length … and returns the normed hidden
    /// states [B, T, d]. <paramref name="paddingMask"/> is null or a boolean [B, 1, T, T] mask that already
    /// contains causality (only without a cache). With a cache, the new positions are committed at the end.
    /// </summary>
    public Tensor Forward(Tensor inputIds, Tensor? paddingMask, KeyValueCache? cache)
    {
        var length = inputIds.size(1);
        long offset = cache?.Length ?? 0;
        var hidden = _embedTokens.call(inputIds);
        var (cos, sin) = LlamaRotary.Tables(offset, length, _config.ResolvedHeadDimension, _config.RopeTheta, hidden.dtype, hidden.device);
        var mask = paddingMask ?? (cache is null ? null : KeyValueCache.CausalMask(length, offset, hidden.device));
        var causal = length > 1;
        // Indexing, not foreach: ModuleList's enumerator is boxed and would allocate per step.
        for (var i = 0; i < _layers.Count; i++)
        {
            hidden = _layers[i].Forward(hidden, cos, sin, mask, causal, cache, i);
        }

        cache?.Advance(length);
        return _norm.call(hidden);
    }
}
