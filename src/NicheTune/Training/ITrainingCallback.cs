namespace NicheTune.Training;

/// <summary>
/// Observes training and may stop it: logging, checkpoints and monitoring are callbacks. Every event has a
/// default no-op body, so an implementation overrides only what it needs and new events break nobody.
/// Callbacks run on the training thread in the order they were added; keep them cheap in <see cref="OnStepEnd"/>.
/// </summary>
public interface ITrainingCallback
{
    /// <summary>Called once, after the model, optimizer and data are ready and before the first step.</summary>
    /// <param name="args">The run's shape.</param>
    void OnTrainingStart(in TrainingStartArguments args)
    {
    }

    /// <summary>Called after every optimizer step.</summary>
    /// <param name="args">The step just taken; <see cref="StepEndArguments.Loss"/> is set only at logging steps (reading it costs a host sync).</param>
    void OnStepEnd(in StepEndArguments args)
    {
    }

    /// <summary>Called after each evaluation pass with its metrics.</summary>
    /// <param name="args">The metrics, named <c>validation.&lt;metric&gt;</c>.</param>
    void OnEvaluationEnd(in EvaluationEndArguments args)
    {
    }

    /// <summary>Called at the end of each epoch (after its evaluation, if any).</summary>
    /// <param name="args">The epoch just finished.</param>
    void OnEpochEnd(in EpochEndArguments args)
    {
    }

    /// <summary>Called once when training ends normally (not on cancellation or failure).</summary>
    /// <param name="args">The result.</param>
    void OnTrainingEnd(in TrainingEndArguments args)
    {
    }
}

/// <summary>Lets a callback stop training after the current step.</summary>
public sealed class TrainingControl
{
    /// <summary>Whether a stop was requested.</summary>
    public bool IsStopRequested => StopReason is not null;

    /// <summary>The reason given with the first stop request, or <see langword="null"/>.</summary>
    public string? StopReason { get; private set; }

    /// <summary>Asks the trainer to stop after the current step; the first reason given is kept.</summary>
    /// <param name="reason">Why training stops; appears in the result and the log.</param>
    public void RequestStop(string reason)
    {
        StopReason ??= string.IsNullOrWhiteSpace(reason) ? "stopped by a callback" : reason;
    }
}

/// <summary>Arguments of <see cref="ITrainingCallback.OnTrainingStart"/>.</summary>
/// <param name="TotalSteps">Planned optimizer steps.</param>
/// <param name="StepsPerEpoch">Optimizer steps per epoch.</param>
/// <param name="StartStep">The first step (above 0 when resuming).</param>
/// <param name="Control">Stops training.</param>
public readonly record struct TrainingStartArguments(long TotalSteps, long StepsPerEpoch, long StartStep, TrainingControl Control);

/// <summary>Arguments of <see cref="ITrainingCallback.OnStepEnd"/>.</summary>
/// <param name="Step">Optimizer steps taken so far (1 after the first).</param>
/// <param name="TotalSteps">Planned optimizer steps.</param>
/// <param name="Epoch">Current epoch, from 0.</param>
/// <param name="LearningRate">The base learning rate used for this step (after the schedule, before group multipliers).</param>
/// <param name="Loss">Mean training loss since the previous logging step; <see langword="null"/> except at logging steps.</param>
/// <param name="Skipped">Whether the update was skipped because the gradient was not finite.</param>
/// <param name="Control">Stops training.</param>
public readonly record struct StepEndArguments(long Step, long TotalSteps, int Epoch, double LearningRate, double? Loss, bool Skipped, TrainingControl Control);

/// <summary>Arguments of <see cref="ITrainingCallback.OnEvaluationEnd"/>.</summary>
/// <param name="Step">Optimizer steps taken when the evaluation ran.</param>
/// <param name="Epoch">Current epoch, from 0.</param>
/// <param name="Metrics">Metric values named <c>validation.&lt;metric&gt;</c>.</param>
/// <param name="Control">Stops training.</param>
public readonly record struct EvaluationEndArguments(long Step, int Epoch, IReadOnlyDictionary<string, double> Metrics, TrainingControl Control);

/// <summary>Arguments of <see cref="ITrainingCallback.OnEpochEnd"/>.</summary>
/// <param name="Epoch">The epoch that ended, from 0.</param>
/// <param name="Step">Optimizer steps taken so far.</param>
/// <param name="TrainLoss">Mean training loss over the epoch's batches.</param>
/// <param name="Control">Stops training.</param>
public readonly record struct EpochEndArguments(int Epoch, long Step, double TrainLoss, TrainingControl Control);

/// <summary>Arguments of <see cref="ITrainingCallback.OnTrainingEnd"/>.</summary>
/// <param name="Result">The run's result.</param>
public readonly record struct TrainingEndArguments(FineTuneResult Result);

/// <summary>A progress report, sent through <see cref="IProgress{T}"/> at each logging step and evaluation.</summary>
/// <param name="Step">Optimizer steps taken.</param>
/// <param name="TotalSteps">Planned optimizer steps.</param>
/// <param name="Epoch">Current epoch, from 0.</param>
/// <param name="TrainLoss">Mean training loss since the previous report.</param>
/// <param name="LearningRate">Current base learning rate after the schedule.</param>
/// <param name="TokensPerSecond">Training throughput since the start of the run.</param>
/// <param name="Elapsed">Wall time since the start of the run.</param>
/// <param name="Metrics">The latest evaluation's metrics, or empty before the first evaluation.</param>
public sealed record TrainingProgress(long Step, long TotalSteps, int Epoch, double TrainLoss, double LearningRate, double TokensPerSecond, TimeSpan Elapsed, IReadOnlyDictionary<string, double> Metrics);
