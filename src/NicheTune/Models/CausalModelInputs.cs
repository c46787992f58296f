using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Models;

/// <summary>Input checks and the attention mask shared by the causal language models (GPT-2, the Llama family).</summary>
internal static class CausalModelInputs
{
    /// <summary>Checks ids [B, T] (int64/int32, T ≥ 1, cached + T within the context) and an optional [B, T] mask.</summary>
    public static void Validate(Tensor inputIds, Tensor? attentionMask, long contextLength, long cached = 0)
    {
        if (inputIds.dim() != 2)
        {
            throw new ArgumentException(
                $"inputIds must have shape [batch, length] but has {inputIds.dim()} dimensions; add a batch dimension with unsqueeze(0).",
                nameof(inputIds));
        }

        if (inputIds.dtype != ScalarType.Int64 && inputIds.dtype != ScalarType.Int32)
        {
            throw new ArgumentException(
                $"inputIds must hold integer token ids (int64 or int32) but has dtype {inputIds.dtype}.",
                nameof(inputIds));
        }

        long length = inputIds.size(1);
        if (length < 1)
        {
            throw new ArgumentException("inputIds must contain at least one token per sequence.", nameof(inputIds));
        }

        if (cached + length > contextLength)
        {
            throw new ArgumentException(
                $"Sequence length {cached + length} exceeds the model's context length (ContextLength = {contextLength}); " +
                $"truncate or split the input to at most {contextLength} tokens.",
                nameof(inputIds));
        }

        if (attentionMask is not null &&
            (attentionMask.dim() != 2 || attentionMask.size(0) != inputIds.size(0) || attentionMask.size(1) != length))
        {
            throw new ArgumentException(
                $"attentionMask must have the same [batch, length] shape as inputIds ([{inputIds.size(0)}, {length}]) " +
                $"but has {attentionMask.dim()} dimensions with shape [{string.Join(", ", attentionMask.shape)}].",
                nameof(attentionMask));
        }
    }

    /// <summary>
    /// Combines causality with key padding into a boolean [B, 1, T, T] mask (true = may attend). Every query may always
    /// attend to itself: that changes nothing for real tokens, but keeps a padded query from having no allowed key at all.
    /// libtorch 2.10's CPU kernel happens to return zeros for such rows, but a softmax over nothing is NaN in other
    /// kernels and versions, and a NaN there would poison the gradients through the backward pass.
    /// </summary>
    public static Tensor AttentionMask(Tensor attentionMask, long length)
    {
        var device = attentionMask.device;
        var keyIsReal = attentionMask.to_type(ScalarType.Bool).view(attentionMask.size(0), 1, 1, length);
        var self = torch.eye(length, dtype: ScalarType.Bool, device: device);
        var causal = torch.ones(length, length, dtype: ScalarType.Bool, device: device).tril_();
        return keyIsReal.logical_or(self).logical_and_(causal);
    }
}
