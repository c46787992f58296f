using System.Collections.Immutable;
using Microsoft.Extensions.Logging;
using NicheTune.Evaluation;
using NicheTune.Freezing;
using NicheTune.Scheduling;
using TorchSharp;

namespace NicheTune.Training;

/// <summary>Early stopping: stop when <paramref name="Metric"/> has not improved by more than <paramref name="MinDelta"/> for <paramref name="Patience"/> evaluations.</summary>
/// <param name="Metric">The monitored value, e.g. <c>validation.loss</c>.</param>
/// <param name="Patience">Evaluations without improvement before stopping.</param>
/// <param name="MinDelta">The smallest change that counts as an improvement.</param>
/// <param name="Mode">Whether lower or higher is better.</param>
/// <param name="RestoreBestWeights">Restore the weights of the best evaluation at the end.</param>
public sealed record EarlyStoppingPlan(string Metric, int Patience, double MinDelta, MetricMode Mode, bool RestoreBestWeights);

/// <summary>Periodic checkpoints into <paramref name="Directory"/>/<c>checkpoint-&lt;step&gt;</c>, each written atomically.</summary>
/// <param name="Directory">The folder that holds the checkpoints.</param>
/// <param name="EverySteps">Optimizer steps between checkpoints; one more is written at the end.</param>
/// <param name="KeepLast">How many recent checkpoints to keep (older ones are deleted).</param>
public sealed record CheckpointPlan(string Directory, int EverySteps, int KeepLast);

/// <summary>All settings of a plan; immutable, changed with <c>with</c> expressions by the builder.</summary>
internal sealed record PlanSettings
{
    public double LearningRate { get; init; } = 5e-5;

    public int BatchSize { get; init; } = 8;

    public int Epochs { get; init; } = 3;

    public long? MaxSteps { get; init; }

    public int GradientAccumulationSteps { get; init; } = 1;

    public double? MaxGradientNorm { get; init; } = 1.0;

    public long Seed { get; init; } = 42;

    public bool Shuffle { get; init; } = true;

    public OptimizerSpec Optimizer { get; init; } = Optimizers.AdamW();

    public ILearningRateSchedule Schedule { get; init; } = Schedules.Constant();

    public IParameterGrouping ParameterGrouping { get; init; } = ParameterGroupings.Uniform();

    public IFreezeStrategy? Freeze { get; init; }

    public Func<string, string?>? LayerClassifier { get; init; }

    public bool RecordLearningRates { get; init; }

    public ImmutableArray<Regularization.IRegularizer> Regularizers { get; init; } = [];

    public NonFiniteLossPolicy NonFiniteLoss { get; init; } = NonFiniteLossPolicy.Stop;

    public int MaxConsecutiveSkippedSteps { get; init; } = 10;

    public int EvaluateEverySteps { get; init; }

    public int LogEverySteps { get; init; } = 50;

    public int EvaluationBatchSize { get; init; }

    public ImmutableArray<IMetric> Metrics { get; init; } = [];

    public EarlyStoppingPlan? EarlyStopping { get; init; }

    public CheckpointPlan? Checkpoints { get; init; }

    public string? ResumeFrom { get; init; }

    public ImmutableArray<ITrainingCallback> Callbacks { get; init; } = [];

    public IProgress<TrainingProgress>? Progress { get; init; }

    public ILoggerFactory? LoggerFactory { get; init; }

    public torch.Device? Device { get; init; }

    public int PrefetchBatches { get; init; } = 2;

    public Precision Precision { get; init; } = Precision.Float32;
}
