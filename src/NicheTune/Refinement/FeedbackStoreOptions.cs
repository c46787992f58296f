using System.Globalization;
using NicheTune.Deployment;

namespace NicheTune.Refinement;

/// <summary>Settings of a <see cref="FeedbackStore"/>.</summary>
public sealed class FeedbackStoreOptions
{
    /// <summary>
    /// Decides, for every request a served model answers, whether to keep it: returns the reason to keep it, or
    /// <see langword="null"/> to let it pass. It runs on the request's path, so it must be cheap and thread-safe;
    /// <see cref="FeedbackFilters"/> has the usual ones.
    /// </summary>
    /// <value><see cref="FeedbackFilters.LowConfidence"/> with threshold 0.5: classifications whose top probability is below one half.</value>
    public Func<PredictionRecord, string?> Filter { get; init; } = FeedbackFilters.LowConfidence(0.5);

    /// <summary>Records written per transaction by the background writer; the writer also wakes when this many are waiting.</summary>
    /// <value>64.</value>
    public int BatchSize { get; init; } = 64;

    /// <summary>The longest a kept record waits in memory before the background writer stores it.</summary>
    /// <value>1 second.</value>
    public TimeSpan FlushInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Kept records that may wait in memory; beyond it a new one is dropped (and counted in
    /// <see cref="FeedbackStatistics.Dropped"/>) rather than slowing the request or growing memory without bound.
    /// </summary>
    /// <value>10,000.</value>
    public int Capacity { get; init; } = 10_000;

    /// <summary>How long a statement waits for another connection's write lock before failing (SQLite's busy timeout).</summary>
    /// <value>30 seconds.</value>
    public TimeSpan BusyTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Whether connections are pooled inside this process (faster); turn off to give every operation a fresh connection, as separate processes have.</summary>
    /// <value><see langword="true"/>.</value>
    public bool Pooling { get; init; } = true;

    /// <summary>The clock for label times.</summary>
    /// <value>The system clock.</value>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    internal void Validate()
    {
        var problems = new List<string>();
        if (Filter is null)
        {
            problems.Add("Filter is null; pass a filter such as FeedbackFilters.LowConfidence(0.5) or FeedbackFilters.All.");
        }

        if (BatchSize < 1)
        {
            problems.Add(string.Create(CultureInfo.InvariantCulture, $"BatchSize is {BatchSize}; use at least 1 (64 is usual)."));
        }

        if (FlushInterval <= TimeSpan.Zero)
        {
            problems.Add($"FlushInterval is {FlushInterval}; use a positive interval such as 1 second.");
        }

        if (Capacity < BatchSize)
        {
            problems.Add(string.Create(CultureInfo.InvariantCulture, $"Capacity is {Capacity} but BatchSize is {BatchSize}; the buffer must hold at least one batch."));
        }

        if (BusyTimeout < TimeSpan.Zero)
        {
            problems.Add($"BusyTimeout is {BusyTimeout}; use zero or a positive time.");
        }

        if (TimeProvider is null)
        {
            problems.Add("TimeProvider is null; use TimeProvider.System.");
        }

        if (problems.Count > 0)
        {
            throw new ArgumentException("Invalid feedback store options: " + string.Join(" ", problems), "options");
        }
    }
}

/// <summary>Filters that choose which production requests a <see cref="FeedbackStore"/> keeps (<see cref="FeedbackStoreOptions.Filter"/>).</summary>
public static class FeedbackFilters
{
    /// <summary>Keeps every request; reason <c>"observed"</c>.</summary>
    /// <value>A filter that never returns <see langword="null"/>.</value>
    public static Func<PredictionRecord, string?> All { get; } = _ => "observed";

    /// <summary>Keeps no request: the store then only holds what is recorded by hand.</summary>
    /// <value>A filter that always returns <see langword="null"/>.</value>
    public static Func<PredictionRecord, string?> None { get; } = _ => null;

    /// <summary>
    /// Keeps classifications whose most probable class has probability below <paramref name="threshold"/>: the inputs
    /// the model is least sure of, the ones most worth a label. Reason: <c>"low confidence 0.41"</c>.
    /// </summary>
    /// <param name="threshold">In (0, 1]; e.g. 0.5.</param>
    /// <returns>The filter.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="threshold"/> is outside (0, 1].</exception>
    public static Func<PredictionRecord, string?> LowConfidence(double threshold)
    {
        if (!(threshold > 0 && threshold <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(threshold), threshold, "A confidence threshold is a probability in (0, 1], e.g. 0.5.");
        }

        return record =>
        {
            if (record.Kind != PredictionKind.Classify || record.Probabilities.IsDefaultOrEmpty)
            {
                return null;
            }

            float top = 0;
            foreach (float p in record.Probabilities.AsSpan())
            {
                top = Math.Max(top, p);
            }

            return top < threshold ? string.Create(CultureInfo.InvariantCulture, $"low confidence {top:F2}") : null;
        };
    }

    /// <summary>Keeps a request when any of <paramref name="filters"/> keeps it, with the first one's reason.</summary>
    /// <param name="filters">The filters, tried in order.</param>
    /// <returns>The combined filter.</returns>
    /// <exception cref="ArgumentException">No filter was given, or one is <see langword="null"/>.</exception>
    public static Func<PredictionRecord, string?> Any(params Func<PredictionRecord, string?>[] filters)
    {
        ArgumentNullException.ThrowIfNull(filters);
        if (filters.Length == 0 || Array.IndexOf(filters, null) >= 0)
        {
            throw new ArgumentException($"Give one or more non-null filters; got {filters.Length} with {filters.Count(f => f is null)} null.", nameof(filters));
        }

        Func<PredictionRecord, string?>[] copy = [.. filters];
        return record =>
        {
            foreach (Func<PredictionRecord, string?> filter in copy)
            {
                if (filter(record) is { } reason)
                {
                    return reason;
                }
            }

            return null;
        };
    }
}
