using System.Collections.Immutable;
using System.Globalization;
using System.Text;

namespace NicheTune.Monitoring;

/// <summary>One statistic of the window compared with the reference.</summary>
/// <param name="Statistic">The statistic.</param>
/// <param name="WindowCount">Observations in the window that measured it.</param>
/// <param name="PopulationStabilityIndex">PSI between reference and window bins (natural log, empty bins as epsilon); <see cref="double.NaN"/> when the window has none.</param>
/// <param name="KullbackLeibler">KL(window‖reference) in nats; <see cref="double.NaN"/> when the window has none.</param>
/// <param name="JensenShannon">Jensen–Shannon divergence in bits; <see cref="double.NaN"/> when the window has none.</param>
/// <param name="Level">The level by the statistic's thresholds; <see cref="DriftLevel.None"/> below the minimum window count.</param>
/// <param name="ReferenceProportions">The reference's share per bin.</param>
/// <param name="WindowProportions">The window's share per bin (zeros when empty).</param>
public sealed record StatisticDrift(
    DriftStatistic Statistic,
    long WindowCount,
    double PopulationStabilityIndex,
    double KullbackLeibler,
    double JensenShannon,
    DriftLevel Level,
    ImmutableArray<double> ReferenceProportions,
    ImmutableArray<double> WindowProportions);

/// <summary>A comparison of a monitor's window with its reference, statistic by statistic.</summary>
/// <param name="Monitor">The monitor's name.</param>
/// <param name="Timestamp">When the comparison was made (the monitor's clock).</param>
/// <param name="WindowCount">Observations in the window.</param>
/// <param name="Statistics">One entry per statistic of the reference.</param>
public sealed record DriftReport(string Monitor, DateTimeOffset Timestamp, long WindowCount, ImmutableArray<StatisticDrift> Statistics)
{
    /// <summary>The highest level of any statistic.</summary>
    public DriftLevel Level => Statistics.IsDefaultOrEmpty ? DriftLevel.None : Statistics.Max(s => s.Level);

    /// <summary>The entry of one statistic.</summary>
    /// <param name="statistic">The statistic.</param>
    /// <returns>Its drift.</returns>
    /// <exception cref="ArgumentException">The reference has no bins for <paramref name="statistic"/>.</exception>
    public StatisticDrift this[DriftStatistic statistic] => Statistics.FirstOrDefault(s => s.Statistic == statistic)
        ?? throw new ArgumentException($"The report has no {statistic}; it covers {string.Join(", ", Statistics.Select(s => s.Statistic))}.", nameof(statistic));

    /// <summary>A Markdown table of every statistic: window count, PSI, KL, JS and level.</summary>
    /// <returns>The Markdown text.</returns>
    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        sb.Append("## Drift of '").Append(Monitor).Append("' (").Append(WindowCount.ToString("N0", CultureInfo.InvariantCulture)).AppendLine(" observations)").AppendLine();
        sb.AppendLine("| statistic | window | PSI | KL (nats) | JS (bits) | level |").AppendLine("| --- | ---: | ---: | ---: | ---: | --- |");
        foreach (StatisticDrift s in Statistics)
        {
            sb.Append("| ").Append(s.Statistic).Append(" | ").Append(s.WindowCount.ToString(CultureInfo.InvariantCulture))
                .Append(" | ").Append(s.PopulationStabilityIndex.ToString("F4", CultureInfo.InvariantCulture))
                .Append(" | ").Append(s.KullbackLeibler.ToString("F4", CultureInfo.InvariantCulture))
                .Append(" | ").Append(s.JensenShannon.ToString("F4", CultureInfo.InvariantCulture))
                .Append(" | ").Append(s.Level).AppendLine(" |");
        }

        return sb.ToString();
    }
}

/// <summary>A statistic whose drift rose to a warning or an alert (raised once per rise, not on every evaluation).</summary>
/// <param name="Monitor">The monitor's name.</param>
/// <param name="Statistic">The statistic.</param>
/// <param name="Level">The new level.</param>
/// <param name="PreviousLevel">The level at the previous evaluation.</param>
/// <param name="Drift">The numbers behind it.</param>
/// <param name="Timestamp">When it was detected.</param>
public sealed record DriftAlert(string Monitor, DriftStatistic Statistic, DriftLevel Level, DriftLevel PreviousLevel, StatisticDrift Drift, DateTimeOffset Timestamp);
