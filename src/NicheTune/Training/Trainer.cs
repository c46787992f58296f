using System.Collections.Immutable;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using NicheTune.Evaluation;
using NicheTune.Freezing;
using NicheTune.Scheduling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NicheTune.Training;

/// <summary>
/// The training loop. One instance per <c>Fit</c> call. The per-step path (<see cref="TrainOnBatch"/>,
/// <see cref="OptimizerStep"/>) runs inside a dispose scope, allocates no managed objects that grow with steps and reads
/// nothing from the tensors except the gradient norm (see <see cref="GradientNorm"/>).
/// </summary>
internal sealed class Trainer<TBatch, TExample>
    where TBatch : ITrainingBatch
{
    private readonly FineTunePlan<TBatch> _plan;
    private readonly PlanSettings _s;
    private readonly IReadOnlyList<TExample> _train;
    private readonly IReadOnlyList<TExample>? _validation;
    private readonly ICollator<TExample, TBatch> _collator;
    private readonly ILogger _logger;
    private readonly nn.Module _model;
    private readonly ITrainingObjective<TBatch> _objective;
    private readonly TrainingControl _control = new();
    private readonly IMetric[] _metrics;
    private readonly Stopwatch _clock = new();
    private readonly FusedWeightGradients _weightGradients = new();

    private readonly Dictionary<string, bool> _originalRequiresGrad = new(StringComparer.Ordinal);
    private readonly HashSet<string> _pinnedFrozen = new(StringComparer.Ordinal);
    private readonly HashSet<string> _inOptimizer = new(StringComparer.Ordinal);
    private readonly List<string> _groupNames = [];
    private readonly ImmutableArray<LearningRateRecord>.Builder _learningRates = ImmutableArray.CreateBuilder<LearningRateRecord>();
    private IReadOnlySet<string> _frozen = new HashSet<string>();
    private LayerMap? _map;
    private readonly List<(string Name, Parameter Parameter)> _trainableNamed = [];
    private Regularization.RegularizationContext? _regularization;
    private ILearningRateSchedule _schedule = Schedules.Constant();
    private Device _device = CPU;
    private ScalarType? _matmulType;
    private Precision _precision = Precision.Float32;
    private Parameter[] _trainable = [];
    private Tensor[] _normParts = [];
    private OptimizerHelper? _optimizer;
    private torch.optim.ILearningRateController[] _groups = [];
    private double[] _groupMultipliers = [];
    private TrainerState _state = new();
    private Tensor? _lossSum;
    private Tensor? _epochLossSum;
    private Dictionary<string, Tensor>? _best;
    private long _lossBatches;
    private long _epochBatches;
    private long _tokens;
    private long _examples;
    private int _consecutiveSkips;
    private long _lastEvaluationStep = -1;
    private double _learningRate;
    private StopReason _stopReason = StopReason.Completed;
    private string? _lastCheckpoint;
    private long _lastCheckpointStep = -1;
    private IReadOnlyDictionary<string, double> _latestMetrics = ImmutableDictionary<string, double>.Empty;
    private IReadOnlyDictionary<string, double>? _bestMetrics;
    private readonly ImmutableArray<LossRecord>.Builder _lossLog = ImmutableArray.CreateBuilder<LossRecord>();
    private readonly ImmutableArray<EvaluationRecord>.Builder _evaluations = ImmutableArray.CreateBuilder<EvaluationRecord>();
    private readonly ImmutableArray<EpochRecord>.Builder _epochs = ImmutableArray.CreateBuilder<EpochRecord>();

    public Trainer(FineTunePlan<TBatch> plan, IReadOnlyList<TExample> train, IReadOnlyList<TExample>? validation, ICollator<TExample, TBatch> collator)
    {
        _plan = plan;
        _s = plan.Settings;
        _train = train;
        _validation = validation is { Count: > 0 } ? validation : null;
        _collator = collator;
        _model = plan.Model;
        _objective = plan.Objective;
        _logger = (ILogger?)_s.LoggerFactory?.CreateLogger("NicheTune.Training.Trainer") ?? NullLogger.Instance;
        var metrics = new List<IMetric> { _s.Metrics.FirstOrDefault(m => m.Name == "loss") ?? Metrics.Loss() };
        metrics.AddRange(_s.Metrics.Where(m => m.Name != "loss"));
        _metrics = [.. metrics];
    }

    private string? Monitor => _s.EarlyStopping?.Metric ?? (_validation is null ? null : "validation.loss");

    public FineTuneResult Run(CancellationToken cancellationToken)
    {
        ValidateData();
        TorchBackend.EnsureAvailable();
        _clock.Start();
        _device = _s.Device ?? CPU;
        if (_logger.IsEnabled(LogLevel.Information))
        {
            Log.NativeBackend(_logger, _device.ToString(), TorchBackend.Describe());
        }

        if (_s.Device is not null)
        {
            _model.to(_s.Device);
        }

        torch.manual_seed(_s.Seed);
        bool wasTraining = _model.training;
        _model.train();
        try
        {
            BuildOptimizer();
            int batchesPerEpoch = BatchPrefetcher<TExample, TBatch>.BatchCount(_train.Count, _s.BatchSize);
            long stepsPerEpoch = (batchesPerEpoch + _s.GradientAccumulationSteps - 1) / _s.GradientAccumulationSteps;
            long totalSteps = _s.MaxSteps ?? stepsPerEpoch * _s.Epochs;
            StartRegularizers(stepsPerEpoch);
            string[] scheduleProblems = [.. _schedule.Validate(totalSteps)];
            if (scheduleProblems.Length > 0)
            {
                throw new FineTunePlanException(scheduleProblems);
            }

            _state = new TrainerState { Seed = _s.Seed, TotalSteps = totalSteps, TrainExampleCount = _train.Count, MonitoredMetric = Monitor };
            _lossSum = torch.zeros(1, device: _device).DetachFromDisposeScope();
            _epochLossSum = torch.zeros(1, device: _device).DetachFromDisposeScope();
            if (_s.ResumeFrom is { } resume)
            {
                Resume(resume);
            }
            else if (_s.Schedule is IMetricDrivenSchedule driven)
            {
                // The schedule instance lives in the plan; a new run must not inherit an earlier run's reductions.
                driven.Reset();
            }

            for (int i = 0; i < _s.Callbacks.Length; i++)
            {
                _s.Callbacks[i].OnTrainingStart(new TrainingStartArguments(totalSteps, stepsPerEpoch, _state.GlobalStep, _control));
            }

            SelectPrecision();
            NativeAllocator.RetainFreedMemory();
            Log.TrainingStarted(_logger, _objective.Name, _s.Optimizer.Name, totalSteps, stepsPerEpoch, _trainable.Sum(p => p.numel()), _groups.Length, _state.GlobalStep);
            TrainLoop(batchesPerEpoch, totalSteps, cancellationToken);
            return Finish(totalSteps, cancellationToken);
        }
        finally
        {
            _optimizer?.Dispose();
            _weightGradients.Dispose();
            _lossSum?.Dispose();
            _epochLossSum?.Dispose();
            if (_best is not null)
            {
                foreach (Tensor t in _best.Values)
                {
                    t.Dispose();
                }
            }

            _model.train(wasTraining);
            RestoreRequiresGrad();
        }
    }

    /// <summary>Evaluates the plan's metrics on the validation data without training.</summary>
    public IReadOnlyDictionary<string, double> EvaluateOnly(CancellationToken cancellationToken)
    {
        if (_validation is null)
        {
            throw new FineTunePlanException(["There are no examples to evaluate; pass at least one."]);
        }

        TorchBackend.EnsureAvailable();
        _device = _s.Device ?? CPU;
        if (_s.Device is not null)
        {
            _model.to(_s.Device);
        }

        return Evaluate(_s.EvaluationBatchSize > 0 ? _s.EvaluationBatchSize : _s.BatchSize, cancellationToken);
    }

    private void ValidateData()
    {
        var problems = new List<string>();
        if (_train.Count == 0)
        {
            problems.Add("There are no training examples; pass at least one.");
        }

        if (_validation is null && _s.EarlyStopping is not null)
        {
            problems.Add($"Early stopping on '{_s.EarlyStopping.Metric}' needs validation data; pass validation examples to Fit or remove EarlyStopping.");
        }

        if (_validation is null && _s.EvaluateEverySteps > 0)
        {
            problems.Add($"Evaluating every {_s.EvaluateEverySteps} steps needs validation data; pass validation examples to Fit.");
        }

        if (problems.Count > 0)
        {
            throw new FineTunePlanException(problems);
        }
    }

    private void BuildOptimizer()
    {
        _map = LayerMap.For(_model, _s.LayerClassifier);
        foreach (string name in _map.ParameterNames)
        {
            bool trainable = _map.GetParameter(name).requires_grad;
            _originalRequiresGrad[name] = trainable;
            if (!trainable)
            {
                _pinnedFrozen.Add(name);
            }
        }

        ApplyFreezing(new FreezePosition(0, 0, AtEpochStart: true));
        string[] trainableNames = [.. _map.ParameterNames.Where(n => !_frozen.Contains(n))];
        if (trainableNames.Length == 0)
        {
            throw new FineTunePlanException([$"The freezing strategy leaves no trainable parameter at the start of training ({_s.Freeze}); keep at least the head trainable."]);
        }

        var groups = ResolveGroups(trainableNames, 1.0);
        _optimizer = _s.Optimizer.Create(groups, _s.LearningRate);
        _groups = [.. _optimizer.ParamGroups];
        _groupMultipliers = [.. groups.Select(g => g.Plan.LearningRateMultiplier)];
        _groupNames.AddRange(groups.Select(g => g.Plan.Name));
        _trainable = [.. groups.SelectMany(g => g.Parameters)];
        _normParts = new Tensor[_trainable.Length];
        _learningRate = _s.LearningRate;
        _inOptimizer.UnionWith(trainableNames);
        _trainableNamed.AddRange(groups.SelectMany(g => g.Plan.ParameterNames.Select(n => (n, _map.GetParameter(n)))));
    }

    private List<(ParameterGroupPlan Plan, Parameter[] Parameters)> ResolveGroups(IReadOnlyList<string> names, double factor)
    {
        IReadOnlyList<ParameterGroupPlan> plans = _s.ParameterGrouping.Group(_map!, names);
        var known = names.ToHashSet(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var groups = new List<(ParameterGroupPlan, Parameter[])>();
        var problems = new List<string>();
        foreach (ParameterGroupPlan plan in plans)
        {
            var members = new Parameter[plan.ParameterNames.Length];
            for (int i = 0; i < members.Length; i++)
            {
                string name = plan.ParameterNames[i];
                if (!known.Contains(name))
                {
                    problems.Add($"Parameter group '{plan.Name}' names '{name}', which is not a trainable parameter of the model.");
                    continue;
                }

                if (!seen.Add(name))
                {
                    problems.Add($"Parameter '{name}' is in more than one group (again in '{plan.Name}'); each parameter belongs to exactly one group.");
                }

                members[i] = _map!.GetParameter(name);
            }

            if (!(plan.LearningRateMultiplier >= 0) || double.IsInfinity(plan.LearningRateMultiplier))
            {
                problems.Add($"Parameter group '{plan.Name}' has learning-rate multiplier {plan.LearningRateMultiplier}; it must be finite and ≥ 0.");
            }

            if (members.Length > 0)
            {
                groups.Add((factor == 1.0 ? plan : plan with { LearningRateMultiplier = plan.LearningRateMultiplier * factor }, members));
            }
        }

        string[] missing = [.. names.Where(n => !seen.Contains(n))];
        if (missing.Length > 0)
        {
            problems.Add($"{missing.Length} trainable parameter(s) are in no group (first: '{missing[0]}'); every trainable parameter needs a group.");
        }

        if (problems.Count > 0)
        {
            throw new FineTunePlanException(problems);
        }

        return groups;
    }

    // Sets requires_grad from the strategy's decision; parameters the caller froze before Fit stay frozen.
    private void ApplyFreezing(FreezePosition position)
    {
        var frozen = new HashSet<string>(_pinnedFrozen, StringComparer.Ordinal);
        if (_s.Freeze is { } strategy)
        {
            frozen.UnionWith(strategy.Frozen(_map!, position));
        }

        foreach (string name in _map!.ParameterNames)
        {
            Parameter parameter = _map.GetParameter(name);
            bool trainable = !frozen.Contains(name);
            if (parameter.requires_grad != trainable)
            {
                parameter.requires_grad = trainable;
                if (!trainable)
                {
                    // A re-frozen parameter must have no gradient, or the optimizer would still move it (decay, momentum).
                    parameter.grad = null;
                }
            }
        }

        _frozen = frozen;
    }

    // Gradual unfreezing: parameters that become trainable join the optimizer as new groups with fresh state.
    private void UpdateFreezing(FreezePosition position)
    {
        if (_s.Freeze is not { } strategy || !strategy.ChangesAt(position))
        {
            return;
        }

        IReadOnlySet<string> before = _frozen;
        ApplyFreezing(position);
        string[] unfrozen = [.. _map!.ParameterNames.Where(n => before.Contains(n) && !_frozen.Contains(n) && !_inOptimizer.Contains(n))];
        if (unfrozen.Length == 0)
        {
            return;
        }

        AddToOptimizer(unfrozen, strategy.UnfrozenLearningRateFactor);
        _state.UnfreezeEvents.Add(new UnfreezeEvent(position.Epoch, position.Step, unfrozen, strategy.UnfrozenLearningRateFactor));
        Log.Unfrozen(_logger, position.Step, position.Epoch, unfrozen.Length, string.Join(", ", unfrozen.Select(n => _map.GroupOf(n).Name).Distinct()));
    }

    private void AddToOptimizer(IReadOnlyList<string> names, double factor)
    {
        var groups = ResolveGroups(names, factor);
        foreach ((ParameterGroupPlan plan, Parameter[] parameters) in groups)
        {
            _optimizer!.add_param_group(_s.Optimizer.CreateGroup(plan, parameters, _learningRate));
            _groupNames.Add(plan.Name);
        }

        _groups = [.. _optimizer!.ParamGroups];
        _groupMultipliers = [.. _groupMultipliers, .. groups.Select(g => g.Plan.LearningRateMultiplier)];
        _trainable = [.. _trainable, .. groups.SelectMany(g => g.Parameters)];
        _normParts = new Tensor[_trainable.Length];
        _trainableNamed.AddRange(groups.SelectMany(g => g.Plan.ParameterNames.Select(n => (n, _map!.GetParameter(n)))));
        foreach (string name in names)
        {
            _inOptimizer.Add(name);
        }
    }

    private void StartRegularizers(long stepsPerEpoch)
    {
        _schedule = _s.Schedule;
        _regularization = new Regularization.RegularizationContext(_model, _map!, _device, () => _trainableNamed, ForwardTrainingData) { StepsPerEpoch = stepsPerEpoch };
        foreach (Regularization.IRegularizer regularizer in _s.Regularizers)
        {
            regularizer.OnTrainingStart(_regularization);
            _schedule = regularizer.AdjustSchedule(_schedule);
        }
    }

    // Forward passes over training batches in training mode without gradients (batch-norm statistics after averaging).
    private void ForwardTrainingData(int maxBatches)
    {
        bool wasTraining = _model.training;
        _model.train();
        try
        {
            using var noGrad = torch.no_grad();
            using var data = new BatchPrefetcher<TExample, TBatch>(_train, Identity(_train.Count), _s.BatchSize, 0, _collator, _device, _s.PrefetchBatches, CancellationToken.None);
            int done = 0;
            while ((maxBatches <= 0 || done < maxBatches) && data.TryTake(out TBatch batch))
            {
                using (batch)
                using (torch.NewDisposeScope())
                {
                    _objective.Loss(_model, batch);
                }

                done++;
            }
        }
        finally
        {
            _model.train(wasTraining);
        }
    }

    private void RestoreRequiresGrad()
    {
        if (_map is null)
        {
            return;
        }

        foreach ((string name, bool trainable) in _originalRequiresGrad)
        {
            _map.GetParameter(name).requires_grad = trainable;
        }
    }

    private void Resume(string path)
    {
        string folder = CheckpointStore.Resolve(path)
            ?? throw new FineTunePlanException([$"No checkpoint to resume from at '{path}'."]);
        _best = _s.EarlyStopping?.RestoreBestWeights == true ? new Dictionary<string, Tensor>(StringComparer.Ordinal) : null;
        TrainerState saved = CheckpointStore.ReadState(folder);

        // Rebuild the optimizer's groups exactly as they were when the checkpoint was written (gradual unfreezing adds
        // groups over time), so its saved state lines up with them.
        foreach (UnfreezeEvent unfreeze in saved.UnfreezeEvents)
        {
            ApplyFreezing(new FreezePosition(unfreeze.Epoch, unfreeze.Step, AtEpochStart: true));
            AddToOptimizer(unfreeze.Parameters, unfreeze.LearningRateFactor);
        }

        ApplyFreezing(new FreezePosition(saved.Epoch, saved.GlobalStep));
        var regularizerTensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        TrainerState loaded = CheckpointStore.Load(folder, _model, _optimizer!, _best, regularizerTensors);
        foreach (Regularization.IRegularizer regularizer in _s.Regularizers)
        {
            string prefix = regularizer.Name + "/";
            regularizer.LoadState(
                regularizerTensors.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value),
                loaded.RegularizerScalars.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value));
        }

        foreach (Tensor tensor in regularizerTensors.Values)
        {
            tensor.Dispose();
        }

        var problems = new List<string>();
        if (loaded.Seed != _s.Seed)
        {
            problems.Add($"The checkpoint was trained with seed {loaded.Seed}, the plan has {_s.Seed}; resume with the same seed to continue the run exactly.");
        }

        if (loaded.TrainExampleCount != _train.Count)
        {
            problems.Add($"The checkpoint was trained on {loaded.TrainExampleCount} examples, Fit was given {_train.Count}; resume with the same training data.");
        }

        if (loaded.TotalSteps != _state.TotalSteps)
        {
            problems.Add($"The checkpoint's run had {loaded.TotalSteps} steps, this plan has {_state.TotalSteps}; keep epochs, batch size, accumulation and max steps unchanged when resuming.");
        }

        if (problems.Count > 0)
        {
            throw new FineTunePlanException(problems);
        }

        _state = loaded;
        if (_s.Schedule is IMetricDrivenSchedule drivenSchedule)
        {
            if (loaded.ScheduleState is { } scheduleState)
            {
                drivenSchedule.LoadState(scheduleState);
            }
            else
            {
                drivenSchedule.Reset();
            }
        }

        if (_best is { Count: 0 })
        {
            _best = null;
        }

        _lastCheckpoint = folder;
        Log.Resumed(_logger, folder, loaded.GlobalStep, loaded.Epoch, loaded.BatchesDoneInEpoch);
    }

    private void TrainLoop(int batchesPerEpoch, long totalSteps, CancellationToken cancellationToken)
    {
        int accumulate = _s.GradientAccumulationSteps;
        int evaluationBatchSize = _s.EvaluationBatchSize > 0 ? _s.EvaluationBatchSize : _s.BatchSize;
        // With a step budget the data repeats until the budget is spent; otherwise the epoch count bounds the run
        // (skipped non-finite steps leave it short of totalSteps, and must not spill into an extra epoch).
        int lastEpoch = _s.MaxSteps is null ? _s.Epochs : int.MaxValue;
        // A gradient left by the caller (a backward before Fit, an earlier run) must not leak into the first step.
        ClearGradients();
        for (int epoch = _state.Epoch; epoch < lastEpoch && _state.GlobalStep < totalSteps && !_control.IsStopRequested; epoch++)
        {
            int batchIndex = epoch == _state.Epoch ? _state.BatchesDoneInEpoch : 0;
            if (batchIndex == 0)
            {
                UpdateFreezing(new FreezePosition(epoch, _state.GlobalStep, AtEpochStart: true));
            }

            _epochLossSum!.zero_();
            _epochBatches = 0;
            int pending = 0;
            using (var data = new BatchPrefetcher<TExample, TBatch>(_train, Order(epoch), _s.BatchSize, batchIndex, _collator, _device, _s.PrefetchBatches, cancellationToken))
            {
                while (_state.GlobalStep < totalSteps && data.TryTake(out TBatch batch))
                {
                    TrainOnBatch(batch, accumulate, cancellationToken);
                    batchIndex++;
                    pending++;
                    if (pending < accumulate && batchIndex < batchesPerEpoch)
                    {
                        continue;
                    }

                    pending = 0;
                    bool applied = OptimizerStep(totalSteps);
                    _state.Epoch = epoch;
                    _state.BatchesDoneInEpoch = batchIndex;
                    AfterStep(epoch, totalSteps, applied, evaluationBatchSize, cancellationToken);
                    if (_control.IsStopRequested)
                    {
                        break;
                    }
                }
            }

            cancellationToken.ThrowIfCancellationRequested();
            if (batchIndex < batchesPerEpoch)
            {
                break;
            }

            double epochLoss = _epochBatches == 0 ? double.NaN : _epochLossSum.item<float>() / _epochBatches;
            IReadOnlyDictionary<string, double> validation = ImmutableDictionary<string, double>.Empty;
            if (_validation is not null)
            {
                validation = _lastEvaluationStep == _state.GlobalStep ? _latestMetrics : RunEvaluation(epoch, evaluationBatchSize, cancellationToken);
            }

            _epochs.Add(new EpochRecord(epoch, _state.GlobalStep, epochLoss, validation));
            _state.Epoch = epoch + 1;
            _state.BatchesDoneInEpoch = 0;
            for (int i = 0; i < _s.Callbacks.Length; i++)
            {
                _s.Callbacks[i].OnEpochEnd(new EpochEndArguments(epoch, _state.GlobalStep, epochLoss, _control));
            }
        }
    }

    private void TrainOnBatch(TBatch batch, int accumulate, CancellationToken cancellationToken)
    {
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = torch.NewDisposeScope();
            Tensor loss;
            using (MixedPrecision.Enter(_matmulType))
            using (_weightGradients.Enter())
            {
                loss = _objective.Loss(_model, batch);
            }

            Tensor total = loss;
            for (int i = 0; i < _s.Regularizers.Length; i++)
            {
                if (_s.Regularizers[i].Penalty(_regularization!) is { } penalty)
                {
                    total = total.add(penalty, Scalars.One);
                }
            }

            if (accumulate == 1)
            {
                total.backward();
            }
            else
            {
                using Scalar parts = accumulate.ToScalar();
                total.div(parts).backward();
            }

            _weightGradients.Apply();

            Tensor value = loss.detach();
            _lossSum!.add_(value, Scalars.One);
            _epochLossSum!.add_(value, Scalars.One);
            _tokens += batch.TokenCount;
            _examples += batch.ExampleCount;
            TrainingInstruments.Tokens.Add(batch.TokenCount);
        }
        finally
        {
            // A step that failed before Apply leaves nothing pending for the next one.
            _weightGradients.Discard();
            batch.Dispose();
        }

        _lossBatches++;
        _epochBatches++;
    }

    private void SelectPrecision()
    {
        _precision = Precision.Float32;
        _matmulType = null;
        if (_s.Precision == Precision.Float32)
        {
            return;
        }

        if (MixedPrecision.IsSupported(_s.Precision, _device, out string reason))
        {
            _precision = _s.Precision;
            _matmulType = ScalarType.BFloat16;
            Log.PrecisionSelected(_logger, _precision, reason);
        }
        else
        {
            Log.PrecisionFallback(_logger, _s.Precision, reason);
        }
    }

    private bool OptimizerStep(long totalSteps)
    {
        using var scope = torch.NewDisposeScope();
        // With clipping, libtorch's fused clip_grad_norm_ returns the pre-clipping norm: one native call gives both the
        // clipping and the finiteness check. A non-finite norm leaves NaN gradients, which are discarded below.
        double norm = _s.MaxGradientNorm is { } maxNorm
            ? torch.nn.utils.clip_grad_norm_(_trainable, maxNorm)
            : GradientNorm();
        if (!double.IsFinite(norm))
        {
            ClearGradients();
            long step = _state.GlobalStep + 1;
            string advice = "Lower the learning rate, enable gradient clipping, check the data for empty or corrupt examples, or choose OnNonFiniteLoss(NonFiniteLossPolicy.SkipStep).";
            if (_s.NonFiniteLoss == NonFiniteLossPolicy.Stop)
            {
                throw new NonFiniteLossException($"The loss or gradient became non-finite at step {step} (gradient norm {norm}); the weights keep the values of step {step - 1}. {advice}", step);
            }

            _consecutiveSkips++;
            _state.SkippedSteps++;
            Log.NonFiniteStepSkipped(_logger, step, norm, _consecutiveSkips);
            if (_consecutiveSkips >= _s.MaxConsecutiveSkippedSteps)
            {
                throw new NonFiniteLossException($"{_consecutiveSkips} steps in a row had a non-finite loss or gradient (last at step {step}); training stopped with the weights of step {step - 1}. {advice}", step);
            }

            return false;
        }

        _consecutiveSkips = 0;
        double multiplier = _schedule.Multiplier(_state.GlobalStep, totalSteps);
        _learningRate = _s.LearningRate * multiplier;
        for (int i = 0; i < _groups.Length; i++)
        {
            _groups[i].LearningRate = _learningRate * _groupMultipliers[i];
        }

        _optimizer!.step();
        ClearGradients();
        _state.GlobalStep++;
        for (int i = 0; i < _s.Regularizers.Length; i++)
        {
            _s.Regularizers[i].OnOptimizerStep(_regularization!, _state.GlobalStep, totalSteps);
        }

        _state.ScheduleMultiplier = multiplier;
        TrainingInstruments.Steps.Add(1);
        return true;
    }

    // Gradients are cleared (set to none, PyTorch's default since 2.0), not zeroed: the next backward then hands each
    // parameter its gradient instead of adding it into a zeroed one — two passes fewer over every gradient, 51 MB each for
    // a 50k-word embedding and head — and the fused loss's kept buffer becomes the output weight's gradient as it is. An
    // optimizer treats a parameter without a gradient as not stepped, as PyTorch's do. The flat AdamW's gradients are
    // views of its flat buffer, which it zeroes itself.
    private void ClearGradients()
    {
        if (_optimizer is FlatAdamW)
        {
            _optimizer.zero_grad();
            return;
        }

        foreach (Parameter parameter in _trainable)
        {
            parameter.grad = null;
        }
    }

    // The global L2 norm of all gradients, when clipping is off. It is read on the host every step because the update
    // must never apply a non-finite gradient; on CPU there is no device queue to drain, so the read costs only the norm.
    private double GradientNorm()
    {
        int count = 0;
        for (int i = 0; i < _trainable.Length; i++)
        {
            Tensor? grad = _trainable[i].grad;
            if (grad is not null)
            {
                _normParts[count++] = grad.norm();
            }
        }

        if (count == 0)
        {
            return 0.0;
        }

        Tensor parts = count == _normParts.Length ? torch.stack(_normParts) : torch.stack(_normParts[..count]);
        double norm = parts.norm().item<float>();
        Array.Clear(_normParts, 0, count);
        return norm;
    }

    private void AfterStep(int epoch, long totalSteps, bool applied, int evaluationBatchSize, CancellationToken cancellationToken)
    {
        long step = _state.GlobalStep;
        double? loss = null;
        if (applied && step % _s.LogEverySteps == 0)
        {
            loss = ReadTrainingLoss(step, totalSteps, epoch);
        }

        for (int i = 0; i < _s.Callbacks.Length; i++)
        {
            _s.Callbacks[i].OnStepEnd(new StepEndArguments(step, totalSteps, epoch, _learningRate, loss, !applied, _control));
        }

        if (!applied)
        {
            return;
        }

        if (_s.RecordLearningRates)
        {
            var rates = new double[_groups.Length];
            for (int i = 0; i < rates.Length; i++)
            {
                rates[i] = _groups[i].LearningRate;
            }

            _learningRates.Add(new LearningRateRecord(step, ImmutableArray.Create(rates)));
        }

        UpdateFreezing(new FreezePosition(epoch, step));
        if (_validation is not null && _s.EvaluateEverySteps > 0 && step % _s.EvaluateEverySteps == 0)
        {
            RunEvaluation(epoch, evaluationBatchSize, cancellationToken);
        }

        if (_s.Checkpoints is { } checkpoints && step % checkpoints.EverySteps == 0)
        {
            SaveCheckpoint(checkpoints);
        }
    }

    private double ReadTrainingLoss(long step, long totalSteps, int epoch)
    {
        double loss = _lossBatches == 0 ? double.NaN : _lossSum!.item<float>() / _lossBatches;
        _lossSum!.zero_();
        _lossBatches = 0;
        double tokensPerSecond = _tokens / Math.Max(_clock.Elapsed.TotalSeconds, 1e-9);
        _lossLog.Add(new LossRecord(step, loss, _learningRate));
        TrainingInstruments.Loss.Record(loss);
        TrainingInstruments.LearningRate.Record(_learningRate);
        TrainingInstruments.Throughput.Record(tokensPerSecond);
        Log.TrainingLoss(_logger, step, totalSteps, epoch, loss, _learningRate, tokensPerSecond);
        _s.Progress?.Report(new TrainingProgress(step, totalSteps, epoch, loss, _learningRate, tokensPerSecond, _clock.Elapsed, _latestMetrics));
        return loss;
    }

    private IReadOnlyDictionary<string, double> RunEvaluation(int epoch, int batchSize, CancellationToken cancellationToken)
    {
        var metrics = Evaluate(batchSize, cancellationToken);
        long step = _state.GlobalStep;
        _lastEvaluationStep = step;
        _latestMetrics = metrics;
        _evaluations.Add(new EvaluationRecord(step, epoch, metrics, _clock.Elapsed));
        Log.EvaluationCompleted(_logger, step, string.Join(", ", metrics.Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key} = {kv.Value:G6}"))));
        TrackBest(metrics, step);
        if (_s.Schedule is IMetricDrivenSchedule driven && metrics.TryGetValue(driven.Metric, out double observed))
        {
            driven.Observe(step, _state.TotalSteps, observed);
        }

        for (int i = 0; i < _s.Callbacks.Length; i++)
        {
            _s.Callbacks[i].OnEvaluationEnd(new EvaluationEndArguments(step, epoch, metrics, _control));
        }

        return metrics;
    }

    private ImmutableDictionary<string, double> Evaluate(int batchSize, CancellationToken cancellationToken)
        => EvaluationLoop.Run(_model, _objective, _validation!, _collator, _metrics, "validation.", batchSize, _device, _s.PrefetchBatches, cancellationToken);

    private void TrackBest(IReadOnlyDictionary<string, double> metrics, long step)
    {
        string? monitor = Monitor;
        if (monitor is null || !metrics.TryGetValue(monitor, out double value))
        {
            return;
        }

        EarlyStoppingPlan? es = _s.EarlyStopping;
        bool higherIsBetter = es?.Mode switch
        {
            MetricMode.Max => true,
            MetricMode.Min => false,
            _ => _metrics.FirstOrDefault(m => "validation." + m.Name == monitor)?.HigherIsBetter ?? false,
        };
        double minDelta = es?.MinDelta ?? 0.0;
        bool improved = !double.IsNaN(value) && (_state.BestMetric is not { } best || (higherIsBetter ? value > best + minDelta : value < best - minDelta));
        if (improved)
        {
            _state.BestMetric = value;
            _state.BestStep = step;
            _state.EvaluationsWithoutImprovement = 0;
            _bestMetrics = metrics;
            if (es?.RestoreBestWeights == true)
            {
                SnapshotWeights();
            }

            return;
        }

        _state.EvaluationsWithoutImprovement++;
        if (es is not null && _state.EvaluationsWithoutImprovement >= es.Patience)
        {
            _stopReason = StopReason.EarlyStopped;
            string reason = string.Create(CultureInfo.InvariantCulture, $"early stopping: {monitor} did not improve by more than {es.MinDelta} for {es.Patience} evaluation(s); best {_state.BestMetric:G6} at step {_state.BestStep}");
            _control.RequestStop(reason);
            Log.TrainingStopped(_logger, step, reason);
        }
    }

    private void SnapshotWeights()
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        _best ??= new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach ((string name, Tensor tensor) in _model.state_dict())
        {
            if (_best.TryGetValue(name, out Tensor? copy))
            {
                copy.copy_(tensor);
            }
            else
            {
                _best[name] = tensor.detach().clone().DetachFromDisposeScope();
            }
        }

        _state.HasBestWeights = true;
    }

    private void RestoreBestWeights()
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        foreach ((string name, Tensor tensor) in _model.state_dict())
        {
            if (_best!.TryGetValue(name, out Tensor? copy))
            {
                tensor.copy_(copy);
            }
        }
    }

    private void SaveCheckpoint(CheckpointPlan plan)
    {
        _state.ScheduleState = (_s.Schedule as IMetricDrivenSchedule)?.SaveState();
        var regularizerTensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        _state.RegularizerScalars.Clear();
        foreach (Regularization.IRegularizer regularizer in _s.Regularizers)
        {
            var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            var scalars = new Dictionary<string, double>(StringComparer.Ordinal);
            regularizer.SaveState(tensors, scalars);
            foreach ((string key, Tensor tensor) in tensors)
            {
                regularizerTensors[regularizer.Name + "/" + key] = tensor;
            }

            foreach ((string key, double value) in scalars)
            {
                _state.RegularizerScalars[regularizer.Name + "/" + key] = value;
            }
        }

        string target = Path.Combine(plan.Directory, CheckpointStore.FolderName(_state.GlobalStep));
        _lastCheckpoint = CheckpointStore.Save(target, _model, _optimizer!, _state, _best, regularizerTensors);
        _lastCheckpointStep = _state.GlobalStep;
        CheckpointStore.Prune(plan.Directory, plan.KeepLast);
        Log.CheckpointSaved(_logger, _state.GlobalStep, target);
    }

    private FineTuneResult Finish(long totalSteps, CancellationToken cancellationToken)
    {
        if (_control.IsStopRequested && _stopReason == StopReason.Completed)
        {
            _stopReason = StopReason.StoppedByCallback;
            Log.TrainingStopped(_logger, _state.GlobalStep, _control.StopReason!);
        }

        int evaluationBatchSize = _s.EvaluationBatchSize > 0 ? _s.EvaluationBatchSize : _s.BatchSize;
        if (_validation is not null && _lastEvaluationStep != _state.GlobalStep && _stopReason != StopReason.EarlyStopped)
        {
            RunEvaluation(_state.Epoch, evaluationBatchSize, cancellationToken);
        }

        if (_lossBatches > 0)
        {
            ReadTrainingLoss(_state.GlobalStep, totalSteps, _state.Epoch);
        }

        // The last checkpoint holds the training state (raw weights, optimizer, averagers) so that it can be resumed;
        // averaged or restored-best weights are the result, written by the caller or a model package.
        _state.Completed = _stopReason != StopReason.StoppedByCallback;
        if (_s.Checkpoints is { } checkpoints && _lastCheckpointStep != _state.GlobalStep)
        {
            SaveCheckpoint(checkpoints);
        }

        bool averaged = false;
        for (int i = 0; i < _s.Regularizers.Length; i++)
        {
            averaged |= _s.Regularizers[i].OnTrainingEnd(_regularization!);
        }

        bool restored = false;
        IReadOnlyDictionary<string, double> finalMetrics = _latestMetrics;
        if (averaged)
        {
            // Averaged weights (SWA, EMA) are the result: evaluate them; early stopping's snapshot is not restored over them.
            if (_validation is not null)
            {
                finalMetrics = Evaluate(evaluationBatchSize, cancellationToken);
                _evaluations.Add(new EvaluationRecord(_state.GlobalStep, _state.Epoch, finalMetrics, _clock.Elapsed));
            }
        }
        else if (_best is not null && _state.BestStep is { } bestStep && _state.BestMetric is { } bestValue)
        {
            if (bestStep != _state.GlobalStep || _lastEvaluationStep != bestStep)
            {
                RestoreBestWeights();
                restored = true;
                Log.BestWeightsRestored(_logger, bestStep, Monitor!, bestValue);
            }

            finalMetrics = _bestMetrics ?? finalMetrics;
        }


        TimeSpan elapsed = _clock.Elapsed;
        double seconds = Math.Max(elapsed.TotalSeconds, 1e-9);
        var result = new FineTuneResult
        {
            Precision = _precision,
            TrainingLoss = _lossLog.ToImmutable(),
            Evaluations = _evaluations.ToImmutable(),
            Epochs = _epochs.ToImmutable(),
            MonitoredMetric = _state.BestMetric is null ? null : Monitor,
            BestMetric = _state.BestMetric,
            BestStep = _state.BestStep,
            RestoredBestWeights = restored,
            AveragedWeights = averaged,
            FinalMetrics = finalMetrics,
            Steps = _state.GlobalStep,
            SkippedSteps = _state.SkippedSteps,
            StopReason = _stopReason,
            StopMessage = _control.StopReason,
            WallTime = elapsed,
            ExamplesPerSecond = _examples / seconds,
            TokensPerSecond = _tokens / seconds,
            LastCheckpoint = _lastCheckpoint,
            ParameterGroups = [.. _groupNames],
            LearningRates = _learningRates.ToImmutable(),
        };
        Log.TrainingFinished(_logger, result.Steps, elapsed, result.StopReason, result.MonitoredMetric, result.BestMetric);
        for (int i = 0; i < _s.Callbacks.Length; i++)
        {
            _s.Callbacks[i].OnTrainingEnd(new TrainingEndArguments(result));
        }

        return result;
    }

    private int[] Order(int epoch)
    {
        int[] order = Identity(_train.Count);
        if (!_s.Shuffle)
        {
            return order;
        }

        // The order is a pure function of (seed, epoch): resuming mid-epoch replays it exactly.
        var random = new Random(unchecked((int)(_s.Seed * 1_000_003L + epoch)));
        random.Shuffle(order);
        return order;
    }

    private static int[] Identity(int count)
    {
        var order = new int[count];
        for (int i = 0; i < count; i++)
        {
            order[i] = i;
        }

        return order;
    }
}
