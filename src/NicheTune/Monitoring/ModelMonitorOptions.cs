using System.ComponentModel.DataAnnotations;

namespace NicheTune.Monitoring;

/// <summary>Settings of a <see cref="ModelMonitor"/>.</summary>
public sealed class ModelMonitorOptions
{
    /// <summary>The monitor's name: the <c>monitor</c> tag of its metrics and the subject of its log messages and alerts.</summary>
    /// <value>Default <c>"default"</c>.</value>
    [Required]
    public string Name { get; init; } = "default";

    /// <summary>The most observations the rolling window holds; the oldest leaves when a new one arrives.</summary>
    /// <value>Default 1000.</value>
    [Range(1, 10_000_000)]
    public int WindowSize { get; init; } = 1000;

    /// <summary>
    /// The longest an observation stays in the window, measured from its <see cref="MonitorObservation.Timestamp"/> to the
    /// monitor's <see cref="TimeProvider"/> clock, or <see langword="null"/> for a window by count only. Observations leave
    /// in arrival order, so this assumes they arrive roughly in time order (as served requests do).
    /// </summary>
    /// <value>Default <see langword="null"/>.</value>
    public TimeSpan? WindowDuration { get; init; }

    /// <summary>Compare the window with the reference after every this many observations (<see cref="ModelMonitor.Evaluate"/> also does it on demand).</summary>
    /// <value>Default 100.</value>
    [Range(1, int.MaxValue)]
    public int EvaluateEvery { get; init; } = 100;

    /// <summary>
    /// Observations of a statistic the window must hold before its drift can raise an alert. PSI on few observations is
    /// noise: with no drift at all its expected value is about (bins − 1) · (1/n + 1/N) for a window of n and a
    /// reference of N, so 10 bins and n = 100 already average about 0.1, the warning threshold (measured: a window of 100
    /// FOLDOC entries against 500 others reached PSI 0.14). From 500 on, the no-drift PSI stays well below 0.1.
    /// </summary>
    /// <value>Default 500.</value>
    [Range(1, int.MaxValue)]
    public int MinimumWindowCount { get; init; } = 500;

    /// <summary>
    /// Perplexity of an input under a reference language model, computed for every observed <c>PredictionRecord</c>
    /// (it runs on the request's path: keep it cheap, e.g. an n-gram model). When <see langword="null"/>, a record's own
    /// log-likelihood gives the perplexity where present.
    /// </summary>
    /// <value>Default <see langword="null"/>.</value>
    public Func<string, double>? InputPerplexity { get; init; }

    /// <summary>Thresholds of every statistic without its own entry in <see cref="Thresholds"/>.</summary>
    /// <value>Default <see cref="DriftThresholds.Default"/> (PSI 0.1 warning, 0.25 alert).</value>
    [Required]
    public DriftThresholds DefaultThresholds { get; init; } = DriftThresholds.Default;

    /// <summary>Thresholds for particular statistics.</summary>
    /// <value>Default: none.</value>
    [Required]
    public IReadOnlyDictionary<DriftStatistic, DriftThresholds> Thresholds { get; init; } = new Dictionary<DriftStatistic, DriftThresholds>();

    /// <summary>The proportion an empty bin counts as in PSI and KL.</summary>
    /// <value>Default <see cref="Divergence.DefaultEpsilon"/> (1e-4).</value>
    [Range(1e-12, 0.1)]
    public double Epsilon { get; init; } = Divergence.DefaultEpsilon;

    internal DriftThresholds ThresholdsOf(DriftStatistic statistic) => Thresholds.TryGetValue(statistic, out DriftThresholds? t) ? t : DefaultThresholds;

    internal void Validate()
    {
        var errors = new List<ValidationResult>();
        Validator.TryValidateObject(this, new ValidationContext(this), errors, validateAllProperties: true);
        var messages = errors.Select(e => e.ErrorMessage ?? "invalid").ToList();
        if (WindowDuration is { } d && d <= TimeSpan.Zero)
        {
            messages.Add($"WindowDuration must be positive or null; got {d}.");
        }

        if (MinimumWindowCount > WindowSize)
        {
            messages.Add($"MinimumWindowCount ({MinimumWindowCount}) exceeds WindowSize ({WindowSize}), so no alert could ever fire; lower it or enlarge the window.");
        }

        foreach ((DriftStatistic statistic, DriftThresholds t) in Thresholds ?? new Dictionary<DriftStatistic, DriftThresholds>())
        {
            if (t is null)
            {
                messages.Add($"Thresholds[{statistic}] is null; remove the entry to use DefaultThresholds.");
            }
        }

        if (messages.Count > 0)
        {
            throw new ArgumentException("Invalid ModelMonitorOptions: " + string.Join(" ", messages), "options");
        }
    }
}

/// <summary>
/// When a statistic's drift becomes a warning or an alert. The PSI defaults (0.1 and 0.25) are the credit-scoring rule
/// of thumb (below 0.1 no significant shift, 0.1–0.25 a moderate shift worth watching, above 0.25 a significant shift;
/// see N. Siddiqi, <i>Credit Risk Scorecards</i>, Wiley 2006), now common in model monitoring tools. Jensen–Shannon
/// thresholds (bits, in [0, 1]) are off unless set. A level is reached when any of its thresholds is reached.
/// </summary>
/// <param name="PsiWarning">PSI at or above which the statistic is a warning.</param>
/// <param name="PsiAlert">PSI at or above which the statistic is an alert.</param>
/// <param name="JensenShannonWarning">Jensen–Shannon divergence (bits) at or above which the statistic is a warning, or <see langword="null"/>.</param>
/// <param name="JensenShannonAlert">Jensen–Shannon divergence (bits) at or above which the statistic is an alert, or <see langword="null"/>.</param>
public sealed record DriftThresholds(double PsiWarning = 0.1, double PsiAlert = 0.25, double? JensenShannonWarning = null, double? JensenShannonAlert = null)
{
    /// <summary>PSI 0.1 warning, 0.25 alert; no Jensen–Shannon thresholds.</summary>
    public static DriftThresholds Default { get; } = new();

    internal DriftLevel LevelOf(double psi, double js)
    {
        if (psi >= PsiAlert || (JensenShannonAlert is { } ja && js >= ja))
        {
            return DriftLevel.Alert;
        }

        return psi >= PsiWarning || (JensenShannonWarning is { } jw && js >= jw) ? DriftLevel.Warning : DriftLevel.None;
    }
}

/// <summary>How far a statistic has drifted, by its <see cref="DriftThresholds"/>.</summary>
public enum DriftLevel
{
    /// <summary>Below the warning thresholds, or too few observations to tell.</summary>
    None,

    /// <summary>At or above a warning threshold.</summary>
    Warning,

    /// <summary>At or above an alert threshold.</summary>
    Alert,
}
