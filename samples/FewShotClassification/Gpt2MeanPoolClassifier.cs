// A sequence classifier on top of the samples' base GPT-2: the final hidden states (after ln_f) averaged over the real
// (unmasked) tokens, dropout, then a linear layer to the classes. (ids, mask) → logits [B, C], the shape the library's
// sequence-classification objective calls. Inputs longer than the model's context are cut into context-sized windows
// that the body reads independently; the average runs over the real tokens of all windows. The parameter names keep
// GPT-2's (transformer.h.{i}.…) under "body", so the library's LayerMap sees embeddings, layers and a "classifier"
// head, and per-group learning rates work unchanged.
using NicheTune.Models;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace NicheTune.Samples;

/// <summary>Mean-pooled GPT-2 hidden states → dropout → linear classifier.</summary>
internal sealed class Gpt2MeanPoolClassifier : nn.Module<Tensor, Tensor, Tensor>
{
    [ComponentName(Name = "body")]
    private readonly Gpt2LMHeadModel _body;

    [ComponentName(Name = "dropout")]
    private readonly Dropout _dropout;

    [ComponentName(Name = "classifier")]
    private readonly Linear _classifier;

    /// <summary>Wraps <paramref name="body"/> (which the classifier owns from now on) with a fresh head for <paramref name="classCount"/> classes.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Fewer than two classes, or a dropout outside [0, 1).</exception>
    public Gpt2MeanPoolClassifier(Gpt2LMHeadModel body, int classCount, double dropout = 0.1) : base(nameof(Gpt2MeanPoolClassifier))
    {
        ArgumentNullException.ThrowIfNull(body);
        if (classCount < 2)
        {
            throw new ArgumentOutOfRangeException(nameof(classCount), classCount, "A classifier needs at least two classes.");
        }

        if (!(dropout >= 0 && dropout < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(dropout), dropout, "Use a dropout probability in [0, 1), e.g. 0.1.");
        }

        _body = body;
        _dropout = nn.Dropout(dropout);
        _classifier = nn.Linear(body.Config.EmbeddingSize, classCount);
        RegisterComponents();
    }

    /// <summary>
    /// Class logits [B, C] for ids [B, T] and a right-padding mask [B, T] (1 = real token); T may exceed the context, the
    /// text is then read in windows of the context length.
    /// </summary>
    public override Tensor forward(Tensor inputIds, Tensor attentionMask)
    {
        using var scope = torch.NewDisposeScope();
        long rows = inputIds.shape[0];
        long length = inputIds.shape[1];
        long window = _body.Config.ContextLength;
        long windows = (length + window - 1) / window;
        Tensor ids = inputIds;
        Tensor mask = attentionMask;
        if (windows * window != length)
        {
            ids = nn.functional.pad(ids, [0, windows * window - length], value: 0);
            mask = nn.functional.pad(mask, [0, windows * window - length], value: 0);
        }

        // With right padding and causal attention a real token never attends to padding, so the body needs no mask; an
        // all-padding window then yields finite states that the pooling ignores (a mask hiding a whole row would not).
        Tensor hidden = _body.HiddenStates(ids.reshape(rows * windows, window)).reshape(rows, windows * window, -1);
        Tensor weights = mask.to_type(hidden.dtype).unsqueeze(-1);
        Tensor pooled = (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0);
        return _classifier.forward(_dropout.forward(pooled)).MoveToOuterDisposeScope();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _body.Dispose();
            _dropout.Dispose();
            _classifier.Dispose();
        }

        base.Dispose(disposing);
    }
}
