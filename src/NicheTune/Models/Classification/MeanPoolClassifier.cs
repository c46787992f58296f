using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace NicheTune.Models;

/// <summary>
/// A sequence classifier on a causal language model: the final hidden states (after the last normalisation) averaged
/// over the real tokens, dropout, then a linear layer to the classes. It maps (ids, mask) to logits [B, C], the shape
/// <c>Objectives.SequenceClassification()</c> trains, and it is the classifier <c>ModelPackage</c> exports for GPT-2 or
/// Llama bodies. Inputs longer than the body's context are read in context-sized windows; the average runs over the
/// real tokens of all windows. Parameter names keep the body's under <c>body.</c>, so layer groups and LoRA targets
/// work unchanged, and the head is <c>classifier.weight</c> / <c>classifier.bias</c>.
/// </summary>
public sealed class MeanPoolClassifier : nn.Module<Tensor, Tensor, Tensor>
{
    [ComponentName(Name = "body")]
    private readonly nn.Module _body;

    [ComponentName(Name = "dropout")]
    private readonly Dropout _dropout;

    [ComponentName(Name = "classifier")]
    private readonly Linear _classifier;

    private readonly IHiddenStateModel _hidden;

    /// <summary>Wraps <paramref name="body"/> (owned by the classifier from now on) with a fresh head for <paramref name="classCount"/> classes.</summary>
    /// <param name="body">A causal LM of this library (<see cref="Gpt2LMHeadModel"/>, <see cref="LlamaForCausalLM"/>).</param>
    /// <param name="classCount">The number of classes, at least 2.</param>
    /// <param name="dropout">Dropout before the head, in [0, 1).</param>
    /// <exception cref="ArgumentNullException"><paramref name="body"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="body"/> does not expose its hidden states and context length.</exception>
    /// <exception cref="ArgumentOutOfRangeException">Fewer than two classes, or a dropout outside [0, 1).</exception>
    public MeanPoolClassifier(nn.Module body, int classCount, double dropout = 0.1) : base(nameof(MeanPoolClassifier))
    {
        ArgumentNullException.ThrowIfNull(body);
        if (body is not IHiddenStateModel hidden || body is not ICausalLanguageModel causal)
        {
            throw new ArgumentException($"The body ({body.GetType().Name}) must be a causal LM implementing IHiddenStateModel and ICausalLanguageModel, such as Gpt2LMHeadModel or LlamaForCausalLM.", nameof(body));
        }

        if (classCount < 2)
        {
            throw new ArgumentOutOfRangeException(nameof(classCount), classCount, "A classifier needs at least two classes.");
        }

        if (!(dropout >= 0 && dropout < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(dropout), dropout, "Use a dropout probability in [0, 1), e.g. 0.1.");
        }

        _body = body;
        _hidden = hidden;
        ContextLength = causal.ContextLength;
        HiddenSize = hidden.OutputWeight.shape[1];
        ClassCount = classCount;
        Dropout = dropout;
        _dropout = nn.Dropout(dropout);
        _classifier = nn.Linear(HiddenSize, classCount, device: hidden.OutputWeight.device, dtype: hidden.OutputWeight.dtype);
        RegisterComponents();
    }

    /// <summary>The causal LM under the head.</summary>
    public nn.Module Body => _body;

    /// <summary>The number of classes (the width of the logits).</summary>
    public int ClassCount { get; }

    /// <summary>The dropout probability before the head.</summary>
    public double Dropout { get; }

    /// <summary>The body's context length: the window longer inputs are cut into.</summary>
    public int ContextLength { get; }

    /// <summary>The width of the hidden states (and of <see cref="Embed"/>'s vectors).</summary>
    public long HiddenSize { get; }

    /// <summary>Class logits [B, C] for ids [B, T] and a right-padding mask [B, T] (1 = real token); T may exceed the context.</summary>
    /// <param name="inputIds">Token ids [B, T] (int64 or int32), right-padded.</param>
    /// <param name="attentionMask">[B, T] with 1 for real tokens and 0 for padding.</param>
    /// <returns>Logits [B, C].</returns>
    /// <exception cref="ArgumentException">The ids and mask have different shapes.</exception>
    public override Tensor forward(Tensor inputIds, Tensor attentionMask)
    {
        using var scope = torch.NewDisposeScope();
        Tensor pooled = Embed(inputIds, attentionMask);
        return _classifier.call(_dropout.call(pooled)).MoveToOuterDisposeScope();
    }

    /// <summary>The mean of the final hidden states over the real tokens: the vector the head classifies, [B, d].</summary>
    /// <param name="inputIds">Token ids [B, T] (int64 or int32), right-padded.</param>
    /// <param name="attentionMask">[B, T] with 1 for real tokens and 0 for padding.</param>
    /// <returns>Pooled states [B, d].</returns>
    /// <exception cref="ArgumentException">The ids and mask have different shapes.</exception>
    public Tensor Embed(Tensor inputIds, Tensor attentionMask)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        ArgumentNullException.ThrowIfNull(attentionMask);
        if (inputIds.dim() != 2 || !inputIds.shape.SequenceEqual(attentionMask.shape))
        {
            throw new ArgumentException($"inputIds [{string.Join(", ", inputIds.shape)}] and attentionMask [{string.Join(", ", attentionMask.shape)}] must both be [batch, length].", nameof(attentionMask));
        }

        using var scope = torch.NewDisposeScope();
        long rows = inputIds.shape[0];
        long length = inputIds.shape[1];
        long window = ContextLength;
        long windows = (length + window - 1) / window;
        Tensor ids = inputIds;
        Tensor mask = attentionMask;
        if (windows * window != length && windows > 1)
        {
            ids = nn.functional.pad(ids, [0, windows * window - length], value: 0);
            mask = nn.functional.pad(mask, [0, windows * window - length], value: 0);
        }

        long width = windows > 1 ? window : length;
        // With right padding and causal attention a real token never attends to padding, so the body needs no mask; an
        // all-padding window then yields finite states that the pooling ignores (a mask hiding a whole row would not).
        Tensor hidden = _hidden.HiddenStates(ids.reshape(rows * windows, width)).reshape(rows, windows * width, -1);
        Tensor weights = mask.to_type(hidden.dtype).unsqueeze(-1);
        Tensor pooled = (hidden * weights).sum(1) / weights.sum(1).clamp_min(Scalars.One);
        return pooled.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
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
