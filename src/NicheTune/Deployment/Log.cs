using Microsoft.Extensions.Logging;

namespace NicheTune.Deployment;

internal static partial class Log
{
    [LoggerMessage(EventId = 401, EventName = "ModelLoaded", Level = LogLevel.Information,
        Message = "Model '{Name}' {Version} loaded from {Folder}: {Kind} {Architecture}, {Parameters} parameters as {Dtype} on {Device}, content hash {ContentHash} ({Milliseconds} ms)")]
    public static partial void ModelLoaded(ILogger logger, string name, string version, string folder, ModelPackageKind kind, string architecture, long parameters, string dtype, string device, string contentHash, long milliseconds);

    [LoggerMessage(EventId = 402, EventName = "BatchFailed", Level = LogLevel.Error,
        Message = "Model '{Name}': a batch of {Count} {Kind} request(s) failed; each caller receives the exception")]
    public static partial void BatchFailed(ILogger logger, Exception exception, string name, int count, PredictionKind kind);

    [LoggerMessage(EventId = 403, EventName = "ObserverFailed", Level = LogLevel.Warning,
        Message = "Model '{Name}': observer {Observer} threw while recording a {Kind} prediction; the answer was still returned")]
    public static partial void ObserverFailed(ILogger logger, Exception exception, string name, string observer, PredictionKind kind);

    [LoggerMessage(EventId = 404, EventName = "ModelDisposed", Level = LogLevel.Information,
        Message = "Model '{Name}' disposed after {Requests} request(s) in {Batches} batch(es); {Pending} pending request(s) were cancelled")]
    public static partial void ModelDisposed(ILogger logger, string name, long requests, long batches, int pending);
}
