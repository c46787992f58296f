using System;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Models;

// The incremental (key/value cache) path of GPT-2, kept apart from the training forward so that the latter
// stays exactly as it is. Sub-layers are invoked with .call(...) so forward hooks (LoRA) also apply while generating.

internal sealed partial class Gpt2Attention
{
    /// <summary>
    /// Attends the new positions of <paramref name="hidden"/> [B, T, d] to themselves and to the positions already
    /// in <paramref name="cache"/>, after appending their keys and values to layer <paramref name="layer"/>.
    /// </summary>
    public Tensor ForwardCached(Tensor hidden, KeyValueCache cache, int layer)
    {
        var batch = hidden.size(0);
        var length = hidden.size(1);
        var qkv = _cAttn.call(hidden)
            .view(batch, length, 3, _headCount, _headSize)
            .permute(2, 0, 3, 1, 4);
        var (key, value) = cache.Append(layer, qkv[1], qkv[2]);

        var mask = KeyValueCache.CausalMask(length, cache.Length, hidden.device);
        var attended = nn.functional.scaled_dot_product_attention(
            qkv[0], key, value, mask, p: training ? _attentionDropout : 0.0, is_casual: mask is null && length > 1);

        var merged = attended.transpose(1, 2).reshape(batch, length, _embeddingSize);
        return _residDropout.call(_cProj.call(merged));
    }
}

internal sealed partial class Gpt2Block
{
    /// <summary>The block on new positions only, reading and extending <paramref name="cache"/> at layer <paramref name="layer"/>.</summary>
    public Tensor ForwardCached(Tensor hidden, KeyValueCache cache, int layer)
    {
        using var scope = torch.NewDisposeScope();
        var afterAttention = hidden.add(_attn.ForwardCached(_ln1.call(hidden), cache, layer), Scalars.One);
        var output = afterAttention.add(_mlp.call(_ln2.call(afterAttention)), Scalars.One);
        return output.MoveToOuterDisposeScope();
    }
}

internal sealed partial class Gpt2Transformer
{
    /// <summary>
    /// Runs validated ids [B, T] at positions cache.Length … cache.Length + T − 1 through every block, commits the
    /// new positions to <paramref name="cache"/> and returns the ln_f hidden states [B, T, d].
    /// </summary>
    public Tensor ForwardCached(Tensor inputIds, KeyValueCache cache)
    {
        var length = inputIds.size(1);
        var positions = _wpe.Weight.narrow(0, cache.Length, length);
        var hidden = _drop.call(_wte.call(inputIds).add(positions, Scalars.One));
        for (var i = 0; i < _h.Count; i++)
        {
            hidden = _h[i].ForwardCached(hidden, cache, i);
        }

        cache.Advance(length);
        return _lnF.call(hidden);
    }
}

/// <summary>GPT-2 as an <see cref="ICausalLanguageModel"/>: incremental decoding with a <see cref="KeyValueCache"/>.</summary>
public sealed partial class Gpt2LMHeadModel : ICausalLanguageModel
{
    /// <inheritdoc/>
    public int VocabularySize => Config.VocabularySize;

    /// <inheritdoc/>
    public int ContextLength => Config.ContextLength;

    /// <inheritdoc/>
    public int LayerCount => Config.LayerCount;

    /// <inheritdoc/>
    public Tensor NextTokenLogits(Tensor inputIds, KeyValueCache? cache = null)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        if (cache is null)
        {
            using var plain = torch.NewDisposeScope();
            var all = HiddenStates(inputIds);
            var lastHidden = all.select(1, all.size(1) - 1);
            return nn.functional.linear(lastHidden, OutputWeight).MoveToOuterDisposeScope();
        }

        CausalModelInputs.Validate(inputIds, null, Config.ContextLength);
        cache.EnsureUsable(LayerCount, inputIds.size(0), inputIds.size(1), ContextLength);

        using var scope = torch.NewDisposeScope();
        var hidden = _transformer.ForwardCached(inputIds, cache);
        var last = hidden.select(1, hidden.size(1) - 1);
        return nn.functional.linear(last, OutputWeight).MoveToOuterDisposeScope();
    }
}
