using System.Collections.Immutable;
using NicheTune.Evaluation;
using NicheTune.Freezing;
using NicheTune.Scheduling;
using NicheTune.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune;

/// <summary>
/// An immutable, validated fine-tuning plan: the model, the objective and every setting. <see cref="Fit{TExample}"/>
/// trains the model in place; a plan can be fitted more than once (one run at a time).
/// </summary>
/// <typeparam name="TBatch">The batch type of the objective.</typeparam>
public sealed class FineTunePlan<TBatch>
    where TBatch : ITrainingBatch
{
    private readonly PlanSettings _settings;

    private FineTunePlan(nn.Module model, ITrainingObjective<TBatch> objective, PlanSettings settings)
    {
        Model = model;
        Objective = objective;
        _settings = settings;
    }

    /// <summary>The model trained in place.</summary>
    public nn.Module Model { get; }

    /// <summary>The training objective.</summary>
    public ITrainingObjective<TBatch> Objective { get; }

    /// <summary>Base learning rate.</summary>
    /// <value>Default 5e-5.</value>
    public double LearningRate => _settings.LearningRate;

    /// <summary>Examples per batch.</summary>
    /// <value>Default 8.</value>
    public int BatchSize => _settings.BatchSize;

    /// <summary>Passes over the training data.</summary>
    /// <value>Default 3.</value>
    public int Epochs => _settings.Epochs;

    /// <summary>Step budget, or <see langword="null"/> to run all epochs.</summary>
    /// <value>Default <see langword="null"/>.</value>
    public long? MaxSteps => _settings.MaxSteps;

    /// <summary>Batches per optimizer step.</summary>
    /// <value>Default 1.</value>
    public int GradientAccumulationSteps => _settings.GradientAccumulationSteps;

    /// <summary>Global gradient norm limit, or <see langword="null"/> for no clipping.</summary>
    /// <value>Default 1.0.</value>
    public double? MaxGradientNorm => _settings.MaxGradientNorm;

    /// <summary>Seed of torch's generator and of the data order.</summary>
    /// <value>Default 42.</value>
    public long Seed => _settings.Seed;

    /// <summary>The optimizer.</summary>
    /// <value>Default AdamW (β 0.9/0.999, ε 1e-8, no weight decay).</value>
    public OptimizerSpec Optimizer => _settings.Optimizer;

    /// <summary>The learning-rate schedule.</summary>
    /// <value>Default constant.</value>
    public ILearningRateSchedule Schedule => _settings.Schedule;

    /// <summary>What happens on a non-finite loss or gradient.</summary>
    /// <value>Default <see cref="NonFiniteLossPolicy.Stop"/>.</value>
    public NonFiniteLossPolicy NonFiniteLoss => _settings.NonFiniteLoss;

    /// <summary>Metrics evaluated on the validation data (loss is always added).</summary>
    public ImmutableArray<IMetric> Metrics => _settings.Metrics;

    /// <summary>Early stopping, or <see langword="null"/>.</summary>
    public EarlyStoppingPlan? EarlyStopping => _settings.EarlyStopping;

    /// <summary>Checkpointing, or <see langword="null"/>.</summary>
    public CheckpointPlan? Checkpoints => _settings.Checkpoints;

    /// <summary>The checkpoint to resume from, or <see langword="null"/>.</summary>
    public string? ResumeFrom => _settings.ResumeFrom;

    /// <summary>The freezing strategy, or <see langword="null"/> to train every parameter the caller left trainable.</summary>
    public IFreezeStrategy? Freezing => _settings.Freeze;

    /// <summary>How trainable parameters are grouped for the optimizer (per-layer rates, weight-decay exclusions).</summary>
    /// <value>Default: one rate, no weight decay on biases and norm weights.</value>
    public IParameterGrouping ParameterGrouping => _settings.ParameterGrouping;

    /// <summary>The regularisers, in the order they run.</summary>
    public ImmutableArray<Regularization.IRegularizer> Regularizers => _settings.Regularizers;

    /// <summary>The callbacks, in the order they run.</summary>
    public ImmutableArray<ITrainingCallback> Callbacks => _settings.Callbacks;

    internal PlanSettings Settings => _settings;

    /// <summary>Trains the model on <paramref name="train"/>, evaluating on <paramref name="validation"/>, on the calling thread.</summary>
    /// <typeparam name="TExample">The example type.</typeparam>
    /// <param name="train">Training examples (at least one).</param>
    /// <param name="validation">Validation examples, or <see langword="null"/> (required for evaluation and early stopping).</param>
    /// <param name="collator">Turns lists of examples into batches (runs on a background thread).</param>
    /// <param name="cancellationToken">Stops training within one step with <see cref="OperationCanceledException"/>; native memory is released.</param>
    /// <returns>The history and outcome of the run.</returns>
    /// <exception cref="FineTunePlanException">The data does not fit the plan (e.g. early stopping without validation data).</exception>
    /// <exception cref="NonFiniteLossException">The loss became NaN or infinite and the policy says stop.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public FineTuneResult Fit<TExample>(IReadOnlyList<TExample> train, IReadOnlyList<TExample>? validation, ICollator<TExample, TBatch> collator, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(collator);
        var trainer = new Trainer<TBatch, TExample>(this, train, validation, collator);
        return trainer.Run(cancellationToken);
    }

    /// <summary>
    /// Computes the plan's metrics (loss plus those added with <c>Evaluate(…)</c>) on <paramref name="data"/> without
    /// training: the "before" of a before/after comparison, or a check of a trained model on a held-out set.
    /// </summary>
    /// <typeparam name="TExample">The example type.</typeparam>
    /// <param name="data">Examples to evaluate (at least one).</param>
    /// <param name="collator">Turns lists of examples into batches.</param>
    /// <param name="cancellationToken">Stops within one batch.</param>
    /// <returns>Metric values named <c>validation.&lt;metric&gt;</c>.</returns>
    /// <exception cref="FineTunePlanException"><paramref name="data"/> is empty.</exception>
    public IReadOnlyDictionary<string, double> Evaluate<TExample>(IReadOnlyList<TExample> data, ICollator<TExample, TBatch> collator, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(collator);
        return new Trainer<TBatch, TExample>(this, [], data, collator).EvaluateOnly(cancellationToken);
    }

    /// <summary>Runs <see cref="Fit{TExample}"/> on a dedicated thread (torch's dispose scopes are per thread, so the whole run stays on it).</summary>
    /// <typeparam name="TExample">The example type.</typeparam>
    /// <param name="train">Training examples.</param>
    /// <param name="validation">Validation examples, or <see langword="null"/>.</param>
    /// <param name="collator">Turns lists of examples into batches.</param>
    /// <param name="cancellationToken">Stops training within one step.</param>
    /// <returns>A task with the result.</returns>
    public Task<FineTuneResult> FitAsync<TExample>(IReadOnlyList<TExample> train, IReadOnlyList<TExample>? validation, ICollator<TExample, TBatch> collator, CancellationToken cancellationToken = default)
        => Task.Factory.StartNew(
            () => Fit(train, validation, collator, cancellationToken),
            cancellationToken,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default);

    internal static FineTunePlan<TBatch> Create(nn.Module model, ITrainingObjective<TBatch> objective, PlanSettings s, IEnumerable<string>? builderProblems = null)
    {
        var problems = new List<string>(builderProblems ?? []);
        if (!(s.LearningRate > 0) || double.IsInfinity(s.LearningRate))
        {
            problems.Add($"Learning rate must be a positive finite number; got {s.LearningRate}. Typical fine-tuning rates are 1e-5 to 1e-4.");
        }

        if (s.BatchSize < 1)
        {
            problems.Add($"Batch size must be at least 1; got {s.BatchSize}.");
        }

        if (s.Epochs < 1)
        {
            problems.Add($"Epochs must be at least 1; got {s.Epochs}.");
        }

        if (s.MaxSteps is < 1)
        {
            problems.Add($"Max steps must be at least 1 when set; got {s.MaxSteps}. Use WithEpochs to train by epochs instead.");
        }

        if (s.GradientAccumulationSteps < 1)
        {
            problems.Add($"Gradient accumulation steps must be at least 1; got {s.GradientAccumulationSteps}.");
        }

        if (s.MaxGradientNorm is { } norm && !(norm > 0 && double.IsFinite(norm)))
        {
            problems.Add($"Gradient clipping norm must be positive and finite; got {norm}. Pass null to turn clipping off.");
        }

        if (s.NonFiniteLoss == NonFiniteLossPolicy.SkipStep && s.MaxConsecutiveSkippedSteps < 1)
        {
            problems.Add($"Max consecutive skipped steps must be at least 1; got {s.MaxConsecutiveSkippedSteps}.");
        }

        if (s.EvaluateEverySteps < 0)
        {
            problems.Add($"Evaluation interval must be ≥ 0 steps (0 = at epoch ends only); got {s.EvaluateEverySteps}.");
        }

        if (s.EvaluationBatchSize < 0)
        {
            problems.Add($"Evaluation batch size must be ≥ 0 (0 = the training batch size); got {s.EvaluationBatchSize}.");
        }

        if (s.LogEverySteps < 1)
        {
            problems.Add($"Logging interval must be at least 1 step; got {s.LogEverySteps}.");
        }

        if (s.PrefetchBatches < 1)
        {
            problems.Add($"Prefetch must be at least 1 batch; got {s.PrefetchBatches}.");
        }

        var metricNames = new HashSet<string>(StringComparer.Ordinal) { "loss" };
        foreach (IMetric metric in s.Metrics)
        {
            if (metric.Name != "loss" && !metricNames.Add(metric.Name))
            {
                problems.Add($"Two metrics are named '{metric.Name}'; each metric may be added once.");
            }
        }

        if (s.EarlyStopping is { } es)
        {
            if (es.Patience < 1)
            {
                problems.Add($"Early stopping patience must be at least 1 evaluation; got {es.Patience}.");
            }

            if (!(es.MinDelta >= 0) || double.IsInfinity(es.MinDelta))
            {
                problems.Add($"Early stopping min delta must be a finite value ≥ 0; got {es.MinDelta}.");
            }

            string? name = es.Metric?.StartsWith("validation.", StringComparison.Ordinal) == true ? es.Metric["validation.".Length..] : null;
            if (name is null || !metricNames.Contains(name))
            {
                problems.Add($"Early stopping monitors '{es.Metric}', which is not reported; choose one of {string.Join(", ", metricNames.Select(n => $"'validation.{n}'"))} or add the metric with Evaluate(…).");
            }
        }

        if (s.Checkpoints is { } cp)
        {
            if (string.IsNullOrWhiteSpace(cp.Directory))
            {
                problems.Add("Checkpoint directory is empty; give a folder path.");
            }

            if (cp.EverySteps < 1)
            {
                problems.Add($"Checkpoint interval must be at least 1 step; got {cp.EverySteps}.");
            }

            if (cp.KeepLast < 1)
            {
                problems.Add($"Checkpoints to keep must be at least 1; got {cp.KeepLast}.");
            }
        }

        if (s.ResumeFrom is { } resume && CheckpointStore.Resolve(resume) is null)
        {
            problems.Add($"No checkpoint to resume from at '{resume}': expected a folder with trainer_state.json, or a folder of checkpoint-<step> folders.");
        }

        problems.AddRange(objective.Validate(model));
        if (s.Freeze is not null || s.Regularizers.Length > 0)
        {
            try
            {
                LayerMap map = LayerMap.For(model, s.LayerClassifier);
                problems.AddRange(s.Freeze?.Validate(map) ?? []);
                foreach (var regularizer in s.Regularizers)
                {
                    problems.AddRange(regularizer.Validate(map));
                }

                foreach (var duplicate in s.Regularizers.GroupBy(r => r.Name).Where(g => g.Count() > 1))
                {
                    problems.Add($"Two regularisers are named '{duplicate.Key}'; add each kind once.");
                }
            }
            catch (ArgumentException ex)
            {
                problems.Add(ex.Message);
            }
        }

        if (!model.parameters().Any(p => p.requires_grad))
        {
            problems.Add("The model has no trainable parameter (every parameter has requires_grad = false); unfreeze at least one.");
        }

        if (problems.Count > 0)
        {
            throw new FineTunePlanException(problems);
        }

        return new FineTunePlan<TBatch>(model, objective, s);
    }
}
