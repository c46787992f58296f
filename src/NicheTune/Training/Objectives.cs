using NicheTune.Evaluation;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Training;

/// <summary>Factories for the built-in training objectives.</summary>
public static class Objectives
{
    /// <summary>
    /// Next-token prediction: cross-entropy between the logits at position t and the token at t + 1, skipping
    /// padding. The model maps input ids [B, T] to logits [B, T, V] (a <c>Module&lt;Tensor, Tensor&gt;</c>, or a
    /// <c>Module&lt;Tensor, Tensor, Tensor&gt;</c> that also takes the attention mask).
    /// </summary>
    /// <remarks>
    /// When the model implements <see cref="Models.IHiddenStateModel"/> (the project's own models do), training computes
    /// the loss with a fused, chunked output projection + cross-entropy that never materialises the [B, T, V] logits:
    /// the same loss and gradients (to float rounding), in less time and memory on large vocabularies. Evaluation
    /// still computes the logits, which metrics need.
    /// </remarks>
    /// <param name="labelSmoothing">Label smoothing ε in [0, 1): the target distribution puts 1 − ε on the next token and spreads ε uniformly.</param>
    /// <param name="fuseOutputLayer">
    /// <see langword="true"/> (default) to use the fused loss where the model allows it; <see langword="false"/> always
    /// calls <c>forward</c> and computes the ordinary cross-entropy (to compare, or when a forward hook on the output
    /// layer must run).
    /// </param>
    /// <returns>The objective.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="labelSmoothing"/> is outside [0, 1).</exception>
    public static ITrainingObjective<TokenBatch> CausalLanguageModeling(double labelSmoothing = 0.0, bool fuseOutputLayer = true)
        => new CausalLanguageModelingObjective(CheckSmoothing(labelSmoothing), fuseOutputLayer);

    /// <summary>
    /// Sequence classification: cross-entropy between logits [B, C] and class labels [B], with optional label
    /// smoothing. The model maps input ids [B, T] (and optionally the attention mask) to logits [B, C].
    /// </summary>
    /// <param name="labelSmoothing">Label smoothing ε in [0, 1).</param>
    /// <returns>The objective.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="labelSmoothing"/> is outside [0, 1).</exception>
    public static ITrainingObjective<TokenBatch> SequenceClassification(double labelSmoothing = 0.0)
        => new SequenceClassificationObjective(CheckSmoothing(labelSmoothing));

    /// <summary>
    /// An objective from a delegate <c>(model, batch) =&gt; loss</c>, for any model and batch type. Evaluation reports
    /// the same loss (metrics that need outputs and targets are skipped).
    /// </summary>
    /// <typeparam name="TBatch">The batch type.</typeparam>
    /// <param name="loss">Computes the scalar loss; called inside the trainer's dispose scope.</param>
    /// <param name="name">Name for logs and reports.</param>
    /// <returns>The objective.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="loss"/> is <see langword="null"/>.</exception>
    public static ITrainingObjective<TBatch> Custom<TBatch>(Func<nn.Module, TBatch, Tensor> loss, string name = "custom")
        where TBatch : ITrainingBatch
    {
        ArgumentNullException.ThrowIfNull(loss);
        return new DelegateObjective<TBatch>(loss, name);
    }

    private static double CheckSmoothing(double labelSmoothing)
    {
        if (!(labelSmoothing >= 0.0 && labelSmoothing < 1.0))
        {
            throw new ArgumentOutOfRangeException(nameof(labelSmoothing), labelSmoothing, "Label smoothing must be in [0, 1); typical values are 0.05–0.2.");
        }

        return labelSmoothing;
    }
}

/// <summary>Calls a model with input ids and, where it accepts one, the attention mask.</summary>
internal static class ModelCall
{
    public static Tensor Forward(nn.Module model, TokenBatch batch) => model switch
    {
        nn.Module<Tensor, Tensor, Tensor> masked => masked.forward(batch.InputIds, batch.AttentionMask),
        nn.Module<Tensor, Tensor> plain => plain.forward(batch.InputIds),
        _ => throw new InvalidOperationException(Describe(model)),
    };

    public static IEnumerable<string> Validate(nn.Module model, string objective)
    {
        if (model is not nn.Module<Tensor, Tensor, Tensor> && model is not nn.Module<Tensor, Tensor>)
        {
            yield return $"Objective '{objective}': {Describe(model)}";
        }
    }

    private static string Describe(nn.Module model) =>
        $"the model ({model.GetType().Name}) must be a Module<Tensor, Tensor> (input ids → logits) or a Module<Tensor, Tensor, Tensor> " +
        "(input ids, attention mask → logits); wrap it, or use Objectives.Custom((model, batch) => loss).";
}

/// <summary>An objective whose cross-entropy can take label smoothing (what <c>Regularize(r =&gt; r.LabelSmoothing(ε))</c> sets).</summary>
internal interface ISmoothableObjective<TBatch>
    where TBatch : ITrainingBatch
{
    ITrainingObjective<TBatch> WithLabelSmoothing(double epsilon);
}

internal sealed class CausalLanguageModelingObjective(double labelSmoothing, bool fuseOutputLayer = true) : ITrainingObjective<TokenBatch>, ISmoothableObjective<TokenBatch>
{
    public ITrainingObjective<TokenBatch> WithLabelSmoothing(double epsilon) => new CausalLanguageModelingObjective(epsilon, fuseOutputLayer);

    public string Name => "causal-lm";

    public IEnumerable<string> Validate(nn.Module model) => ModelCall.Validate(model, Name);

    public Tensor Loss(nn.Module model, TokenBatch batch)
    {
        if (fuseOutputLayer && model is Models.IHiddenStateModel split && OutputLayerIsPlain(model, split))
        {
            // The mask goes where the plain path would pass it: a model called without one is not given one here.
            Tensor? mask = model is nn.Module<Tensor, Tensor, Tensor> ? batch.AttentionMask : null;
            Tensor hidden = split.HiddenStates(batch.InputIds, mask);
            Tensor flat = hidden.reshape(-1, hidden.shape[^1]);
            return FusedLinearCrossEntropy.Compute(flat, split.OutputWeight, split.OutputBias, ShiftedTargets(batch.Labels).view(-1), labelSmoothing, matmulType: MixedPrecision.MatmulType);
        }

        Tensor logits = ModelCall.Forward(model, batch);
        Tensor targets = ShiftedTargets(batch.Labels);
        return nn.functional.cross_entropy(Flatten(logits), targets.view(-1), ignore_index: TokenBatch.IgnoreIndex, label_smoothing: labelSmoothing);
    }

    public MetricBatch Evaluate(nn.Module model, TokenBatch batch)
    {
        Tensor logits = Flatten(ModelCall.Forward(model, batch));
        Tensor targets = ShiftedTargets(batch.Labels).view(-1);
        Tensor loss = nn.functional.cross_entropy(logits, targets, ignore_index: TokenBatch.IgnoreIndex, label_smoothing: labelSmoothing);
        // Right padding: each row of n real tokens has n − 1 next-token targets, unless per-token labels masked some.
        return new MetricBatch(loss, batch.TargetCount ?? batch.TokenCount - batch.ExampleCount, logits, targets, TokenBatch.IgnoreIndex);
    }

    private static Tensor Flatten(Tensor logits)
    {
        if (logits.dim() != 3)
        {
            throw new InvalidOperationException($"Causal language modelling expects logits [batch, time, vocabulary]; the model returned shape [{string.Join(", ", logits.shape)}].");
        }

        return logits.view(-1, logits.shape[2]);
    }

    // A low-rank adapter on the output layer adds its update in that layer's forward hook, which the fused path (reading
    // the weight directly) would skip: such a model takes the plain path. Checked once per adapter, not every step.
    private Models.LoRAAdapter? _checkedAdapter;
    private bool _adapterOnOutput;

    private bool OutputLayerIsPlain(nn.Module model, Models.IHiddenStateModel split)
    {
        Models.LoRAAdapter? adapter = Models.LoRA.AdapterOf(model);
        if (adapter is null)
        {
            return true;
        }

        if (!ReferenceEquals(adapter, _checkedAdapter))
        {
            var adapted = adapter.AdaptedModules.Select(path => path + ".weight").ToHashSet(StringComparer.Ordinal);
            IntPtr output = split.OutputWeight.Handle;
            _adapterOnOutput = model.named_parameters().Any(p => adapted.Contains(p.name) && p.parameter.Handle == output);
            _checkedAdapter = adapter;
        }

        return !_adapterOnOutput;
    }

    // Shifting the targets left (rather than slicing the logits) keeps the [B·T, V] logits a view: no copy of the
    // largest tensor of the step. The last position of every row gets the ignore index.
    private static Tensor ShiftedTargets(Tensor labels)
    {
        long rows = labels.shape[0];
        using Tensor tail = labels[TensorIndex.Colon, TensorIndex.Slice(1)];
        using Tensor pad = torch.full(rows, 1, Scalars.IgnoreIndex, dtype: labels.dtype, device: labels.device);
        return torch.cat([tail, pad], 1);
    }
}

internal sealed class SequenceClassificationObjective(double labelSmoothing) : ITrainingObjective<TokenBatch>, ISmoothableObjective<TokenBatch>
{
    public ITrainingObjective<TokenBatch> WithLabelSmoothing(double epsilon) => new SequenceClassificationObjective(epsilon);

    public string Name => "sequence-classification";

    public IEnumerable<string> Validate(nn.Module model) => ModelCall.Validate(model, Name);

    public Tensor Loss(nn.Module model, TokenBatch batch)
        => nn.functional.cross_entropy(Logits(model, batch), batch.Labels, label_smoothing: labelSmoothing);

    public MetricBatch Evaluate(nn.Module model, TokenBatch batch)
    {
        Tensor logits = Logits(model, batch);
        Tensor loss = nn.functional.cross_entropy(logits, batch.Labels, label_smoothing: labelSmoothing);
        return new MetricBatch(loss, batch.ExampleCount, logits, batch.Labels, TokenBatch.IgnoreIndex);
    }

    private static Tensor Logits(nn.Module model, TokenBatch batch)
    {
        Tensor logits = ModelCall.Forward(model, batch);
        if (logits.dim() != 2)
        {
            throw new InvalidOperationException($"Sequence classification expects logits [batch, classes]; the model returned shape [{string.Join(", ", logits.shape)}].");
        }

        if (batch.Labels.dim() != 1)
        {
            throw new InvalidOperationException("Sequence classification needs one class label per example: give every TokenExample a Label.");
        }

        return logits;
    }
}

internal sealed class DelegateObjective<TBatch>(Func<nn.Module, TBatch, Tensor> loss, string name) : ITrainingObjective<TBatch>
    where TBatch : ITrainingBatch
{
    public string Name => name;

    public IEnumerable<string> Validate(nn.Module model) => [];

    public Tensor Loss(nn.Module model, TBatch batch) => loss(model, batch);

    public MetricBatch Evaluate(nn.Module model, TBatch batch) => new(loss(model, batch), batch.ExampleCount);
}
