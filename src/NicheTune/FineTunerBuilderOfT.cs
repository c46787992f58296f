using Microsoft.Extensions.Logging;
using NicheTune.Evaluation;
using NicheTune.Freezing;
using NicheTune.Scheduling;
using NicheTune.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune;

/// <summary>
/// The fluent builder of a fine-tuning plan. Every setting has a default that suits fine-tuning a pretrained
/// model (AdamW, learning rate 5e-5, batch size 8, 3 epochs, gradient clipping at 1.0, seed 42). Values are checked
/// together in <see cref="Build"/>, which reports every problem at once.
/// </summary>
/// <typeparam name="TBatch">The batch type of the objective.</typeparam>
public sealed class FineTunerBuilder<TBatch>
    where TBatch : ITrainingBatch
{
    private readonly nn.Module _model;
    private ITrainingObjective<TBatch> _objective;
    private readonly List<string> _problems = [];
    private PlanSettings _settings;
    private Models.LoRAOptions? _lora;
    private Models.LoRAAdapter? _loraAdapter;

    internal FineTunerBuilder(nn.Module model, ITrainingObjective<TBatch> objective, PlanSettings settings)
    {
        _model = model;
        _objective = objective;
        _settings = settings;
    }

    /// <summary>Sets the base learning rate (before schedule and group multipliers).</summary>
    /// <param name="learningRate">A positive rate; 1e-5–1e-4 is usual for fine-tuning, 1e-3 for small models from scratch.</param>
    /// <returns>This builder.</returns>
    public FineTunerBuilder<TBatch> WithLearningRate(double learningRate) => Set(_settings with { LearningRate = learningRate });

    /// <summary>Sets the optimizer.</summary>
    /// <param name="optimizer">From <see cref="Optimizers"/>.</param>
    /// <returns>This builder.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="optimizer"/> is <see langword="null"/>.</exception>
    public FineTunerBuilder<TBatch> WithOptimizer(OptimizerSpec optimizer)
        => Set(_settings with { Optimizer = optimizer ?? throw new ArgumentNullException(nameof(optimizer)) });

    /// <summary>Sets the learning-rate schedule.</summary>
    /// <param name="schedule">From <see cref="Schedules"/> or your own.</param>
    /// <returns>This builder.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="schedule"/> is <see langword="null"/>.</exception>
    public FineTunerBuilder<TBatch> WithSchedule(ILearningRateSchedule schedule)
        => Set(_settings with { Schedule = schedule ?? throw new ArgumentNullException(nameof(schedule)) });

    /// <summary>Sets how trainable parameters are split into optimizer groups (per-group learning rate and weight decay).</summary>
    /// <param name="grouping">The grouping.</param>
    /// <returns>This builder.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="grouping"/> is <see langword="null"/>.</exception>
    public FineTunerBuilder<TBatch> WithParameterGroups(IParameterGrouping grouping)
        => Set(_settings with { ParameterGrouping = grouping ?? throw new ArgumentNullException(nameof(grouping)) });

    /// <summary>
    /// Freezes parameters: <c>Freeze.Embeddings().And(Freeze.BottomLayers(2))</c>, <c>Freeze.AllBut("head")</c>,
    /// <c>Freeze.UnfreezeGradually()</c>. Frozen parameters get <c>requires_grad = false</c> and stay out of the optimizer;
    /// parameters already frozen by the caller stay frozen; every flag is restored when <c>Fit</c> returns.
    /// </summary>
    /// <param name="strategy">A built-in from <see cref="Freezing.Freeze"/> or your own.</param>
    /// <returns>This builder.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="strategy"/> is <see langword="null"/>.</exception>
    public FineTunerBuilder<TBatch> Freeze(IFreezeStrategy strategy)
        => Set(_settings with { Freeze = strategy ?? throw new ArgumentNullException(nameof(strategy)) });

    /// <summary>Maps parameters to layer groups with <paramref name="classify"/> where the model's naming is not one the <see cref="LayerMap"/> knows.</summary>
    /// <param name="classify">Returns <c>embeddings</c>, <c>layer {i}</c>, <c>head</c>, <c>other</c>, or <see langword="null"/> for the built-in conventions.</param>
    /// <returns>This builder.</returns>
    public FineTunerBuilder<TBatch> WithLayerMap(Func<string, string?> classify)
        => Set(_settings with { LayerClassifier = classify ?? throw new ArgumentNullException(nameof(classify)) });

    /// <summary>
    /// Layer-wise (discriminative) learning rates: the head trains at <paramref name="baseRate"/> and each group below at
    /// <paramref name="decay"/> × the rate above (embeddings lowest). Biases and norm weights get no weight decay.
    /// </summary>
    /// <param name="baseRate">The head's learning rate (also the plan's base rate).</param>
    /// <param name="decay">Factor per layer going down, in (0, 1].</param>
    /// <param name="headRate">A separate rate for the head (e.g. higher for a fresh classifier), or <see langword="null"/> for <paramref name="baseRate"/>.</param>
    /// <returns>This builder.</returns>
    public FineTunerBuilder<TBatch> WithLayerwiseLearningRates(double baseRate, double decay, double? headRate = null)
        => Set(_settings with
        {
            LearningRate = baseRate,
            ParameterGrouping = ParameterGroupings.LayerwiseDecay(decay, headRate is { } h && baseRate > 0 ? h / baseRate : 1.0),
        });

    /// <summary>
    /// An explicit learning rate per layer group, e.g. <c>g =&gt; g.Kind == LayerGroupKind.Layer &amp;&amp; g.LayerIndex &lt; 6 ? 1e-6 : 5e-5</c>
    /// (low for sensitive bottom layers, higher for the top). The schedule scales every group alike.
    /// </summary>
    /// <param name="rate">The rate of each group.</param>
    /// <returns>This builder.</returns>
    public FineTunerBuilder<TBatch> WithLearningRates(Func<LayerGroup, double> rate)
    {
        ArgumentNullException.ThrowIfNull(rate);
        // Rates are stored as multipliers of a base of 1, so the schedule and logs see the rates themselves.
        return Set(_settings with { LearningRate = 1.0, ParameterGrouping = ParameterGroupings.PerGroup(rate) });
    }

    /// <summary>Records every parameter group's learning rate at every step into <see cref="FineTuneResult.LearningRates"/> (for plots and checks).</summary>
    /// <returns>This builder.</returns>
    public FineTunerBuilder<TBatch> RecordLearningRates() => Set(_settings with { RecordLearningRates = true });

    /// <summary>
    /// Adds regularisation: <c>r =&gt; r.WeightDecay(0.01).Dropout(0.1).LabelSmoothing(0.1).L2SP(0.01).Swa()</c>.
    /// Weight decay sets the optimizer's decoupled decay; label smoothing switches the objective's cross-entropy to the
    /// smoothed one; the rest run as <see cref="Regularization.IRegularizer"/>s in the order given.
    /// </summary>
    /// <param name="configure">Adds regularisers.</param>
    /// <returns>This builder.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="configure"/> is <see langword="null"/>.</exception>
    public FineTunerBuilder<TBatch> Regularize(Action<Regularization.RegularizationBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        var regularization = new Regularization.RegularizationBuilder();
        configure(regularization);
        PlanSettings settings = _settings with { Regularizers = _settings.Regularizers.AddRange(regularization.Regularizers) };
        if (regularization.EarlyStoppingValue is { } earlyStopping)
        {
            settings = settings with { EarlyStopping = earlyStopping };
        }

        if (regularization.WeightDecayValue is { } decay)
        {
            settings = settings with { Optimizer = settings.Optimizer.WithWeightDecay(decay) };
        }

        if (regularization.LabelSmoothingValue is { } epsilon)
        {
            if (_objective is ISmoothableObjective<TBatch> smoothable)
            {
                _objective = smoothable.WithLabelSmoothing(epsilon);
            }
            else
            {
                _problems.Add($"Label smoothing needs a cross-entropy objective; '{_objective.Name}' does not support it. Smooth inside your own objective instead.");
            }
        }

        return Set(settings);
    }

    /// <summary>Sets the number of examples per batch (per micro-batch when accumulating gradients).</summary>
    /// <param name="batchSize">At least 1.</param>
    /// <returns>This builder.</returns>
    public FineTunerBuilder<TBatch> WithBatchSize(int batchSize) => Set(_settings with { BatchSize = batchSize });

    /// <summary>Accumulates gradients over several batches per optimizer step (effective batch = batch size × steps).</summary>
    /// <param name="steps">At least 1.</param>
    /// <returns>This builder.</returns>
    public FineTunerBuilder<TBatch> WithGradientAccumulation(int steps) => Set(_settings with { GradientAccumulationSteps = steps });

    /// <summary>Sets the number of passes over the training data.</summary>
    /// <param name="epochs">At least 1.</param>
    /// <returns>This builder.</returns>
    public FineTunerBuilder<TBatch> WithEpochs(int epochs) => Set(_settings with { Epochs = epochs });

    /// <summary>Caps the run at <paramref name="maxSteps"/> optimizer steps (epochs repeat the data until then).</summary>
    /// <param name="maxSteps">At least 1.</param>
    /// <returns>This builder.</returns>
    public FineTunerBuilder<TBatch> WithMaxSteps(long maxSteps) => Set(_settings with { MaxSteps = maxSteps });

    /// <summary>Clips the gradients' global L2 norm to <paramref name="maxNorm"/>, or turns clipping off with <see langword="null"/>.</summary>
    /// <param name="maxNorm">A positive norm (1.0 is usual), or <see langword="null"/>.</param>
    /// <returns>This builder.</returns>
    public FineTunerBuilder<TBatch> ClipGradientNorm(double? maxNorm) => Set(_settings with { MaxGradientNorm = maxNorm });

    /// <summary>Sets the seed of torch's generator (dropout) and of the data order, so runs reproduce bit for bit on CPU.</summary>
    /// <param name="seed">Any value.</param>
    /// <returns>This builder.</returns>
    public FineTunerBuilder<TBatch> WithSeed(long seed) => Set(_settings with { Seed = seed });

    /// <summary>Turns shuffling of the training data off (it is on by default, seeded per epoch).</summary>
    /// <param name="shuffle">Whether to shuffle.</param>
    /// <returns>This builder.</returns>
    public FineTunerBuilder<TBatch> ShuffleTrainingData(bool shuffle) => Set(_settings with { Shuffle = shuffle });

    /// <summary>Chooses what happens on a NaN or infinite loss or gradient.</summary>
    /// <param name="policy">Stop (default) or skip the step.</param>
    /// <param name="maxConsecutiveSkips">With <see cref="NonFiniteLossPolicy.SkipStep"/>, stop after this many skipped steps in a row.</param>
    /// <returns>This builder.</returns>
    public FineTunerBuilder<TBatch> OnNonFiniteLoss(NonFiniteLossPolicy policy, int maxConsecutiveSkips = 10)
        => Set(_settings with { NonFiniteLoss = policy, MaxConsecutiveSkippedSteps = maxConsecutiveSkips });

    /// <summary>Adds evaluation metrics, computed on the validation data at every evaluation (loss is always included).</summary>
    /// <param name="metrics">From <see cref="Metrics"/> or your own.</param>
    /// <returns>This builder.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="metrics"/> or one of its items is <see langword="null"/>.</exception>
    public FineTunerBuilder<TBatch> Evaluate(params IMetric[] metrics)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        foreach (IMetric metric in metrics)
        {
            ArgumentNullException.ThrowIfNull(metric, nameof(metrics));
        }

        return Set(_settings with { Metrics = _settings.Metrics.AddRange(metrics) });
    }

    /// <summary>Evaluates every <paramref name="steps"/> optimizer steps as well as at each epoch's end.</summary>
    /// <param name="steps">At least 1; 0 evaluates at epoch ends only.</param>
    /// <param name="batchSize">Batch size for evaluation; 0 uses the training batch size.</param>
    /// <returns>This builder.</returns>
    public FineTunerBuilder<TBatch> EvaluateEvery(int steps, int batchSize = 0)
        => Set(_settings with { EvaluateEverySteps = steps, EvaluationBatchSize = batchSize });

    /// <summary>Reads the training loss (one host sync) every <paramref name="steps"/> optimizer steps for logs, progress and callbacks.</summary>
    /// <param name="steps">At least 1.</param>
    /// <returns>This builder.</returns>
    public FineTunerBuilder<TBatch> LogEvery(int steps) => Set(_settings with { LogEverySteps = steps });

    /// <summary>
    /// Stops when <paramref name="metric"/> has not improved by more than <paramref name="minDelta"/> for
    /// <paramref name="patience"/> evaluations, and (by default) restores the best weights at the end.
    /// </summary>
    /// <param name="metric">A validation metric, e.g. <c>validation.loss</c> or <c>validation.accuracy</c>.</param>
    /// <param name="patience">Evaluations without improvement to tolerate, at least 1.</param>
    /// <param name="minDelta">The smallest change that counts as improvement, ≥ 0.</param>
    /// <param name="mode">Lower or higher is better; <see cref="MetricMode.Auto"/> asks the metric.</param>
    /// <param name="restoreBestWeights">Restore the best evaluation's weights at the end.</param>
    /// <returns>This builder.</returns>
    public FineTunerBuilder<TBatch> EarlyStopping(string metric, int patience = 3, double minDelta = 0.0, MetricMode mode = MetricMode.Auto, bool restoreBestWeights = true)
        => Set(_settings with { EarlyStopping = new EarlyStoppingPlan(metric, patience, minDelta, mode, restoreBestWeights) });

    /// <summary>Writes a checkpoint every <paramref name="everySteps"/> optimizer steps and at the end, each atomically.</summary>
    /// <param name="directory">The folder for <c>checkpoint-&lt;step&gt;</c> folders.</param>
    /// <param name="everySteps">At least 1.</param>
    /// <param name="keepLast">How many recent checkpoints to keep, at least 1.</param>
    /// <returns>This builder.</returns>
    public FineTunerBuilder<TBatch> SaveCheckpoints(string directory, int everySteps, int keepLast = 2)
        => Set(_settings with { Checkpoints = new CheckpointPlan(directory, everySteps, keepLast) });

    /// <summary>Continues the run saved in <paramref name="checkpoint"/> (a <c>checkpoint-&lt;step&gt;</c> folder, or a folder of them: the latest is used).</summary>
    /// <param name="checkpoint">The checkpoint path.</param>
    /// <returns>This builder.</returns>
    public FineTunerBuilder<TBatch> ResumeFrom(string checkpoint) => Set(_settings with { ResumeFrom = checkpoint });

    /// <summary>Adds a callback; callbacks run in the order added.</summary>
    /// <param name="callback">The callback.</param>
    /// <returns>This builder.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="callback"/> is <see langword="null"/>.</exception>
    public FineTunerBuilder<TBatch> WithCallback(ITrainingCallback callback)
        => Set(_settings with { Callbacks = _settings.Callbacks.Add(callback ?? throw new ArgumentNullException(nameof(callback))) });

    /// <summary>Reports progress at logging steps and evaluations.</summary>
    /// <param name="progress">The receiver (e.g. <see cref="Progress{T}"/>).</param>
    /// <returns>This builder.</returns>
    public FineTunerBuilder<TBatch> WithProgress(IProgress<TrainingProgress> progress)
        => Set(_settings with { Progress = progress ?? throw new ArgumentNullException(nameof(progress)) });

    /// <summary>Logs through <paramref name="loggerFactory"/> (category <c>NicheTune.Training.Trainer</c>).</summary>
    /// <param name="loggerFactory">The factory.</param>
    /// <returns>This builder.</returns>
    public FineTunerBuilder<TBatch> WithLogging(ILoggerFactory loggerFactory)
        => Set(_settings with { LoggerFactory = loggerFactory ?? throw new ArgumentNullException(nameof(loggerFactory)) });

    /// <summary>Trains on <paramref name="device"/> (the model is moved there); CPU by default.</summary>
    /// <param name="device">The device.</param>
    /// <returns>This builder.</returns>
    public FineTunerBuilder<TBatch> WithDevice(torch.Device device)
        => Set(_settings with { Device = device ?? throw new ArgumentNullException(nameof(device)) });

    /// <summary>
    /// Runs the training step's matrix products in <paramref name="precision"/>. <see cref="Precision.BFloat16"/> is bf16
    /// mixed precision: fp32 master weights, optimizer state and loss, bf16 products in the fused output layer and the
    /// GPT-2's blocks — about twice as fast on CPUs with AVX512-BF16 or AMX. Where the device lacks bf16
    /// support the run stays fp32 and logs the reason; <see cref="FineTuneResult.Precision"/> says what ran. Evaluation
    /// always runs in fp32.
    /// </summary>
    /// <param name="precision">The precision; <see cref="Precision.Float32"/> by default.</param>
    /// <returns>This builder.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="precision"/> is not a defined value.</exception>
    public FineTunerBuilder<TBatch> WithPrecision(Precision precision)
        => Set(_settings with
        {
            Precision = Enum.IsDefined(precision) ? precision : throw new ArgumentOutOfRangeException(nameof(precision), precision, "Use Precision.Float32 or Precision.BFloat16."),
        });

    /// <summary>Sets how many batches the background thread prepares ahead of the training loop.</summary>
    /// <param name="batches">At least 1.</param>
    /// <returns>This builder.</returns>
    public FineTunerBuilder<TBatch> WithPrefetch(int batches) => Set(_settings with { PrefetchBatches = batches });

    /// <summary>
    /// Validates every setting together and returns the immutable plan. A LoRA adapter added with <c>WithLoRA</c> is applied
    /// to the model here (and taken off again if the plan is invalid).
    /// </summary>
    /// <returns>The plan.</returns>
    /// <exception cref="FineTunePlanException">One or more settings are invalid; every problem is listed.</exception>
    public FineTunePlan<TBatch> Build()
    {
        if (_lora is null || _loraAdapter is not null)
        {
            return FineTunePlan<TBatch>.Create(_model, _objective, _settings, _problems);
        }

        // The adapter is applied here, not when WithLoRA is called, so that its problems are reported with every other
        // one and the rest of the validation (layer map, freezing, trainable parameters) sees the adapted model.
        var problems = new List<string>(_problems);
        Models.LoRAAdapter? adapter = Models.LoRABuilderSupport.TryApply(_model, _lora, _objective, problems);
        try
        {
            ITrainingObjective<TBatch> objective = adapter is null ? _objective : Models.LoRABuilderSupport.Checked(_objective, adapter);
            FineTunePlan<TBatch> plan = FineTunePlan<TBatch>.Create(_model, objective, _settings, problems);
            _objective = objective;
            _loraAdapter = adapter;
            return plan;
        }
        catch
        {
            adapter?.Remove();
            throw;
        }
    }

    internal FineTunerBuilder<TBatch> UseLoRA(Models.LoRAOptions options)
    {
        _lora = options;
        return this;
    }

    /// <summary>Builds the plan and trains: <c>Build().Fit(…)</c>.</summary>
    /// <typeparam name="TExample">The example type.</typeparam>
    /// <param name="train">Training examples.</param>
    /// <param name="validation">Validation examples, or <see langword="null"/>.</param>
    /// <param name="collator">Turns examples into batches.</param>
    /// <param name="cancellationToken">Stops training within one step.</param>
    /// <returns>The result.</returns>
    public FineTuneResult Fit<TExample>(IReadOnlyList<TExample> train, IReadOnlyList<TExample>? validation, ICollator<TExample, TBatch> collator, CancellationToken cancellationToken = default)
        => Build().Fit(train, validation, collator, cancellationToken);

    private FineTunerBuilder<TBatch> Set(PlanSettings settings)
    {
        _settings = settings;
        return this;
    }
}

/// <summary>Shortcuts for plans over <see cref="TokenBatch"/> (causal language modelling, sequence classification).</summary>
public static class TokenPlanExtensions
{
    /// <summary>Builds the plan and trains on token examples with the default <see cref="TokenCollator"/> (padding id 0).</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="train">Training examples.</param>
    /// <param name="validation">Validation examples, or <see langword="null"/>.</param>
    /// <param name="cancellationToken">Stops training within one step.</param>
    /// <returns>The result.</returns>
    public static FineTuneResult Fit(this FineTunerBuilder<TokenBatch> builder, IReadOnlyList<TokenExample> train, IReadOnlyList<TokenExample>? validation = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.Build().Fit(train, validation, new TokenCollator(), cancellationToken);
    }

    /// <summary>Trains on token examples with the default <see cref="TokenCollator"/> (padding id 0).</summary>
    /// <param name="plan">The plan.</param>
    /// <param name="train">Training examples.</param>
    /// <param name="validation">Validation examples, or <see langword="null"/>.</param>
    /// <param name="cancellationToken">Stops training within one step.</param>
    /// <returns>The result.</returns>
    public static FineTuneResult Fit(this FineTunePlan<TokenBatch> plan, IReadOnlyList<TokenExample> train, IReadOnlyList<TokenExample>? validation = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(plan);
        return plan.Fit(train, validation, new TokenCollator(), cancellationToken);
    }

    /// <summary>Evaluates the plan's metrics on token examples without training, with the default <see cref="TokenCollator"/>.</summary>
    /// <param name="plan">The plan.</param>
    /// <param name="data">Examples to evaluate.</param>
    /// <param name="cancellationToken">Stops within one batch.</param>
    /// <returns>Metric values named <c>validation.&lt;metric&gt;</c>.</returns>
    public static IReadOnlyDictionary<string, double> Evaluate(this FineTunePlan<TokenBatch> plan, IReadOnlyList<TokenExample> data, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(plan);
        return plan.Evaluate(data, new TokenCollator(), cancellationToken);
    }
}
