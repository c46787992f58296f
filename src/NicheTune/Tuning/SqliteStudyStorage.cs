using System.Collections.Immutable;
using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace NicheTune.Tuning;

/// <summary>Settings of a <see cref="SqliteStudyStorage"/>.</summary>
public sealed class SqliteStudyStorageOptions
{
    /// <summary>How often a running trial records that its worker is alive.</summary>
    /// <value>30 seconds.</value>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>A running trial whose last heartbeat is older than this is taken as dead and marked failed; several heartbeat intervals.</summary>
    /// <value>2 minutes.</value>
    public TimeSpan GracePeriod { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>How long a statement waits for another connection's write lock before failing (SQLite's busy timeout).</summary>
    /// <value>30 seconds.</value>
    public TimeSpan BusyTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Whether connections are pooled inside this process (faster); turn off to give every operation a fresh connection, as separate processes have.</summary>
    /// <value><see langword="true"/>.</value>
    public bool Pooling { get; init; } = true;

    /// <summary>The clock for start, finish and heartbeat times.</summary>
    /// <value>The system clock.</value>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}

/// <summary>
/// Keeps studies in one SQLite file: a study survives a crash and resumes, and several processes on one machine can
/// share it. Trial numbers are allocated inside a <c>BEGIN IMMEDIATE</c> transaction (the write lock is taken before the
/// next number is read), so no number is given twice; the file uses write-ahead logging (readers never block the
/// writer) and a busy timeout. Running trials send heartbeats; one whose heartbeat is older than the grace period
/// belongs to a dead worker and is marked failed by <see cref="FailStaleTrials"/>.
/// </summary>
public sealed class SqliteStudyStorage : IStudyStorage
{
    private const string Schema = """
        CREATE TABLE IF NOT EXISTS studies (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, directions TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS trials (
            id INTEGER PRIMARY KEY, study_id INTEGER NOT NULL REFERENCES studies(id), number INTEGER NOT NULL,
            state INTEGER NOT NULL, "values" TEXT, error TEXT, started_ms INTEGER NOT NULL, completed_ms INTEGER, heartbeat_ms INTEGER,
            UNIQUE (study_id, number));
        CREATE TABLE IF NOT EXISTS trial_params (
            trial_id INTEGER NOT NULL REFERENCES trials(id), name TEXT NOT NULL, distribution TEXT NOT NULL, value REAL NOT NULL,
            PRIMARY KEY (trial_id, name));
        CREATE TABLE IF NOT EXISTS trial_intermediate (
            trial_id INTEGER NOT NULL REFERENCES trials(id), step INTEGER NOT NULL, value REAL NOT NULL, PRIMARY KEY (trial_id, step));
        CREATE TABLE IF NOT EXISTS trial_attrs (
            trial_id INTEGER NOT NULL REFERENCES trials(id), key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (trial_id, key));
        """;

    private readonly string _connectionString;
    private readonly SqliteStudyStorageOptions _options;

    /// <summary>Opens (creating if needed) the study file at <paramref name="path"/>.</summary>
    /// <param name="path">The database file, e.g. <c>study.db</c>; its folder must exist.</param>
    /// <param name="options">Heartbeat, grace period, busy timeout; defaults when <see langword="null"/>.</param>
    /// <exception cref="ArgumentException"><paramref name="path"/> is empty.</exception>
    /// <exception cref="DirectoryNotFoundException">The folder of <paramref name="path"/> does not exist.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The grace period is not longer than the heartbeat interval.</exception>
    public SqliteStudyStorage(string path, SqliteStudyStorageOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        _options = options ?? new SqliteStudyStorageOptions();
        if (_options.HeartbeatInterval <= TimeSpan.Zero || _options.GracePeriod <= _options.HeartbeatInterval)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"Heartbeat interval {_options.HeartbeatInterval} and grace period {_options.GracePeriod}: the interval must be positive and the grace period longer (a few intervals).");
        }

        string full = System.IO.Path.GetFullPath(path);
        string? folder = System.IO.Path.GetDirectoryName(full);
        if (folder is not null && !Directory.Exists(folder))
        {
            throw new DirectoryNotFoundException($"The folder of the study file '{full}' does not exist; create it first.");
        }

        Path = full;
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = full,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = _options.Pooling,
            DefaultTimeout = Math.Max(1, (int)Math.Ceiling(_options.BusyTimeout.TotalSeconds)),
        }.ToString();

        using SqliteConnection connection = Open();
        Execute(connection, "PRAGMA journal_mode=WAL;");
        using SqliteTransaction transaction = connection.BeginTransaction(deferred: false);
        Execute(connection, Schema, transaction);
        transaction.Commit();
    }

    /// <summary>The database file.</summary>
    public string Path { get; }

    /// <inheritdoc/>
    public TimeSpan? HeartbeatInterval => _options.HeartbeatInterval;

    /// <inheritdoc/>
    public StudyInfo CreateStudy(string name, IReadOnlyList<StudyDirection> directions)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(directions);
        using SqliteConnection connection = Open();
        using SqliteTransaction transaction = connection.BeginTransaction(deferred: false);
        if (Find(connection, name, transaction) is not null)
        {
            throw new InvalidOperationException($"A study named '{name}' already exists in '{Path}'; load it with Study.Load, or pass loadIfExists: true.");
        }

        using SqliteCommand insert = Command(connection, "INSERT INTO studies (name, directions) VALUES ($name, $directions) RETURNING id;", transaction);
        insert.Parameters.AddWithValue("$name", name);
        insert.Parameters.AddWithValue("$directions", string.Join(",", directions));
        long id = (long)insert.ExecuteScalar()!;
        transaction.Commit();
        return new StudyInfo(id, name, [.. directions]);
    }

    /// <inheritdoc/>
    public StudyInfo? FindStudy(string name)
    {
        using SqliteConnection connection = Open();
        return Find(connection, name, null);
    }

    /// <inheritdoc/>
    public IReadOnlyList<StudyInfo> GetStudies()
    {
        using SqliteConnection connection = Open();
        using SqliteCommand command = Command(connection, "SELECT id, name, directions FROM studies ORDER BY id;");
        using SqliteDataReader reader = command.ExecuteReader();
        var studies = new List<StudyInfo>();
        while (reader.Read())
        {
            studies.Add(ReadStudy(reader));
        }

        return studies;
    }

    /// <inheritdoc/>
    public TrialSlot? CreateTrial(long studyId, int? maxTrials = null)
    {
        using SqliteConnection connection = Open();

        // A non-deferred transaction is BEGIN IMMEDIATE in Microsoft.Data.Sqlite (StorageTests checks it): the write lock is
        // taken before the highest number is read, so two processes cannot read the same one.
        using SqliteTransaction transaction = connection.BeginTransaction(deferred: false);
        using SqliteCommand next = Command(connection, "SELECT COUNT(*), COALESCE(MAX(number) + 1, 0) FROM trials WHERE study_id = $study;", transaction);
        next.Parameters.AddWithValue("$study", studyId);
        long count;
        int number;
        using (SqliteDataReader reader = next.ExecuteReader())
        {
            reader.Read();
            count = reader.GetInt64(0);
            number = reader.GetInt32(1);
        }

        if (maxTrials is { } max && count >= max)
        {
            return null;
        }

        long now = Now();
        using SqliteCommand insert = Command(connection, "INSERT INTO trials (study_id, number, state, started_ms, heartbeat_ms) VALUES ($study, $number, $state, $now, $now) RETURNING id;", transaction);
        insert.Parameters.AddWithValue("$study", studyId);
        insert.Parameters.AddWithValue("$number", number);
        insert.Parameters.AddWithValue("$state", (int)TrialState.Running);
        insert.Parameters.AddWithValue("$now", now);
        long id = (long)insert.ExecuteScalar()!;
        transaction.Commit();
        return new TrialSlot(id, number);
    }

    /// <inheritdoc/>
    public void SetTrialParameter(long trialId, string name, ParameterDistribution distribution, double internalValue)
    {
        ArgumentNullException.ThrowIfNull(distribution);
        using SqliteConnection connection = Open();
        using SqliteTransaction transaction = connection.BeginTransaction(deferred: false);
        RequireRunning(connection, trialId, transaction);
        using SqliteCommand existing = Command(connection, "SELECT distribution FROM trial_params WHERE trial_id = $trial AND name = $name;", transaction);
        existing.Parameters.AddWithValue("$trial", trialId);
        existing.Parameters.AddWithValue("$name", name);
        if (existing.ExecuteScalar() is string json && ParameterDistribution.FromJson(json) is var previous && previous != distribution)
        {
            throw new InvalidOperationException($"Trial {trialId} already has parameter '{name}' as {previous.Describe()}; it cannot become {distribution.Describe()}.");
        }

        using SqliteCommand upsert = Command(connection, "INSERT OR REPLACE INTO trial_params (trial_id, name, distribution, value) VALUES ($trial, $name, $distribution, $value);", transaction);
        upsert.Parameters.AddWithValue("$trial", trialId);
        upsert.Parameters.AddWithValue("$name", name);
        upsert.Parameters.AddWithValue("$distribution", distribution.ToJson());
        upsert.Parameters.AddWithValue("$value", internalValue);
        upsert.ExecuteNonQuery();
        transaction.Commit();
    }

    /// <inheritdoc/>
    public void SetIntermediateValue(long trialId, long step, double value)
    {
        using SqliteConnection connection = Open();
        using SqliteTransaction transaction = connection.BeginTransaction(deferred: false);
        RequireRunning(connection, trialId, transaction);
        using SqliteCommand upsert = Command(connection, "INSERT OR REPLACE INTO trial_intermediate (trial_id, step, value) VALUES ($trial, $step, $value);", transaction);
        upsert.Parameters.AddWithValue("$trial", trialId);
        upsert.Parameters.AddWithValue("$step", step);
        upsert.Parameters.AddWithValue("$value", double.IsNaN(value) ? DBNull.Value : value);
        upsert.ExecuteNonQuery();
        transaction.Commit();
    }

    /// <inheritdoc/>
    public void SetTrialAttribute(long trialId, string key, string value)
    {
        using SqliteConnection connection = Open();
        using SqliteCommand upsert = Command(connection, "INSERT OR REPLACE INTO trial_attrs (trial_id, key, value) VALUES ($trial, $key, $value);");
        upsert.Parameters.AddWithValue("$trial", trialId);
        upsert.Parameters.AddWithValue("$key", key);
        upsert.Parameters.AddWithValue("$value", value);
        upsert.ExecuteNonQuery();
    }

    /// <inheritdoc/>
    public void RecordHeartbeat(long trialId)
    {
        using SqliteConnection connection = Open();
        using SqliteCommand update = Command(connection, "UPDATE trials SET heartbeat_ms = $now WHERE id = $trial AND state = $running;");
        update.Parameters.AddWithValue("$now", Now());
        update.Parameters.AddWithValue("$trial", trialId);
        update.Parameters.AddWithValue("$running", (int)TrialState.Running);
        update.ExecuteNonQuery();
    }

    /// <inheritdoc/>
    public void FinishTrial(long trialId, TrialState state, IReadOnlyList<double> values, string? error = null)
    {
        if (state == TrialState.Running)
        {
            throw new ArgumentOutOfRangeException(nameof(state), state, "A trial finishes as Complete, Pruned or Failed.");
        }

        ArgumentNullException.ThrowIfNull(values);
        using SqliteConnection connection = Open();
        using SqliteTransaction transaction = connection.BeginTransaction(deferred: false);
        RequireRunning(connection, trialId, transaction);
        using SqliteCommand update = Command(connection, "UPDATE trials SET state = $state, \"values\" = $values, error = $error, completed_ms = $now WHERE id = $trial;", transaction);
        update.Parameters.AddWithValue("$state", (int)state);
        update.Parameters.AddWithValue("$values", JsonSerializer.Serialize(values.Select(v => v.ToString("R", CultureInfo.InvariantCulture))));
        update.Parameters.AddWithValue("$error", (object?)error ?? DBNull.Value);
        update.Parameters.AddWithValue("$now", Now());
        update.Parameters.AddWithValue("$trial", trialId);
        update.ExecuteNonQuery();
        transaction.Commit();
    }

    /// <inheritdoc/>
    public FrozenTrial GetTrial(long trialId)
    {
        using SqliteConnection connection = Open();
        using SqliteTransaction transaction = connection.BeginTransaction(deferred: true);
        return ReadTrials(connection, transaction, "t.id = $key", trialId).SingleOrDefault()
            ?? throw new KeyNotFoundException($"No trial with id {trialId} in '{Path}'.");
    }

    /// <inheritdoc/>
    public IReadOnlyList<FrozenTrial> GetTrials(long studyId)
    {
        using SqliteConnection connection = Open();

        // One read transaction: a consistent snapshot of the study across the four tables.
        using SqliteTransaction transaction = connection.BeginTransaction(deferred: true);
        return ReadTrials(connection, transaction, "t.study_id = $key", studyId);
    }

    /// <inheritdoc/>
    public IReadOnlyList<int> FailStaleTrials(long studyId)
    {
        using SqliteConnection connection = Open();
        using SqliteTransaction transaction = connection.BeginTransaction(deferred: false);
        long now = Now();
        long limit = now - (long)_options.GracePeriod.TotalMilliseconds;
        using SqliteCommand select = Command(connection, "SELECT number FROM trials WHERE study_id = $study AND state = $running AND heartbeat_ms < $limit ORDER BY number;", transaction);
        select.Parameters.AddWithValue("$study", studyId);
        select.Parameters.AddWithValue("$running", (int)TrialState.Running);
        select.Parameters.AddWithValue("$limit", limit);
        var numbers = new List<int>();
        using (SqliteDataReader reader = select.ExecuteReader())
        {
            while (reader.Read())
            {
                numbers.Add(reader.GetInt32(0));
            }
        }

        if (numbers.Count > 0)
        {
            using SqliteCommand update = Command(connection, "UPDATE trials SET state = $failed, \"values\" = '[]', error = $error, completed_ms = $now WHERE study_id = $study AND state = $running AND heartbeat_ms < $limit;", transaction);
            update.Parameters.AddWithValue("$failed", (int)TrialState.Failed);
            update.Parameters.AddWithValue("$error", $"No heartbeat for more than {_options.GracePeriod}: the worker running this trial died (process killed or crashed).");
            update.Parameters.AddWithValue("$now", now);
            update.Parameters.AddWithValue("$study", studyId);
            update.Parameters.AddWithValue("$running", (int)TrialState.Running);
            update.Parameters.AddWithValue("$limit", limit);
            update.ExecuteNonQuery();
        }

        transaction.Commit();
        return numbers;
    }

    /// <summary>Releases this process's pooled connections to the file, so it can be moved or deleted.</summary>
    public void Dispose()
    {
        using var connection = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(connection);
    }

    private static StudyInfo? Find(SqliteConnection connection, string name, SqliteTransaction? transaction)
    {
        using SqliteCommand command = Command(connection, "SELECT id, name, directions FROM studies WHERE name = $name;", transaction);
        command.Parameters.AddWithValue("$name", name);
        using SqliteDataReader reader = command.ExecuteReader();
        return reader.Read() ? ReadStudy(reader) : null;
    }

    private static StudyInfo ReadStudy(SqliteDataReader reader)
        => new(reader.GetInt64(0), reader.GetString(1), [.. reader.GetString(2).Split(',').Select(Enum.Parse<StudyDirection>)]);

    private static void RequireRunning(SqliteConnection connection, long trialId, SqliteTransaction transaction)
    {
        using SqliteCommand command = Command(connection, "SELECT number, state FROM trials WHERE id = $trial;", transaction);
        command.Parameters.AddWithValue("$trial", trialId);
        using SqliteDataReader reader = command.ExecuteReader();
        if (!reader.Read())
        {
            throw new KeyNotFoundException($"No trial with id {trialId}.");
        }

        var state = (TrialState)reader.GetInt32(1);
        if (state != TrialState.Running)
        {
            throw new InvalidOperationException($"Trial {reader.GetInt32(0)} is already {state}; it can no longer change.");
        }
    }

    private List<FrozenTrial> ReadTrials(SqliteConnection connection, SqliteTransaction transaction, string where, long key)
    {
        var parameters = new Dictionary<long, (ImmutableDictionary<string, double>.Builder Values, ImmutableDictionary<string, ParameterDistribution>.Builder Distributions)>();
        using (SqliteCommand command = Command(connection, $"SELECT p.trial_id, p.name, p.distribution, p.value FROM trial_params p JOIN trials t ON t.id = p.trial_id WHERE {where};", transaction))
        {
            command.Parameters.AddWithValue("$key", key);
            using SqliteDataReader reader = command.ExecuteReader();
            var distributions = new Dictionary<string, ParameterDistribution>();
            while (reader.Read())
            {
                long id = reader.GetInt64(0);
                if (!parameters.TryGetValue(id, out var entry))
                {
                    entry = (ImmutableDictionary.CreateBuilder<string, double>(), ImmutableDictionary.CreateBuilder<string, ParameterDistribution>());
                    parameters[id] = entry;
                }

                string json = reader.GetString(2);
                if (!distributions.TryGetValue(json, out ParameterDistribution? distribution))
                {
                    distribution = ParameterDistribution.FromJson(json);
                    distributions[json] = distribution;
                }

                entry.Values[reader.GetString(1)] = reader.GetDouble(3);
                entry.Distributions[reader.GetString(1)] = distribution;
            }
        }

        var intermediate = new Dictionary<long, ImmutableSortedDictionary<long, double>.Builder>();
        using (SqliteCommand command = Command(connection, $"SELECT i.trial_id, i.step, i.value FROM trial_intermediate i JOIN trials t ON t.id = i.trial_id WHERE {where};", transaction))
        {
            command.Parameters.AddWithValue("$key", key);
            using SqliteDataReader reader = command.ExecuteReader();
            while (reader.Read())
            {
                long id = reader.GetInt64(0);
                if (!intermediate.TryGetValue(id, out var builder))
                {
                    builder = ImmutableSortedDictionary.CreateBuilder<long, double>();
                    intermediate[id] = builder;
                }

                builder[reader.GetInt64(1)] = reader.IsDBNull(2) ? double.NaN : reader.GetDouble(2);
            }
        }

        var attributes = new Dictionary<long, ImmutableDictionary<string, string>.Builder>();
        using (SqliteCommand command = Command(connection, $"SELECT a.trial_id, a.key, a.value FROM trial_attrs a JOIN trials t ON t.id = a.trial_id WHERE {where};", transaction))
        {
            command.Parameters.AddWithValue("$key", key);
            using SqliteDataReader reader = command.ExecuteReader();
            while (reader.Read())
            {
                long id = reader.GetInt64(0);
                if (!attributes.TryGetValue(id, out var builder))
                {
                    builder = ImmutableDictionary.CreateBuilder<string, string>();
                    attributes[id] = builder;
                }

                builder[reader.GetString(1)] = reader.GetString(2);
            }
        }

        var trials = new List<FrozenTrial>();
        using (SqliteCommand command = Command(connection, $"SELECT t.id, t.number, t.state, t.\"values\", t.error, t.started_ms, t.completed_ms, t.heartbeat_ms FROM trials t WHERE {where} ORDER BY t.number;", transaction))
        {
            command.Parameters.AddWithValue("$key", key);
            using SqliteDataReader reader = command.ExecuteReader();
            while (reader.Read())
            {
                long id = reader.GetInt64(0);
                parameters.TryGetValue(id, out var p);
                trials.Add(new FrozenTrial
                {
                    Id = id,
                    Number = reader.GetInt32(1),
                    State = (TrialState)reader.GetInt32(2),
                    Values = reader.IsDBNull(3) ? [] : [.. JsonSerializer.Deserialize<string[]>(reader.GetString(3))!.Select(v => double.Parse(v, CultureInfo.InvariantCulture))],
                    Error = reader.IsDBNull(4) ? null : reader.GetString(4),
                    Started = DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(5)),
                    Completed = reader.IsDBNull(6) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(6)),
                    Heartbeat = reader.IsDBNull(7) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(7)),
                    InternalParameters = p.Values?.ToImmutable() ?? ImmutableDictionary<string, double>.Empty,
                    Distributions = p.Distributions?.ToImmutable() ?? ImmutableDictionary<string, ParameterDistribution>.Empty,
                    IntermediateValues = intermediate.TryGetValue(id, out var i) ? i.ToImmutable() : ImmutableSortedDictionary<long, double>.Empty,
                    Attributes = attributes.TryGetValue(id, out var a) ? a.ToImmutable() : ImmutableDictionary<string, string>.Empty,
                });
            }
        }

        return trials;
    }

    private long Now() => _options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds();

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        Execute(connection, $"PRAGMA busy_timeout={(long)_options.BusyTimeout.TotalMilliseconds};");
        return connection;
    }

    private static SqliteCommand Command(SqliteConnection connection, string sql, SqliteTransaction? transaction = null)
    {
        SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        return command;
    }

    private static void Execute(SqliteConnection connection, string sql, SqliteTransaction? transaction = null)
    {
        using SqliteCommand command = Command(connection, sql, transaction);
        command.ExecuteNonQuery();
    }
}
