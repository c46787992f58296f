using System;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace NicheTune.Models;

// The modules in this file exist to reproduce Hugging Face's module tree, so that the
// parameter names that TorchSharp derives from [ComponentName] fields are exactly the
// names found in a GPT-2 checkpoint (e.g. "transformer.h.0.attn.c_attn.weight").
// Parameter fields are deliberately not readonly: Module.to(...) replaces parameters and
// writes the new ones back into the fields by reflection.

/// <summary>Shared helpers for creating GPT-2 parameters.</summary>
internal static class Gpt2Parameters
{
    /// <summary>
    /// Creates an uninitialized parameter that no dispose scope owns, so that building a model inside a
    /// caller's <c>NewDisposeScope()</c> does not dispose its weights when that scope ends.
    /// </summary>
    public static Parameter Create(long[] shape, Device? device)
    {
        var parameter = new Parameter(torch.empty(shape, device: device));
        parameter.DetachFromDisposeScope();
        return parameter;
    }
}

/// <summary>
/// A lookup table with a single <c>weight</c> parameter of shape [rows, width], named like
/// <c>nn.Embedding</c>. TorchSharp's own <c>Embedding</c> is native and hands out a new
/// wrapper object on every <c>weight</c> read, which would defeat weight tying by reference
/// and allocate on every step.
/// </summary>
internal sealed class Gpt2Embedding : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "weight")]
    private Parameter _weight;

    public Gpt2Embedding(long rows, long width, Device? device) : base(nameof(Gpt2Embedding))
    {
        _weight = Gpt2Parameters.Create([rows, width], device);
    }

    public Parameter Weight => _weight;

    /// <summary>Looks up the rows for integer <paramref name="ids"/> of shape [B, T] and returns [B, T, width].</summary>
    public override Tensor forward(Tensor ids)
    {
        var rows = _weight.index_select(0, ids.reshape(-1));
        return rows.view(ids.size(0), ids.size(1), _weight.size(1));
    }

    /// <summary>
    /// The first <paramref name="count"/> rows. The full forward always starts at position 0 (only the
    /// key/value-cache path starts later), so a view of the table replaces building an arange and gathering with it.
    /// </summary>
    public Tensor FirstRows(long count) => _weight.narrow(0, 0, count);
}

/// <summary>
/// Hugging Face's <c>Conv1D</c>: a linear layer whose weight is stored as [in, out] (the transpose of
/// <c>nn.Linear</c>) so that checkpoint tensors load without transposition; y = x @ W + b.
/// </summary>
internal sealed class Gpt2Conv1D : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "weight")]
    private Parameter _weight;

    [ComponentName(Name = "bias")]
    private Parameter _bias;

    public Gpt2Conv1D(long inFeatures, long outFeatures, Device? device) : base(nameof(Gpt2Conv1D))
    {
        _weight = Gpt2Parameters.Create([inFeatures, outFeatures], device);
        _bias = Gpt2Parameters.Create([outFeatures], device);
    }

    public Parameter Weight => _weight;

    public Parameter Bias => _bias;

    /// <summary>Maps [B, T, in] to [B, T, out].</summary>
    public override Tensor forward(Tensor input)
    {
        // addmm fuses the bias add into the matrix multiply, as HF's Conv1D does.
        var flat = input.reshape(-1, _weight.size(0));
        var output = Training.MixedPrecision.AddMatmul(_bias, flat, _weight);
        return output.view(input.size(0), input.size(1), _weight.size(1));
    }
}

/// <summary>Multi-head causal self-attention with HF's <c>c_attn</c> / <c>c_proj</c> names.</summary>
internal sealed partial class Gpt2Attention : nn.Module<Tensor, Tensor?, Tensor>
{
    [ComponentName(Name = "c_attn")]
    private readonly Gpt2Conv1D _cAttn;

    [ComponentName(Name = "c_proj")]
    private readonly Gpt2Conv1D _cProj;

    [ComponentName(Name = "resid_dropout")]
    private readonly Dropout _residDropout;

    private readonly long _embeddingSize;
    private readonly long _headCount;
    private readonly long _headSize;
    private readonly double _attentionDropout;

    public Gpt2Attention(Gpt2Config config, Device? device) : base(nameof(Gpt2Attention))
    {
        _embeddingSize = config.EmbeddingSize;
        _headCount = config.HeadCount;
        _headSize = config.HeadSize;
        // Attention dropout is applied inside scaled_dot_product_attention, so it has no module.
        _attentionDropout = config.AttentionDropout;
        _cAttn = new Gpt2Conv1D(_embeddingSize, 3 * _embeddingSize, device);
        _cProj = new Gpt2Conv1D(_embeddingSize, _embeddingSize, device);
        _residDropout = nn.Dropout(config.ResidualDropout);
    }

    public Gpt2Conv1D QueryKeyValue => _cAttn;

    public Gpt2Conv1D Projection => _cProj;

    /// <summary>
    /// Attends over <paramref name="hidden"/> [B, T, d]. With a null <paramref name="mask"/> the
    /// causal mask is implied (the fast path); otherwise <paramref name="mask"/> is a boolean
    /// [B, 1, T, T] mask (true = may attend) that already contains causality.
    /// </summary>
    public override Tensor forward(Tensor hidden, Tensor? mask)
    {
        var batch = hidden.size(0);
        var length = hidden.size(1);

        // [B, T, 3d] -> [3, B, H, T, hs]: q, k and v become views without copies.
        var qkv = _cAttn.call(hidden)
            .view(batch, length, 3, _headCount, _headSize)
            .permute(2, 0, 3, 1, 4);
        var query = qkv[0];
        var key = qkv[1];
        var value = qkv[2];

        var dropout = training ? _attentionDropout : 0.0;
        // TorchSharp throws when both a mask and the causal flag are given, so the flag is only
        // set on the unmasked path.
        var attended = nn.functional.scaled_dot_product_attention(
            query, key, value, mask, p: dropout, is_casual: mask is null);

        var merged = attended.transpose(1, 2).reshape(batch, length, _embeddingSize);
        return _residDropout.forward(_cProj.call(merged));
    }
}

/// <summary>The position-wise feed-forward network: c_fc, GELU (tanh approximation, HF "gelu_new"), c_proj.</summary>
internal sealed class Gpt2Mlp : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "c_fc")]
    private readonly Gpt2Conv1D _cFc;

    [ComponentName(Name = "c_proj")]
    private readonly Gpt2Conv1D _cProj;

    [ComponentName(Name = "act")]
    private readonly GELU _act;

    [ComponentName(Name = "dropout")]
    private readonly Dropout _dropout;

    public Gpt2Mlp(Gpt2Config config, Device? device) : base(nameof(Gpt2Mlp))
    {
        _cFc = new Gpt2Conv1D(config.EmbeddingSize, config.ResolvedInnerSize, device);
        _cProj = new Gpt2Conv1D(config.ResolvedInnerSize, config.EmbeddingSize, device);
        _act = nn.GELU(GELU.Approximate.tanh);
        _dropout = nn.Dropout(config.ResidualDropout);
    }

    public Gpt2Conv1D Expansion => _cFc;

    public Gpt2Conv1D Projection => _cProj;

    public override Tensor forward(Tensor hidden) =>
        _dropout.forward(_cProj.call(_act.forward(_cFc.call(hidden))));
}

/// <summary>A pre-LayerNorm transformer block: x + attn(ln_1(x)), then + mlp(ln_2(x)).</summary>
internal sealed partial class Gpt2Block : nn.Module<Tensor, Tensor?, Tensor>
{
    [ComponentName(Name = "ln_1")]
    private readonly LayerNorm _ln1;

    [ComponentName(Name = "attn")]
    private readonly Gpt2Attention _attn;

    [ComponentName(Name = "ln_2")]
    private readonly LayerNorm _ln2;

    [ComponentName(Name = "mlp")]
    private readonly Gpt2Mlp _mlp;

    public Gpt2Block(Gpt2Config config, Device? device) : base(nameof(Gpt2Block))
    {
        _ln1 = nn.LayerNorm(config.EmbeddingSize, config.LayerNormEpsilon, device: device);
        _attn = new Gpt2Attention(config, device);
        _ln2 = nn.LayerNorm(config.EmbeddingSize, config.LayerNormEpsilon, device: device);
        _mlp = new Gpt2Mlp(config, device);
    }

    public Gpt2Attention Attention => _attn;

    public Gpt2Mlp Mlp => _mlp;

    public override Tensor forward(Tensor hidden, Tensor? mask)
    {
        // A scope per block frees each block's temporaries as soon as the block is done; under
        // no_grad that bounds inference memory to one block's activations.
        using var scope = torch.NewDisposeScope();
        var afterAttention = hidden.add(_attn.forward(_ln1.forward(hidden), mask), Scalars.One);
        var output = afterAttention.add(_mlp.forward(_ln2.forward(afterAttention)), Scalars.One);
        return output.MoveToOuterDisposeScope();
    }
}

/// <summary>HF's <c>GPT2Model</c> (the "transformer" prefix): embeddings, blocks and the final layer norm.</summary>
internal sealed partial class Gpt2Transformer : nn.Module<Tensor, Tensor?, Tensor>
{
    [ComponentName(Name = "wte")]
    private readonly Gpt2Embedding _wte;

    [ComponentName(Name = "wpe")]
    private readonly Gpt2Embedding _wpe;

    [ComponentName(Name = "drop")]
    private readonly Dropout _drop;

    [ComponentName(Name = "h")]
    private readonly ModuleList<Gpt2Block> _h;

    [ComponentName(Name = "ln_f")]
    private readonly LayerNorm _lnF;

    public Gpt2Transformer(Gpt2Config config, Device? device) : base(nameof(Gpt2Transformer))
    {
        _wte = new Gpt2Embedding(config.VocabularySize, config.EmbeddingSize, device);
        _wpe = new Gpt2Embedding(config.ContextLength, config.EmbeddingSize, device);
        _drop = nn.Dropout(config.EmbeddingDropout);
        var blocks = new Gpt2Block[config.LayerCount];
        for (var i = 0; i < blocks.Length; i++)
        {
            blocks[i] = new Gpt2Block(config, device);
        }

        _h = nn.ModuleList(blocks);
        _lnF = nn.LayerNorm(config.EmbeddingSize, config.LayerNormEpsilon, device: device);
    }

    public Gpt2Embedding TokenEmbedding => _wte;

    public Gpt2Embedding PositionEmbedding => _wpe;

    public ModuleList<Gpt2Block> Blocks => _h;

    /// <summary>
    /// Runs embeddings, blocks and ln_f on validated ids [B, T]; <paramref name="mask"/> is null
    /// (pure causal) or a boolean [B, 1, T, T] attention mask.
    /// </summary>
    public override Tensor forward(Tensor inputIds, Tensor? mask)
    {
        var length = inputIds.size(1);
        // [B, T, d] + [T, d] broadcasts the position embeddings over the batch.
        var hidden = _drop.forward(_wte.forward(inputIds).add(_wpe.FirstRows(length), Scalars.One));
        // Indexing, not foreach: ModuleList's enumerator is boxed and would allocate per step.
        for (var i = 0; i < _h.Count; i++)
        {
            hidden = _h[i].forward(hidden, mask);
        }

        return _lnF.forward(hidden);
    }
}

/// <summary>The untied output projection (HF <c>lm_head</c>, a bias-free linear layer with weight [V, d]).</summary>
internal sealed class Gpt2OutputHead : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "weight")]
    private Parameter _weight;

    public Gpt2OutputHead(long vocabularySize, long embeddingSize, Device? device) : base(nameof(Gpt2OutputHead))
    {
        _weight = Gpt2Parameters.Create([vocabularySize, embeddingSize], device);
    }

    public Parameter Weight => _weight;

    public override Tensor forward(Tensor hidden) => nn.functional.linear(hidden, _weight);
}
