using System.Collections.Immutable;

namespace NicheTune.Tuning;

/// <summary>Keeps studies in this process's memory: fast, shared by every worker thread, gone when the process ends.</summary>
public sealed class InMemoryStudyStorage : IStudyStorage
{
    private readonly object _gate = new();
    private readonly List<StudyInfo> _studies = [];
    private readonly List<(long StudyId, FrozenTrial Trial)> _trials = [];
    private readonly TimeProvider _time;

    /// <summary>Creates an empty storage.</summary>
    /// <param name="timeProvider">The clock for start and finish times; the system clock by default.</param>
    public InMemoryStudyStorage(TimeProvider? timeProvider = null)
    {
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <inheritdoc/>
    public TimeSpan? HeartbeatInterval => null;

    /// <inheritdoc/>
    public StudyInfo CreateStudy(string name, IReadOnlyList<StudyDirection> directions)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(directions);
        lock (_gate)
        {
            if (_studies.Any(s => s.Name == name))
            {
                throw new InvalidOperationException($"A study named '{name}' already exists in this storage; load it with Study.Load, or pass loadIfExists: true.");
            }

            var study = new StudyInfo(_studies.Count + 1, name, [.. directions]);
            _studies.Add(study);
            return study;
        }
    }

    /// <inheritdoc/>
    public StudyInfo? FindStudy(string name)
    {
        lock (_gate)
        {
            return _studies.FirstOrDefault(s => s.Name == name);
        }
    }

    /// <inheritdoc/>
    public IReadOnlyList<StudyInfo> GetStudies()
    {
        lock (_gate)
        {
            return [.. _studies];
        }
    }

    /// <inheritdoc/>
    public TrialSlot? CreateTrial(long studyId, int? maxTrials = null)
    {
        lock (_gate)
        {
            int count = _trials.Count(t => t.StudyId == studyId);
            if (maxTrials is { } max && count >= max)
            {
                return null;
            }

            var trial = new FrozenTrial { Id = _trials.Count + 1, Number = count, State = TrialState.Running, Started = _time.GetUtcNow() };
            _trials.Add((studyId, trial));
            return new TrialSlot(trial.Id, trial.Number);
        }
    }

    /// <inheritdoc/>
    public void SetTrialParameter(long trialId, string name, ParameterDistribution distribution, double internalValue)
        => Update(trialId, requireRunning: true, t =>
        {
            if (t.Distributions.TryGetValue(name, out ParameterDistribution? existing) && existing != distribution)
            {
                throw new InvalidOperationException($"Trial {t.Number} already has parameter '{name}' as {existing.Describe()}; it cannot become {distribution.Describe()}.");
            }

            return t with { InternalParameters = t.InternalParameters.SetItem(name, internalValue), Distributions = t.Distributions.SetItem(name, distribution) };
        });

    /// <inheritdoc/>
    public void SetIntermediateValue(long trialId, long step, double value)
        => Update(trialId, requireRunning: true, t => t with { IntermediateValues = t.IntermediateValues.SetItem(step, value) });

    /// <inheritdoc/>
    public void SetTrialAttribute(long trialId, string key, string value)
        => Update(trialId, requireRunning: false, t => t with { Attributes = t.Attributes.SetItem(key, value) });

    /// <inheritdoc/>
    public void RecordHeartbeat(long trialId)
        => Update(trialId, requireRunning: false, t => t with { Heartbeat = _time.GetUtcNow() });

    /// <inheritdoc/>
    public void FinishTrial(long trialId, TrialState state, IReadOnlyList<double> values, string? error = null)
    {
        if (state == TrialState.Running)
        {
            throw new ArgumentOutOfRangeException(nameof(state), state, "A trial finishes as Complete, Pruned or Failed.");
        }

        Update(trialId, requireRunning: true, t => t with { State = state, Values = [.. values], Error = error, Completed = _time.GetUtcNow() });
    }

    /// <inheritdoc/>
    public FrozenTrial GetTrial(long trialId)
    {
        lock (_gate)
        {
            return Index(trialId) is int i and >= 0 ? _trials[i].Trial : throw new KeyNotFoundException($"No trial with id {trialId} in this storage.");
        }
    }

    /// <inheritdoc/>
    public IReadOnlyList<FrozenTrial> GetTrials(long studyId)
    {
        lock (_gate)
        {
            return [.. _trials.Where(t => t.StudyId == studyId).Select(t => t.Trial)];
        }
    }

    /// <inheritdoc/>
    public IReadOnlyList<int> FailStaleTrials(long studyId) => [];

    /// <inheritdoc/>
    public void Dispose()
    {
    }

    private int Index(long trialId) => trialId >= 1 && trialId <= _trials.Count ? (int)trialId - 1 : -1;

    private void Update(long trialId, bool requireRunning, Func<FrozenTrial, FrozenTrial> change)
    {
        lock (_gate)
        {
            int i = Index(trialId);
            if (i < 0)
            {
                throw new KeyNotFoundException($"No trial with id {trialId} in this storage.");
            }

            (long studyId, FrozenTrial trial) = _trials[i];
            if (requireRunning && trial.State != TrialState.Running)
            {
                throw new InvalidOperationException($"Trial {trial.Number} is already {trial.State}; it can no longer change.");
            }

            _trials[i] = (studyId, change(trial));
        }
    }
}
