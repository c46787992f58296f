using System.Diagnostics.Metrics;

namespace NicheTune.Training;

/// <summary>
/// The <c>NicheTune</c> meter: what OpenTelemetry or <c>dotnet-counters monitor --counters NicheTune</c> sees of a run.
/// Per-step instruments take host-side numbers only; loss and rates are recorded at logging steps.
/// </summary>
public static class TrainingInstruments
{
    /// <summary>The meter's name, for OpenTelemetry's <c>AddMeter</c> or dotnet-counters.</summary>
    public const string MeterName = "NicheTune";

    internal static readonly Meter Meter = new(MeterName, "1.0");

    internal static readonly Counter<long> Steps = Meter.CreateCounter<long>("nichetune.train.steps", "{step}", "Optimizer steps taken.");

    internal static readonly Counter<long> Tokens = Meter.CreateCounter<long>("nichetune.train.tokens", "{token}", "Training tokens processed (padding excluded).");

    internal static readonly Histogram<double> Loss = Meter.CreateHistogram<double>("nichetune.train.loss", null, "Mean training loss over a logging interval.");

    internal static readonly Histogram<double> LearningRate = Meter.CreateHistogram<double>("nichetune.train.learning_rate", null, "Base learning rate after the schedule, at logging steps.");

    internal static readonly Histogram<double> Throughput = Meter.CreateHistogram<double>("nichetune.train.tokens_per_second", "{token}/s", "Training throughput at logging steps.");
}
