using System.Collections.Immutable;

namespace NicheTune.Tuning;

/// <summary>Whether an objective is minimised or maximised.</summary>
public enum StudyDirection
{
    /// <summary>Lower is better (loss, perplexity).</summary>
    Minimize,

    /// <summary>Higher is better (accuracy, F1).</summary>
    Maximize,
}

/// <summary>Where a trial is in its life.</summary>
public enum TrialState
{
    /// <summary>The objective is being evaluated (or its worker died and the storage has not noticed yet).</summary>
    Running,

    /// <summary>The objective returned its value(s).</summary>
    Complete,

    /// <summary>A pruner stopped the trial early; its value is the last reported intermediate value.</summary>
    Pruned,

    /// <summary>The objective threw, returned a non-finite value, or its worker stopped sending heartbeats.</summary>
    Failed,
}

/// <summary>A study as a storage knows it.</summary>
/// <param name="Id">The storage's key.</param>
/// <param name="Name">The unique name.</param>
/// <param name="Directions">One direction per objective.</param>
public sealed record StudyInfo(long Id, string Name, ImmutableArray<StudyDirection> Directions);

/// <summary>A trial just created by a storage: its key and its number in the study (0, 1, 2, … with no number given twice).</summary>
/// <param name="Id">The storage's key.</param>
/// <param name="Number">The trial's number within its study.</param>
public readonly record struct TrialSlot(long Id, int Number);

/// <summary>An immutable snapshot of a trial as stored: parameters, intermediate values, final values and state.</summary>
public sealed record FrozenTrial
{
    /// <summary>The storage's key.</summary>
    public required long Id { get; init; }

    /// <summary>The trial's number within its study, from 0.</summary>
    public required int Number { get; init; }

    /// <summary>The trial's state.</summary>
    public required TrialState State { get; init; }

    /// <summary>The objective values (one per direction) of a complete trial; the last intermediate value of a pruned one; otherwise empty.</summary>
    public ImmutableArray<double> Values { get; init; } = [];

    /// <summary>The single objective value, or <see langword="null"/> when there is none or the study has several objectives.</summary>
    public double? Value => Values.Length == 1 ? Values[0] : null;

    /// <summary>Parameter values in internal form (choice indices for categorical parameters).</summary>
    public ImmutableDictionary<string, double> InternalParameters { get; init; } = ImmutableDictionary<string, double>.Empty;

    /// <summary>The distribution each parameter was drawn from.</summary>
    public ImmutableDictionary<string, ParameterDistribution> Distributions { get; init; } = ImmutableDictionary<string, ParameterDistribution>.Empty;

    /// <summary>Intermediate values reported with <see cref="Trial.Report"/>, by step.</summary>
    public ImmutableSortedDictionary<long, double> IntermediateValues { get; init; } = ImmutableSortedDictionary<long, double>.Empty;

    /// <summary>Free-form attributes (pruners keep their rung values here).</summary>
    public ImmutableDictionary<string, string> Attributes { get; init; } = ImmutableDictionary<string, string>.Empty;

    /// <summary>When the trial started (UTC).</summary>
    public DateTimeOffset Started { get; init; }

    /// <summary>When the trial finished, or <see langword="null"/> while running.</summary>
    public DateTimeOffset? Completed { get; init; }

    /// <summary>The worker's last heartbeat, or <see langword="null"/> when the storage does not use heartbeats.</summary>
    public DateTimeOffset? Heartbeat { get; init; }

    /// <summary>Why a failed trial failed (the exception's text), or <see langword="null"/>.</summary>
    public string? Error { get; init; }

    /// <summary>Wall time from start to finish, or <see langword="null"/> while running.</summary>
    public TimeSpan? Duration => Completed - Started;

    /// <summary>The parameters as the objective saw them: <see cref="double"/>, <see cref="long"/> or the choice's text.</summary>
    public IReadOnlyDictionary<string, object> Parameters
        => InternalParameters.ToDictionary(p => p.Key, p => Distributions[p.Key].ToExternal(p.Value));

    /// <summary>The last reported intermediate value and its step, or <see langword="null"/> when none was reported.</summary>
    public (long Step, double Value)? LastIntermediate
        => IntermediateValues.IsEmpty ? null : (IntermediateValues.Keys.Last(), IntermediateValues.Values.Last());
}
