namespace NicheTune.Tuning;

/// <summary>
/// Where studies and their trials live. Every method is one short, atomic operation, so a server database
/// (PostgreSQL: one row per trial, <c>SELECT … FOR UPDATE</c> or a sequence for trial numbers) can implement it as
/// directly as the built-in in-memory and SQLite stores. Implementations must be safe to call from several threads.
/// </summary>
public interface IStudyStorage : IDisposable
{
    /// <summary>
    /// How often a running trial's worker records a heartbeat, or <see langword="null"/> when this storage does not
    /// detect dead workers (an in-memory store dies with its process).
    /// </summary>
    TimeSpan? HeartbeatInterval { get; }

    /// <summary>Creates a study.</summary>
    /// <param name="name">A name unique in this storage.</param>
    /// <param name="directions">One direction per objective.</param>
    /// <returns>The study.</returns>
    /// <exception cref="InvalidOperationException">A study with this name exists.</exception>
    StudyInfo CreateStudy(string name, IReadOnlyList<StudyDirection> directions);

    /// <summary>Finds a study by name.</summary>
    /// <param name="name">The name.</param>
    /// <returns>The study, or <see langword="null"/>.</returns>
    StudyInfo? FindStudy(string name);

    /// <summary>Every study in this storage.</summary>
    /// <returns>The studies, by id.</returns>
    IReadOnlyList<StudyInfo> GetStudies();

    /// <summary>
    /// Creates a running trial with the next free number, atomically: two workers never get the same number.
    /// </summary>
    /// <param name="studyId">The study.</param>
    /// <param name="maxTrials">Create nothing when the study already has this many trials (a grid's size), or <see langword="null"/> for no limit.</param>
    /// <returns>The new trial, or <see langword="null"/> when <paramref name="maxTrials"/> was reached.</returns>
    TrialSlot? CreateTrial(long studyId, int? maxTrials = null);

    /// <summary>Records a parameter of a running trial.</summary>
    /// <param name="trialId">The trial.</param>
    /// <param name="name">The parameter's name.</param>
    /// <param name="distribution">Its distribution.</param>
    /// <param name="internalValue">Its value in internal form.</param>
    /// <exception cref="InvalidOperationException">The trial is finished, or the parameter was recorded with another distribution.</exception>
    void SetTrialParameter(long trialId, string name, ParameterDistribution distribution, double internalValue);

    /// <summary>Records (or replaces) an intermediate value of a running trial.</summary>
    /// <param name="trialId">The trial.</param>
    /// <param name="step">The step (epoch, optimizer step, resource used).</param>
    /// <param name="value">The value.</param>
    /// <exception cref="InvalidOperationException">The trial is finished.</exception>
    void SetIntermediateValue(long trialId, long step, double value);

    /// <summary>Records (or replaces) a free-form attribute of a trial.</summary>
    /// <param name="trialId">The trial.</param>
    /// <param name="key">The key.</param>
    /// <param name="value">The value.</param>
    void SetTrialAttribute(long trialId, string key, string value);

    /// <summary>Records that the trial's worker is alive now.</summary>
    /// <param name="trialId">The trial.</param>
    void RecordHeartbeat(long trialId);

    /// <summary>Finishes a running trial.</summary>
    /// <param name="trialId">The trial.</param>
    /// <param name="state"><see cref="TrialState.Complete"/>, <see cref="TrialState.Pruned"/> or <see cref="TrialState.Failed"/>.</param>
    /// <param name="values">The objective values (complete), the last intermediate value (pruned) or empty.</param>
    /// <param name="error">Why a failed trial failed, or <see langword="null"/>.</param>
    /// <exception cref="InvalidOperationException">The trial is already finished (for example, marked failed after its heartbeat stopped).</exception>
    void FinishTrial(long trialId, TrialState state, IReadOnlyList<double> values, string? error = null);

    /// <summary>One trial.</summary>
    /// <param name="trialId">The trial.</param>
    /// <returns>Its snapshot.</returns>
    /// <exception cref="KeyNotFoundException">No such trial.</exception>
    FrozenTrial GetTrial(long trialId);

    /// <summary>Every trial of a study, by number.</summary>
    /// <param name="studyId">The study.</param>
    /// <returns>The snapshots.</returns>
    IReadOnlyList<FrozenTrial> GetTrials(long studyId);

    /// <summary>
    /// Marks as failed every running trial of the study whose heartbeat is older than the storage's grace period
    /// (its worker died); does nothing for storages without heartbeats.
    /// </summary>
    /// <param name="studyId">The study.</param>
    /// <returns>The numbers of the trials marked failed.</returns>
    IReadOnlyList<int> FailStaleTrials(long studyId);
}
