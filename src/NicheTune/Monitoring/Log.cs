using Microsoft.Extensions.Logging;

namespace NicheTune.Monitoring;

internal static partial class Log
{
    [LoggerMessage(EventId = 101, EventName = "DriftWarning", Level = LogLevel.Warning,
        Message = "Monitor {Monitor}: {Statistic} drifted to warning (PSI {Psi:F4}, JS {JensenShannon:F4} bits, {WindowCount} observations)")]
    public static partial void DriftWarning(ILogger logger, string monitor, DriftStatistic statistic, double psi, double jensenShannon, long windowCount);

    [LoggerMessage(EventId = 102, EventName = "DriftAlert", Level = LogLevel.Error,
        Message = "Monitor {Monitor}: {Statistic} drifted to alert (PSI {Psi:F4}, JS {JensenShannon:F4} bits, {WindowCount} observations)")]
    public static partial void DriftAlert(ILogger logger, string monitor, DriftStatistic statistic, double psi, double jensenShannon, long windowCount);

    [LoggerMessage(EventId = 103, EventName = "DriftRecovered", Level = LogLevel.Information,
        Message = "Monitor {Monitor}: {Statistic} is back below its thresholds (PSI {Psi:F4}, was {Previous})")]
    public static partial void DriftRecovered(ILogger logger, string monitor, DriftStatistic statistic, double psi, DriftLevel previous);

    [LoggerMessage(EventId = 104, EventName = "AlertHandlerFailed", Level = LogLevel.Error,
        Message = "Monitor {Monitor}: an Alert handler threw; the monitor keeps running")]
    public static partial void AlertHandlerFailed(ILogger logger, Exception exception, string monitor);
}
