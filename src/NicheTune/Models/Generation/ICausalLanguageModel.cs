using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Models;

/// <summary>
/// A decoder-only language model that can predict the next token incrementally, reusing the keys and
/// values of the tokens it has already seen. <see cref="TextGenerator"/> drives any implementation, so
/// GPT-2, the Llama family and a user's own model generate text through the same code.
/// </summary>
/// <remarks>
/// When the implementation is a TorchSharp module, <see cref="TextGenerator"/> switches it to evaluation mode while it
/// generates and restores the previous mode afterwards, and creates the input ids on the device of its first parameter.
/// An implementation may ignore the cache (and recompute from its own state) as long as the logits are right.
/// </remarks>
public interface ICausalLanguageModel
{
    /// <summary>The number of token ids the model scores; the width of the logits it returns.</summary>
    int VocabularySize { get; }

    /// <summary>The longest sequence (prompt plus generated tokens) the model accepts.</summary>
    int ContextLength { get; }

    /// <summary>The number of transformer layers, which is the number of key/value pairs a <see cref="KeyValueCache"/> holds.</summary>
    int LayerCount { get; }

    /// <summary>
    /// Runs the model on <paramref name="inputIds"/> and returns the logits of the last position of every row.
    /// </summary>
    /// <param name="inputIds">
    /// int64 (or int32) ids of shape [B, T]: the tokens that follow the ones already in <paramref name="cache"/>
    /// (the whole prompt on the first call, then one token per step).
    /// </param>
    /// <param name="cache">
    /// The keys and values of the earlier tokens, which this call extends by T positions; <see langword="null"/>
    /// runs the whole sequence from scratch. A cache is an inference structure: use it under <c>torch.no_grad()</c>.
    /// </param>
    /// <returns>Logits of shape [B, V] for the token after the last one of each row.</returns>
    /// <exception cref="System.ArgumentException">
    /// The ids have the wrong shape or dtype, the cache belongs to another model or batch, or the cached length
    /// plus T exceeds <see cref="ContextLength"/>.
    /// </exception>
    /// <exception cref="System.InvalidOperationException">A cache is given while gradients are enabled.</exception>
    Tensor NextTokenLogits(Tensor inputIds, KeyValueCache? cache = null);
}
