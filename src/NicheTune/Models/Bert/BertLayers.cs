using TorchSharp;
using TorchSharp.Utils;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NicheTune.Models;

// The modules in this file reproduce Hugging Face's BERT module tree, so that the parameter names TorchSharp derives
// from [ComponentName] fields are exactly those of a BERT checkpoint ("encoder.layer.0.attention.self.query.weight").
// Sub-layers are invoked through call(...) rather than forward(...) so that forward hooks registered on them (LoRA
// adapters, activation probes) run. Each layer keeps its temporaries in a private dispose scope.

/// <summary>The activations BERT configs name in <c>hidden_act</c>.</summary>
internal static class BertActivations
{
    public static readonly string[] Names = ["gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu", "swish"];

    public static bool IsSupported(string name) => Array.IndexOf(Names, name) >= 0;

    public static nn.Module<Tensor, Tensor> Create(string name) => name switch
    {
        // HF's "gelu" is the exact, erf-based GELU; the two tanh names are its approximation.
        "gelu" => nn.GELU(),
        "gelu_new" or "gelu_pytorch_tanh" => nn.GELU(GELU.Approximate.tanh),
        "relu" => nn.ReLU(),
        "silu" or "swish" => nn.SiLU(),
        _ => throw new ArgumentException($"Activation '{name}' is not supported; use one of {string.Join(", ", Names)}.", nameof(name)),
    };
}

/// <summary>Word, position and token-type embeddings, summed, then LayerNorm and dropout (HF <c>BertEmbeddings</c>).</summary>
internal sealed class BertEmbeddings : nn.Module<Tensor, Tensor?, Tensor>
{
    [ComponentName(Name = "word_embeddings")]
    private readonly Gpt2Embedding _wordEmbeddings;

    [ComponentName(Name = "position_embeddings")]
    private readonly Gpt2Embedding _positionEmbeddings;

    [ComponentName(Name = "token_type_embeddings")]
    private readonly Gpt2Embedding _tokenTypeEmbeddings;

    [ComponentName(Name = "LayerNorm")]
    private readonly LayerNorm _layerNorm;

    [ComponentName(Name = "dropout")]
    private readonly Dropout _dropout;

    public BertEmbeddings(BertConfig config, Device? device) : base(nameof(BertEmbeddings))
    {
        // Gpt2Embedding is a managed lookup table whose weight is one stable Parameter, which the tied masked-LM
        // decoder needs; TorchSharp's native Embedding hands out a new wrapper on every read.
        _wordEmbeddings = new Gpt2Embedding(config.VocabularySize, config.HiddenSize, device);
        _positionEmbeddings = new Gpt2Embedding(config.MaxPositions, config.HiddenSize, device);
        _tokenTypeEmbeddings = new Gpt2Embedding(config.TypeVocabularySize, config.HiddenSize, device);
        _layerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEpsilon, device: device);
        _dropout = nn.Dropout(config.HiddenDropout);
        RegisterComponents();
    }

    public Gpt2Embedding WordEmbeddings => _wordEmbeddings;

    /// <summary>Embeds ids [B, T] with positions 0..T-1 and the given token types (all 0 when null).</summary>
    public override Tensor forward(Tensor inputIds, Tensor? tokenTypeIds)
    {
        using var scope = torch.NewDisposeScope();
        var length = inputIds.size(1);
        // Without token types every position has type 0: adding row 0 broadcasts, with no [B, T] zeros tensor.
        var tokenTypes = tokenTypeIds is null ? _tokenTypeEmbeddings.FirstRows(1) : _tokenTypeEmbeddings.call(tokenTypeIds);
        var summed = _wordEmbeddings.call(inputIds).add(tokenTypes, Scalars.One).add(_positionEmbeddings.FirstRows(length), Scalars.One);
        return _dropout.call(_layerNorm.call(summed)).MoveToOuterDisposeScope();
    }
}

/// <summary>Multi-head self-attention projections (HF <c>BertSelfAttention</c>, the <c>attention.self</c> module).</summary>
internal sealed class BertSelfAttention : nn.Module<Tensor, Tensor?, Tensor>
{
    [ComponentName(Name = "query")]
    private readonly Linear _query;

    [ComponentName(Name = "key")]
    private readonly Linear _key;

    [ComponentName(Name = "value")]
    private readonly Linear _value;

    private readonly long _hiddenSize;
    private readonly long _headCount;
    private readonly long _headSize;
    private readonly double _attentionDropout;

    public BertSelfAttention(BertConfig config, Device? device) : base(nameof(BertSelfAttention))
    {
        _hiddenSize = config.HiddenSize;
        _headCount = config.HeadCount;
        _headSize = config.HeadSize;
        // Attention dropout is applied inside scaled_dot_product_attention, so it has no module.
        _attentionDropout = config.AttentionDropout;
        _query = nn.Linear(_hiddenSize, _hiddenSize, hasBias: true, device: device);
        _key = nn.Linear(_hiddenSize, _hiddenSize, hasBias: true, device: device);
        _value = nn.Linear(_hiddenSize, _hiddenSize, hasBias: true, device: device);
        RegisterComponents();
    }

    /// <summary>Attends over <paramref name="hidden"/> [B, T, d]; <paramref name="mask"/> is null or a boolean [B, 1, 1, T] key mask (true = may attend).</summary>
    public override Tensor forward(Tensor hidden, Tensor? mask)
    {
        using var scope = torch.NewDisposeScope();
        var batch = hidden.size(0);
        var length = hidden.size(1);
        var query = SplitHeads(_query.call(hidden), batch, length);
        var key = SplitHeads(_key.call(hidden), batch, length);
        var value = SplitHeads(_value.call(hidden), batch, length);
        var dropout = training ? _attentionDropout : 0.0;
        var attended = nn.functional.scaled_dot_product_attention(query, key, value, mask, p: dropout, is_casual: false);
        return attended.transpose(1, 2).reshape(batch, length, _hiddenSize).MoveToOuterDisposeScope();
    }

    private Tensor SplitHeads(Tensor projected, long batch, long length)
        => projected.view(batch, length, _headCount, _headSize).transpose(1, 2);
}

/// <summary>Output projection, dropout and the residual LayerNorm (HF <c>BertSelfOutput</c> and <c>BertOutput</c> share this shape).</summary>
internal sealed class BertResidualOutput : nn.Module<Tensor, Tensor, Tensor>
{
    [ComponentName(Name = "dense")]
    private readonly Linear _dense;

    [ComponentName(Name = "LayerNorm")]
    private readonly LayerNorm _layerNorm;

    [ComponentName(Name = "dropout")]
    private readonly Dropout _dropout;

    public BertResidualOutput(long inFeatures, BertConfig config, Device? device) : base(nameof(BertResidualOutput))
    {
        _dense = nn.Linear(inFeatures, config.HiddenSize, hasBias: true, device: device);
        _layerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEpsilon, device: device);
        _dropout = nn.Dropout(config.HiddenDropout);
        RegisterComponents();
    }

    /// <summary>LayerNorm(dropout(dense(<paramref name="hidden"/>)) + <paramref name="residual"/>).</summary>
    public override Tensor forward(Tensor hidden, Tensor residual)
    {
        using var scope = torch.NewDisposeScope();
        return _layerNorm.call(_dropout.call(_dense.call(hidden)).add(residual, Scalars.One)).MoveToOuterDisposeScope();
    }
}

/// <summary>Self-attention followed by its output block (HF <c>BertAttention</c>).</summary>
internal sealed class BertAttention : nn.Module<Tensor, Tensor?, Tensor>
{
    [ComponentName(Name = "self")]
    private readonly BertSelfAttention _self;

    [ComponentName(Name = "output")]
    private readonly BertResidualOutput _output;

    public BertAttention(BertConfig config, Device? device) : base(nameof(BertAttention))
    {
        _self = new BertSelfAttention(config, device);
        _output = new BertResidualOutput(config.HiddenSize, config, device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden, Tensor? mask)
    {
        using var scope = torch.NewDisposeScope();
        return _output.call(_self.call(hidden, mask), hidden).MoveToOuterDisposeScope();
    }
}

/// <summary>The feed-forward expansion and its activation (HF <c>BertIntermediate</c>).</summary>
internal sealed class BertIntermediate : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "dense")]
    private readonly Linear _dense;

    [ComponentName(Name = "intermediate_act_fn")]
    private readonly nn.Module<Tensor, Tensor> _activation;

    public BertIntermediate(BertConfig config, Device? device) : base(nameof(BertIntermediate))
    {
        _dense = nn.Linear(config.HiddenSize, config.IntermediateSize, hasBias: true, device: device);
        _activation = BertActivations.Create(config.HiddenActivation);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden)
    {
        using var scope = torch.NewDisposeScope();
        return _activation.call(_dense.call(hidden)).MoveToOuterDisposeScope();
    }
}

/// <summary>One post-LayerNorm encoder layer (HF <c>BertLayer</c>): attention, then the feed-forward block.</summary>
internal sealed class BertLayer : nn.Module<Tensor, Tensor?, Tensor>
{
    [ComponentName(Name = "attention")]
    private readonly BertAttention _attention;

    [ComponentName(Name = "intermediate")]
    private readonly BertIntermediate _intermediate;

    [ComponentName(Name = "output")]
    private readonly BertResidualOutput _output;

    public BertLayer(BertConfig config, Device? device) : base(nameof(BertLayer))
    {
        _attention = new BertAttention(config, device);
        _intermediate = new BertIntermediate(config, device);
        _output = new BertResidualOutput(config.IntermediateSize, config, device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden, Tensor? mask)
    {
        // A scope per layer frees each layer's temporaries as soon as it is done; under no_grad that bounds inference
        // memory to one layer's activations.
        using var scope = torch.NewDisposeScope();
        var attended = _attention.call(hidden, mask);
        return _output.call(_intermediate.call(attended), attended).MoveToOuterDisposeScope();
    }
}

/// <summary>The stack of encoder layers (HF <c>BertEncoder</c>, parameters under <c>encoder.layer.{i}</c>).</summary>
internal sealed class BertEncoder : nn.Module<Tensor, Tensor?, Tensor>
{
    [ComponentName(Name = "layer")]
    private readonly ModuleList<BertLayer> _layer;

    public BertEncoder(BertConfig config, Device? device) : base(nameof(BertEncoder))
    {
        var layers = new BertLayer[config.LayerCount];
        for (var i = 0; i < layers.Length; i++)
        {
            layers[i] = new BertLayer(config, device);
        }

        _layer = nn.ModuleList(layers);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden, Tensor? mask)
    {
        // Indexing, not foreach: ModuleList's enumerator is boxed and would allocate per step.
        for (var i = 0; i < _layer.Count; i++)
        {
            hidden = _layer[i].call(hidden, mask);
        }

        return hidden;
    }
}

/// <summary>tanh(dense(hidden state of the first token)) (HF <c>BertPooler</c>).</summary>
internal sealed class BertPooler : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "dense")]
    private readonly Linear _dense;

    public BertPooler(BertConfig config, Device? device) : base(nameof(BertPooler))
    {
        _dense = nn.Linear(config.HiddenSize, config.HiddenSize, hasBias: true, device: device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden)
    {
        using var scope = torch.NewDisposeScope();
        var first = hidden.select(1, 0);
        return _dense.call(first).tanh().MoveToOuterDisposeScope();
    }
}

/// <summary>dense, activation, LayerNorm before the masked-LM decoder (HF <c>BertPredictionHeadTransform</c>).</summary>
internal sealed class BertPredictionHeadTransform : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "dense")]
    private readonly Linear _dense;

    [ComponentName(Name = "transform_act_fn")]
    private readonly nn.Module<Tensor, Tensor> _activation;

    [ComponentName(Name = "LayerNorm")]
    private readonly LayerNorm _layerNorm;

    public BertPredictionHeadTransform(BertConfig config, Device? device) : base(nameof(BertPredictionHeadTransform))
    {
        _dense = nn.Linear(config.HiddenSize, config.HiddenSize, hasBias: true, device: device);
        _activation = BertActivations.Create(config.HiddenActivation);
        _layerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEpsilon, device: device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden)
    {
        using var scope = torch.NewDisposeScope();
        return _layerNorm.call(_activation.call(_dense.call(hidden))).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// HF <c>BertLMPredictionHead</c> (<c>cls.predictions</c>): the transform, the output bias and, when the decoder is not
/// tied to the word embedding, the decoder weight. The tied weight is passed in at call time rather than held in a
/// field, because a module field would be registered and its weight listed twice.
/// </summary>
internal sealed class BertLMPredictionHead : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "transform")]
    private readonly BertPredictionHeadTransform _transform;

    // Null when the decoder is tied to the word embedding.
    [ComponentName(Name = "decoder")]
    private readonly Gpt2OutputHead? _decoder;

    // Not readonly: Module.to(...) replaces parameters and writes them back into the fields by reflection.
    [ComponentName(Name = "bias")]
    private Parameter _bias;

    public BertLMPredictionHead(BertConfig config, Device? device) : base(nameof(BertLMPredictionHead))
    {
        _transform = new BertPredictionHeadTransform(config, device);
        if (!config.TieWordEmbeddings)
        {
            _decoder = new Gpt2OutputHead(config.VocabularySize, config.HiddenSize, device);
        }

        _bias = Gpt2Parameters.Create([config.VocabularySize], device);
        RegisterComponents();
    }

    public Parameter Bias => _bias;

    public Gpt2OutputHead? Decoder => _decoder;

    /// <summary>Transformed hidden states [B, T, d] (before the decoder).</summary>
    public override Tensor forward(Tensor hidden) => _transform.call(hidden);

    /// <summary>Logits [B, T, V] from <paramref name="hidden"/> with <paramref name="tiedWeight"/> when tied.</summary>
    public Tensor Logits(Tensor hidden, Tensor tiedWeight)
    {
        using var scope = torch.NewDisposeScope();
        var transformed = call(hidden);
        var logits = _decoder is null
            ? nn.functional.linear(transformed, tiedWeight, _bias)
            : _decoder.call(transformed).add(_bias, Scalars.One);
        return logits.MoveToOuterDisposeScope();
    }
}

/// <summary>HF <c>BertOnlyMLMHead</c>: the <c>cls</c> prefix around <see cref="BertLMPredictionHead"/>.</summary>
internal sealed class BertOnlyMLMHead : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "predictions")]
    private readonly BertLMPredictionHead _predictions;

    public BertOnlyMLMHead(BertConfig config, Device? device) : base(nameof(BertOnlyMLMHead))
    {
        _predictions = new BertLMPredictionHead(config, device);
        RegisterComponents();
    }

    public BertLMPredictionHead Predictions => _predictions;

    public override Tensor forward(Tensor hidden) => _predictions.call(hidden);
}

/// <summary>Weight initialization of HF's <c>BertPreTrainedModel._init_weights</c>, and the shared input checks.</summary>
internal static class BertModules
{
    public static void Initialize(nn.Module root, BertConfig config, Gpt2Embedding wordEmbeddings)
    {
        var std = config.InitializerRange;
        using var noGrad = torch.no_grad();
        foreach (var module in root.modules())
        {
            switch (module)
            {
                case Linear linear:
                    nn.init.normal_(linear.weight, 0, std);
                    if (linear.bias is { } bias)
                    {
                        nn.init.zeros_(bias);
                    }

                    break;
                case Gpt2Embedding embedding:
                    nn.init.normal_(embedding.Weight, 0, std);
                    break;
                case Gpt2OutputHead head:
                    nn.init.normal_(head.Weight, 0, std);
                    break;
                case BertLMPredictionHead predictions:
                    nn.init.zeros_(predictions.Bias);
                    break;
            }
        }

        // LayerNorm modules already start at weight = 1, bias = 0. The padding row starts at zero, as in HF.
        if (config.PadTokenId is { } pad)
        {
            wordEmbeddings.Weight[pad].zero_();
        }
    }

    public static void ValidateInputs(BertConfig config, Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        if (inputIds.dim() != 2)
        {
            throw new ArgumentException(
                $"inputIds must have shape [batch, length] but has {inputIds.dim()} dimensions; add a batch dimension with unsqueeze(0).",
                nameof(inputIds));
        }

        if (inputIds.dtype != ScalarType.Int64 && inputIds.dtype != ScalarType.Int32)
        {
            throw new ArgumentException($"inputIds must hold integer token ids (int64 or int32) but has dtype {inputIds.dtype}.", nameof(inputIds));
        }

        var length = inputIds.size(1);
        if (length < 1)
        {
            throw new ArgumentException("inputIds must contain at least one token per sequence.", nameof(inputIds));
        }

        if (length > config.MaxPositions)
        {
            throw new ArgumentException(
                $"Sequence length {length} exceeds the model's position table (MaxPositions = {config.MaxPositions}); truncate or split the input to at most {config.MaxPositions} tokens.",
                nameof(inputIds));
        }

        RequireSameShape(inputIds, attentionMask, nameof(attentionMask));
        RequireSameShape(inputIds, tokenTypeIds, nameof(tokenTypeIds));
        if (tokenTypeIds is not null && tokenTypeIds.dtype != ScalarType.Int64 && tokenTypeIds.dtype != ScalarType.Int32)
        {
            throw new ArgumentException($"tokenTypeIds must hold integer segment ids (int64 or int32) but has dtype {tokenTypeIds.dtype}.", nameof(tokenTypeIds));
        }
    }

    /// <summary>
    /// Turns a [B, T] padding mask (1 = real token) into a boolean [B, 1, 1, T] key mask for scaled_dot_product_attention.
    /// A row without any real token may attend everywhere: a softmax over no key at all is NaN in some kernels, and
    /// that NaN would reach the gradients. Such a row's outputs are meaningless either way.
    /// </summary>
    public static Tensor KeyMask(Tensor attentionMask)
    {
        var keyIsReal = attentionMask.to_type(ScalarType.Bool);
        var noRealKey = keyIsReal.any(1, keepdim: true).logical_not_();
        return keyIsReal.logical_or(noRealKey).view(attentionMask.size(0), 1, 1, attentionMask.size(1));
    }

    private static void RequireSameShape(Tensor inputIds, Tensor? other, string name)
    {
        if (other is not null && (other.dim() != 2 || other.size(0) != inputIds.size(0) || other.size(1) != inputIds.size(1)))
        {
            throw new ArgumentException(
                $"{name} must have the same [batch, length] shape as inputIds ([{inputIds.size(0)}, {inputIds.size(1)}]) but has shape [{string.Join(", ", other.shape)}].",
                name);
        }
    }
}
