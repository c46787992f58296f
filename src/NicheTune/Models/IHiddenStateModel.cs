using static TorchSharp.torch;

namespace NicheTune.Models;

/// <summary>
/// A model whose output layer is a plain linear projection of its last hidden states: logits = h · Wᵀ (+ b). Models that
/// implement it let the language-modelling objective compute the loss in chunks straight from the hidden states —
/// never materialising the [B, T, V] logits, which on a 50k vocabulary are most of a training step's time and memory.
/// The project's own models implement it; any other module falls back to <c>forward</c> and the ordinary loss.
/// </summary>
public interface IHiddenStateModel
{
    /// <summary>Runs the model up to (and including) its final normalisation, without the output projection.</summary>
    /// <param name="inputIds">Token ids [B, T].</param>
    /// <param name="attentionMask">[B, T] with 1 for real tokens and 0 for padding, or <see langword="null"/>.</param>
    /// <returns>Hidden states [B, T, d], such that <c>forward</c>'s logits equal <c>linear(hidden, OutputWeight, OutputBias)</c>.</returns>
    Tensor HiddenStates(Tensor inputIds, Tensor? attentionMask = null);

    /// <summary>The [V, d] output projection (the tied token embedding where the model ties them).</summary>
    Tensor OutputWeight { get; }

    /// <summary>The [V] output bias, or <see langword="null"/> when the projection has none.</summary>
    Tensor? OutputBias { get; }
}
