using Microsoft.Extensions.Logging;

namespace NicheTune.Training;

internal static partial class Log
{
    [LoggerMessage(EventId = 1, EventName = "TrainingStarted", Level = LogLevel.Information,
        Message = "Fine-tuning started: objective {Objective}, optimizer {Optimizer}, {TotalSteps} steps ({StepsPerEpoch} per epoch), {TrainableParameters} trainable parameters in {Groups} groups, starting at step {StartStep}")]
    public static partial void TrainingStarted(ILogger logger, string objective, string optimizer, long totalSteps, long stepsPerEpoch, long trainableParameters, int groups, long startStep);

    [LoggerMessage(EventId = 2, EventName = "TrainingLoss", Level = LogLevel.Information,
        Message = "Step {Step}/{TotalSteps} epoch {Epoch}: loss {Loss:F4}, learning rate {LearningRate:E3}, {TokensPerSecond:F0} tokens/s")]
    public static partial void TrainingLoss(ILogger logger, long step, long totalSteps, int epoch, double loss, double learningRate, double tokensPerSecond);

    [LoggerMessage(EventId = 3, EventName = "EvaluationCompleted", Level = LogLevel.Information,
        Message = "Evaluation at step {Step}: {Metrics}")]
    public static partial void EvaluationCompleted(ILogger logger, long step, string metrics);

    [LoggerMessage(EventId = 4, EventName = "NonFiniteStepSkipped", Level = LogLevel.Warning,
        Message = "Step {Step}: the loss or gradient is not finite (gradient norm {Norm}); the update was skipped ({Consecutive} in a row)")]
    public static partial void NonFiniteStepSkipped(ILogger logger, long step, double norm, int consecutive);

    [LoggerMessage(EventId = 5, EventName = "CheckpointSaved", Level = LogLevel.Information,
        Message = "Checkpoint saved at step {Step}: {Path}")]
    public static partial void CheckpointSaved(ILogger logger, long step, string path);

    [LoggerMessage(EventId = 6, EventName = "Resumed", Level = LogLevel.Information,
        Message = "Resumed from {Path} at step {Step} (epoch {Epoch}, batch {Batch})")]
    public static partial void Resumed(ILogger logger, string path, long step, int epoch, int batch);

    [LoggerMessage(EventId = 7, EventName = "TrainingStopped", Level = LogLevel.Information,
        Message = "Training stops at step {Step}: {Reason}")]
    public static partial void TrainingStopped(ILogger logger, long step, string reason);

    [LoggerMessage(EventId = 8, EventName = "TrainingFinished", Level = LogLevel.Information,
        Message = "Fine-tuning finished after {Steps} steps in {Elapsed}: {Reason}; best {Metric} = {Best}")]
    public static partial void TrainingFinished(ILogger logger, long steps, TimeSpan elapsed, StopReason reason, string? metric, double? best);

    [LoggerMessage(EventId = 9, EventName = "BestWeightsRestored", Level = LogLevel.Information,
        Message = "Restored the weights of step {Step} ({Metric} = {Value})")]
    public static partial void BestWeightsRestored(ILogger logger, long step, string metric, double value);

    [LoggerMessage(EventId = 10, EventName = "Unfrozen", Level = LogLevel.Information,
        Message = "Step {Step} epoch {Epoch}: {Count} parameter(s) unfrozen and added to the optimizer ({Groups})")]
    public static partial void Unfrozen(ILogger logger, long step, int epoch, int count, string groups);

    [LoggerMessage(EventId = 11, EventName = "PrecisionFallback", Level = LogLevel.Warning,
        Message = "{Requested} was requested but training runs in fp32: {Reason}")]
    public static partial void PrecisionFallback(ILogger logger, Precision requested, string reason);

    [LoggerMessage(EventId = 12, EventName = "PrecisionSelected", Level = LogLevel.Information,
        Message = "Matrix products run in {Precision} ({Reason})")]
    public static partial void PrecisionSelected(ILogger logger, Precision precision, string reason);

    [LoggerMessage(EventId = 13, EventName = "NativeBackend", Level = LogLevel.Information,
        Message = "Training on device {Device} with {Backend}")]
    public static partial void NativeBackend(ILogger logger, string device, NativeBackendInfo backend);
}
