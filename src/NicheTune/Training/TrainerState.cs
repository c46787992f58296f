using System.Text.Json;
using System.Text.Json.Serialization;

namespace NicheTune.Training;

/// <summary>Parameters that joined the optimizer during training (gradual unfreezing), replayed in order on resume.</summary>
internal sealed record UnfreezeEvent(int Epoch, long Step, string[] Parameters, double LearningRateFactor);

/// <summary>The trainer's position and bookkeeping, saved as <c>trainer_state.json</c> in each checkpoint.</summary>
internal sealed class TrainerState
{
    public const int CurrentFormatVersion = 1;

    public int FormatVersion { get; set; } = CurrentFormatVersion;

    public long GlobalStep { get; set; }

    public int Epoch { get; set; }

    // Micro-batches of the current epoch already consumed: the data order is a pure function of (seed, epoch),
    // so resuming skips exactly these.
    public int BatchesDoneInEpoch { get; set; }

    public long Seed { get; set; }

    public long TotalSteps { get; set; }

    public int TrainExampleCount { get; set; }

    public string? MonitoredMetric { get; set; }

    public double? BestMetric { get; set; }

    public long? BestStep { get; set; }

    public int EvaluationsWithoutImprovement { get; set; }

    public bool HasBestWeights { get; set; }

    public long SkippedSteps { get; set; }

    public double ScheduleMultiplier { get; set; } = 1.0;

    public bool Completed { get; set; }

    // State of a metric-driven schedule (reduce-on-plateau); pure step schedules need none.
    public string? ScheduleState { get; set; }

    public Dictionary<string, double> RegularizerScalars { get; set; } = new(StringComparer.Ordinal);

    public List<UnfreezeEvent> UnfreezeEvents { get; set; } = [];

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static TrainerState FromJson(string json, string source)
    {
        TrainerState? state;
        try
        {
            state = JsonSerializer.Deserialize<TrainerState>(json, Json);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"'{source}' is not a valid trainer state: {ex.Message}", ex);
        }

        if (state is null || state.FormatVersion != CurrentFormatVersion)
        {
            throw new InvalidDataException($"'{source}' has trainer-state format version {state?.FormatVersion}; this NicheTune reads version {CurrentFormatVersion}.");
        }

        return state;
    }
}
