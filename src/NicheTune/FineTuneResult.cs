using System.Collections.Immutable;
using NicheTune.Training;

namespace NicheTune;

/// <summary>One evaluation pass: when it ran and what it measured.</summary>
/// <param name="Step">Optimizer steps taken when it ran.</param>
/// <param name="Epoch">Epoch, from 0.</param>
/// <param name="Metrics">Values named <c>validation.&lt;metric&gt;</c>.</param>
/// <param name="Elapsed">Wall time since the start of the run.</param>
public sealed record EvaluationRecord(long Step, int Epoch, IReadOnlyDictionary<string, double> Metrics, TimeSpan Elapsed);

/// <summary>One finished epoch.</summary>
/// <param name="Epoch">Epoch, from 0.</param>
/// <param name="Step">Optimizer steps taken at its end.</param>
/// <param name="TrainLoss">Mean training loss over its batches.</param>
/// <param name="Validation">The epoch-end evaluation's metrics, or empty without validation data.</param>
public sealed record EpochRecord(int Epoch, long Step, double TrainLoss, IReadOnlyDictionary<string, double> Validation);

/// <summary>The training loss at a logging step.</summary>
/// <param name="Step">Optimizer steps taken.</param>
/// <param name="Loss">Mean training loss since the previous logging step.</param>
/// <param name="LearningRate">Base learning rate after the schedule.</param>
public sealed record LossRecord(long Step, double Loss, double LearningRate);

/// <summary>The learning rate of every optimizer parameter group after one step (recorded with <c>RecordLearningRates()</c>).</summary>
/// <param name="Step">Optimizer steps taken, from 1.</param>
/// <param name="Rates">Rate per group, in the order of <see cref="FineTuneResult.ParameterGroups"/>; groups added later by unfreezing extend the array.</param>
public sealed record LearningRateRecord(long Step, ImmutableArray<double> Rates);

/// <summary>
/// What a fine-tuning run produced: the history of losses and evaluations, the best monitored value, throughput,
/// and why it ended. The model passed to <see cref="FineTuner.For"/> holds the final (or restored best) weights.
/// </summary>
public sealed class FineTuneResult
{
    internal FineTuneResult()
    {
    }

    /// <summary>
    /// The precision the training step's matrix products ran in: <see cref="Training.Precision.BFloat16"/> only when it was
    /// asked for with <c>WithPrecision</c> and the device supports it.
    /// </summary>
    /// <value><see cref="Training.Precision.Float32"/> by default.</value>
    public Precision Precision { get; init; }

    /// <summary>Training loss at each logging step.</summary>
    public ImmutableArray<LossRecord> TrainingLoss { get; init; } = [];

    /// <summary>Every evaluation pass, in order.</summary>
    public ImmutableArray<EvaluationRecord> Evaluations { get; init; } = [];

    /// <summary>Every finished epoch, in order.</summary>
    public ImmutableArray<EpochRecord> Epochs { get; init; } = [];

    /// <summary>The metric early stopping monitored (or <c>validation.loss</c> when evaluation ran without early stopping), or <see langword="null"/>.</summary>
    public string? MonitoredMetric { get; init; }

    /// <summary>The best value of <see cref="MonitoredMetric"/>, or <see langword="null"/> when nothing was evaluated.</summary>
    public double? BestMetric { get; init; }

    /// <summary>The step at which <see cref="BestMetric"/> was reached.</summary>
    public long? BestStep { get; init; }

    /// <summary>Whether the model's weights were restored to those of <see cref="BestStep"/> at the end.</summary>
    public bool RestoredBestWeights { get; init; }

    /// <summary>Whether a weight averager (SWA, EMA) replaced the model's weights at the end; <see cref="FinalMetrics"/> are then the averaged model's.</summary>
    public bool AveragedWeights { get; init; }

    /// <summary>Metrics of the last evaluation, or of the best one when its weights were restored; empty without validation data.</summary>
    public IReadOnlyDictionary<string, double> FinalMetrics { get; init; } = ImmutableDictionary<string, double>.Empty;

    /// <summary>Optimizer steps taken, including those before a resume.</summary>
    public long Steps { get; init; }

    /// <summary>Updates skipped because the gradient was not finite.</summary>
    public long SkippedSteps { get; init; }

    /// <summary>Why the run ended.</summary>
    public StopReason StopReason { get; init; }

    /// <summary>The stop request's reason, for early stopping or a callback; otherwise <see langword="null"/>.</summary>
    public string? StopMessage { get; init; }

    /// <summary>Wall time of this run (since <c>Fit</c> was called).</summary>
    public TimeSpan WallTime { get; init; }

    /// <summary>Training examples processed per second of wall time in this run.</summary>
    public double ExamplesPerSecond { get; init; }

    /// <summary>Training tokens (non-padding) processed per second of wall time in this run.</summary>
    public double TokensPerSecond { get; init; }

    /// <summary>Names of the optimizer's parameter groups, in order (e.g. <c>layer 3</c>, <c>layer 3 (no decay)</c>).</summary>
    public ImmutableArray<string> ParameterGroups { get; init; } = [];

    /// <summary>Every group's learning rate at every step, when <c>RecordLearningRates()</c> was set; otherwise empty.</summary>
    public ImmutableArray<LearningRateRecord> LearningRates { get; init; } = [];

    /// <summary>The last checkpoint written, or <see langword="null"/> when checkpoints were not enabled.</summary>
    public string? LastCheckpoint { get; init; }
}
