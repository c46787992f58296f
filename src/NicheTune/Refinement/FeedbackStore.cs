using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using NicheTune.Augmentation;
using NicheTune.Deployment;

namespace NicheTune.Refinement;

/// <summary>
/// Keeps the production inputs worth learning from in one SQLite file: those the model was unsure of (recorded as an
/// <see cref="IPredictionObserver"/> of a served model, through <see cref="FeedbackStoreOptions.Filter"/>), those a monitor
/// or a user flags, and user corrections, each with the model's prediction and, once someone gives it, the right label.
/// The labelled items are the next round's training data (<see cref="ExportLabelled"/>).
/// </summary>
/// <remarks>
/// <para>
/// On the request path <see cref="Observe"/> only runs the filter and queues the record; a background writer stores the
/// queue in batches, one transaction each, at least every <see cref="FeedbackStoreOptions.FlushInterval"/>. When the writer
/// cannot keep up the queue stops at <see cref="FeedbackStoreOptions.Capacity"/> and further records are dropped and
/// counted, never blocking a request. <see cref="Flush"/> writes what is queued now; <see cref="Dispose"/> flushes too.
/// </para>
/// <para>
/// Storage follows <c>SqliteStudyStorage</c>: write-ahead logging (readers never block the writer), a busy timeout,
/// every write in a <c>BEGIN IMMEDIATE</c> transaction, so several stores, threads or processes can share one file. The
/// file carries SQLite's <c>application_id</c> and a schema version (<c>user_version</c>): a file of another program or
/// of a newer, unknown schema is refused with an error saying so, never altered.
/// </para>
/// </remarks>
public sealed class FeedbackStore : IPredictionObserver, IDisposable
{
    /// <summary>The schema version this release reads and writes (SQLite <c>user_version</c>).</summary>
    public const int SchemaVersion = 1;

    // "NTFB": tells a feedback store from any other SQLite file (SQLite's application_id header field).
    private const int ApplicationId = 0x4E544642;

    private const string Schema = """
        CREATE TABLE feedback (
            id INTEGER PRIMARY KEY, timestamp_ms INTEGER NOT NULL, kind INTEGER NOT NULL, input TEXT NOT NULL,
            predicted_label TEXT, probabilities BLOB, embedding BLOB, output TEXT, reason TEXT NOT NULL,
            flagged INTEGER NOT NULL DEFAULT 0, label TEXT, label_source TEXT, labelled_ms INTEGER);
        CREATE INDEX feedback_label ON feedback (label);
        """;

    private const string Columns = "id, timestamp_ms, kind, input, predicted_label, probabilities, embedding, output, reason, flagged, label, label_source, labelled_ms";

    private readonly string _connectionString;
    private readonly FeedbackStoreOptions _options;
    private readonly ConcurrentQueue<(PredictionRecord Record, string Reason)> _queue = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly object _writeLock = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _writer;
    private long _queued;
    private long _observed;
    private long _matched;
    private long _written;
    private long _dropped;
    private long _failed;
    private string? _lastError;
    private int _disposed;

    /// <summary>Opens (creating if needed) the feedback file at <paramref name="path"/> and starts its background writer.</summary>
    /// <param name="path">The database file, e.g. <c>feedback.db</c>; its folder must exist.</param>
    /// <param name="options">Filter, batching and storage settings; defaults when <see langword="null"/>.</param>
    /// <exception cref="ArgumentException"><paramref name="path"/> is empty, or the options are invalid (every problem is listed).</exception>
    /// <exception cref="DirectoryNotFoundException">The folder of <paramref name="path"/> does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a SQLite database, belongs to another program, or has a schema version this release does not know.</exception>
    public FeedbackStore(string path, FeedbackStoreOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        _options = options ?? new FeedbackStoreOptions();
        _options.Validate();
        string full = System.IO.Path.GetFullPath(path);
        string? folder = System.IO.Path.GetDirectoryName(full);
        if (folder is not null && !Directory.Exists(folder))
        {
            throw new DirectoryNotFoundException($"The folder of the feedback file '{full}' does not exist; create it first.");
        }

        Path = full;
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = full,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = _options.Pooling,
            DefaultTimeout = Math.Max(1, (int)Math.Ceiling(_options.BusyTimeout.TotalSeconds)),
        }.ToString();

        try
        {
            Initialize();
        }
        catch (SqliteException e) when (e.SqliteErrorCode is 26 or 11)
        {
            // SQLITE_NOTADB (26) and SQLITE_CORRUPT (11): the bytes are not a SQLite database we can read.
            SqliteConnection.ClearPool(new SqliteConnection(_connectionString));
            throw new InvalidDataException($"'{full}' is not a SQLite database ({e.Message}); give the feedback store a new file or an existing feedback file.", e);
        }
        catch
        {
            SqliteConnection.ClearPool(new SqliteConnection(_connectionString));
            throw;
        }

        _writer = Task.Run(WriteInBackgroundAsync);
    }

    /// <summary>The database file.</summary>
    public string Path { get; }

    /// <summary>
    /// Runs the filter on one answered request and, when it matches, queues the record for the background writer. Never
    /// blocks and never throws on the request path: a full queue or a closed store drops the record and counts it.
    /// </summary>
    /// <param name="record">The request and its answer.</param>
    public void Observe(PredictionRecord record)
    {
        if (record is null)
        {
            return;
        }

        Interlocked.Increment(ref _observed);
        string? reason;
        try
        {
            reason = _options.Filter(record);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A faulty filter must not fail the request; it shows up in the statistics instead.
            Interlocked.Increment(ref _failed);
            _lastError = $"The feedback filter threw {e.GetType().Name}: {e.Message}";
            return;
        }

        if (reason is null)
        {
            return;
        }

        Interlocked.Increment(ref _matched);
        if (Volatile.Read(ref _disposed) != 0)
        {
            Interlocked.Increment(ref _dropped);
            return;
        }

        if (Interlocked.Increment(ref _queued) > _options.Capacity)
        {
            Interlocked.Decrement(ref _queued);
            Interlocked.Increment(ref _dropped);
            return;
        }

        _queue.Enqueue((record, reason));
        if (_queue.Count >= _options.BatchSize && _wake.CurrentCount == 0)
        {
            try
            {
                _wake.Release();
            }
            catch (ObjectDisposedException)
            {
                // The store closed between the check above and here; the record stays unwritten, as after Dispose.
            }
        }
    }

    /// <summary>Stores one request now (not through the queue), e.g. one a monitor singled out or a user reported.</summary>
    /// <param name="record">The request and its answer.</param>
    /// <param name="reason">Why it is kept, e.g. <c>"user report"</c>.</param>
    /// <returns>The item's identifier.</returns>
    /// <exception cref="ArgumentException"><paramref name="reason"/> is empty.</exception>
    /// <exception cref="ObjectDisposedException">The store was disposed.</exception>
    public long Record(PredictionRecord record, string reason) => Insert(record, reason, flagged: false);

    /// <summary>Stores one request now, flagged as suspect (by a drift monitor, an out-of-distribution check or a user).</summary>
    /// <param name="record">The request and its answer.</param>
    /// <param name="reason">Why it is suspect, e.g. <c>"drift: unknown-token share 0.31"</c>.</param>
    /// <returns>The item's identifier.</returns>
    /// <exception cref="ArgumentException"><paramref name="reason"/> is empty.</exception>
    /// <exception cref="ObjectDisposedException">The store was disposed.</exception>
    public long Flag(PredictionRecord record, string reason) => Insert(record, reason, flagged: true);

    /// <summary>Flags an item already stored; its reason becomes <paramref name="reason"/>.</summary>
    /// <param name="id">The item's identifier.</param>
    /// <param name="reason">Why it is suspect.</param>
    /// <exception cref="ArgumentException"><paramref name="reason"/> is empty.</exception>
    /// <exception cref="KeyNotFoundException">No item has this identifier.</exception>
    /// <exception cref="ObjectDisposedException">The store was disposed.</exception>
    public void Flag(long id, string reason)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        ThrowIfDisposed();
        using SqliteConnection connection = Open();
        using SqliteCommand update = Command(connection, "UPDATE feedback SET flagged = 1, reason = $reason WHERE id = $id;");
        update.Parameters.AddWithValue("$reason", reason);
        update.Parameters.AddWithValue("$id", id);
        if (update.ExecuteNonQuery() == 0)
        {
            throw new KeyNotFoundException($"No feedback item with id {id} in '{Path}'.");
        }
    }

    /// <summary>Gives an item its correct label (a later label replaces an earlier one).</summary>
    /// <param name="id">The item's identifier.</param>
    /// <param name="label">The correct label.</param>
    /// <param name="source">Who or what gave it, e.g. <c>"annotator:ana"</c> or <c>"user-correction"</c>.</param>
    /// <exception cref="ArgumentException"><paramref name="label"/> or <paramref name="source"/> is empty.</exception>
    /// <exception cref="KeyNotFoundException">No item has this identifier.</exception>
    /// <exception cref="ObjectDisposedException">The store was disposed.</exception>
    public void AddLabel(long id, string label, string source)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(label);
        ArgumentException.ThrowIfNullOrWhiteSpace(source);
        ThrowIfDisposed();
        using SqliteConnection connection = Open();
        using SqliteCommand update = Command(connection, "UPDATE feedback SET label = $label, label_source = $source, labelled_ms = $now WHERE id = $id;");
        update.Parameters.AddWithValue("$label", label);
        update.Parameters.AddWithValue("$source", source);
        update.Parameters.AddWithValue("$now", _options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds());
        update.Parameters.AddWithValue("$id", id);
        if (update.ExecuteNonQuery() == 0)
        {
            throw new KeyNotFoundException($"No feedback item with id {id} in '{Path}'; label only items the store returned.");
        }
    }

    /// <summary>One item.</summary>
    /// <param name="id">The item's identifier.</param>
    /// <returns>The item.</returns>
    /// <exception cref="KeyNotFoundException">No item has this identifier.</exception>
    /// <exception cref="ObjectDisposedException">The store was disposed.</exception>
    public FeedbackItem Get(long id)
        => Query("WHERE id = $id", ("$id", id)).SingleOrDefault() ?? throw new KeyNotFoundException($"No feedback item with id {id} in '{Path}'.");

    /// <summary>Items still waiting for a label, oldest first: the pool to choose the next labels from (see <see cref="UncertaintySampler"/>).</summary>
    /// <param name="limit">At most this many; at least 1.</param>
    /// <returns>The items.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limit"/> is below 1.</exception>
    /// <exception cref="ObjectDisposedException">The store was disposed.</exception>
    public IReadOnlyList<FeedbackItem> GetUnlabelled(int limit = int.MaxValue)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        return Query("WHERE label IS NULL ORDER BY id LIMIT $limit", ("$limit", limit));
    }

    /// <summary>Items with a label, oldest first.</summary>
    /// <returns>The items.</returns>
    /// <exception cref="ObjectDisposedException">The store was disposed.</exception>
    public IReadOnlyList<FeedbackItem> GetLabelled() => Query("WHERE label IS NOT NULL ORDER BY id");

    /// <summary>Items flagged as suspect, labelled or not, oldest first.</summary>
    /// <returns>The items.</returns>
    /// <exception cref="ObjectDisposedException">The store was disposed.</exception>
    public IReadOnlyList<FeedbackItem> GetFlagged() => Query("WHERE flagged = 1 ORDER BY id");

    /// <summary>The labelled items as classification examples (input text, label), oldest first: new training data.</summary>
    /// <returns>The examples.</returns>
    /// <exception cref="ObjectDisposedException">The store was disposed.</exception>
    public List<LabeledText> ExportLabelled() => [.. GetLabelled().Select(i => new LabeledText(i.Input, i.Label!))];

    /// <summary>
    /// Writes the labelled items as JSON lines (<c>{"text": …, "label": …}</c>, the layout <c>TextDatasets.ReadJsonl</c> reads
    /// with <c>LabelField = "label"</c>), atomically: the file appears complete or not at all.
    /// </summary>
    /// <param name="path">The file to write; its folder must exist.</param>
    /// <returns>The number of examples written.</returns>
    /// <exception cref="ArgumentException"><paramref name="path"/> is empty.</exception>
    /// <exception cref="DirectoryNotFoundException">The folder of <paramref name="path"/> does not exist.</exception>
    /// <exception cref="ObjectDisposedException">The store was disposed.</exception>
    public int ExportLabelledJsonl(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string full = System.IO.Path.GetFullPath(path);
        string folder = System.IO.Path.GetDirectoryName(full)!;
        if (!Directory.Exists(folder))
        {
            throw new DirectoryNotFoundException($"The folder of '{full}' does not exist; create it first.");
        }

        List<LabeledText> examples = ExportLabelled();
        AtomicFile.Write(full, stream =>
        {
            using var writer = new StreamWriter(stream, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), leaveOpen: true);
            foreach (LabeledText example in examples)
            {
                writer.Write(JsonSerializer.Serialize(new Dictionary<string, string> { ["text"] = example.Text, ["label"] = example.Label }));
                writer.Write('\n');
            }
        });

        return examples.Count;
    }

    /// <summary>Counts of the file's items and of this instance's request-path buffer.</summary>
    /// <returns>The statistics.</returns>
    /// <exception cref="ObjectDisposedException">The store was disposed.</exception>
    public FeedbackStatistics GetStatistics()
    {
        ThrowIfDisposed();
        using SqliteConnection connection = Open();
        using SqliteCommand count = Command(connection, "SELECT COUNT(*), COUNT(label), COALESCE(SUM(flagged), 0) FROM feedback;");
        using SqliteDataReader reader = count.ExecuteReader();
        reader.Read();
        return new FeedbackStatistics(
            reader.GetInt64(0),
            reader.GetInt64(1),
            reader.GetInt64(2),
            Interlocked.Read(ref _observed),
            Interlocked.Read(ref _matched),
            Interlocked.Read(ref _written),
            Interlocked.Read(ref _dropped),
            Interlocked.Read(ref _failed),
            _lastError);
    }

    /// <summary>Writes every record queued so far, on the calling thread; returns when they are in the file.</summary>
    /// <exception cref="SqliteException">Writing failed (the records of the failed batch are counted as failed).</exception>
    /// <exception cref="ObjectDisposedException">The store was disposed.</exception>
    public void Flush()
    {
        ThrowIfDisposed();
        WriteQueued(rethrow: true);
    }

    /// <summary>Stops the background writer, writes what is still queued and releases this process's pooled connections to the file.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stop.Cancel();
        try
        {
            _writer.GetAwaiter().GetResult();
        }
        catch (OperationCanceledException)
        {
        }

        WriteQueued(rethrow: false);
        _stop.Dispose();
        _wake.Dispose();
        SqliteConnection.ClearPool(new SqliteConnection(_connectionString));
    }

    private async Task WriteInBackgroundAsync()
    {
        CancellationToken token = _stop.Token;
        while (!token.IsCancellationRequested)
        {
            try
            {
                await _wake.WaitAsync(_options.FlushInterval, token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            WriteQueued(rethrow: false);
        }
    }

    private void WriteQueued(bool rethrow)
    {
        lock (_writeLock)
        {
            var batch = new List<(PredictionRecord Record, string Reason)>(_options.BatchSize);
            while (!_queue.IsEmpty)
            {
                batch.Clear();
                while (batch.Count < _options.BatchSize && _queue.TryDequeue(out var item))
                {
                    batch.Add(item);
                }

                if (batch.Count == 0)
                {
                    return;
                }

                try
                {
                    InsertBatch(batch);
                    Interlocked.Add(ref _written, batch.Count);
                }
                catch (Exception e) when (e is SqliteException or IOException or InvalidOperationException)
                {
                    Interlocked.Add(ref _failed, batch.Count);
                    _lastError = $"Writing {batch.Count} feedback records to '{Path}' failed: {e.Message}";
                    if (rethrow)
                    {
                        throw;
                    }
                }
                finally
                {
                    Interlocked.Add(ref _queued, -batch.Count);
                }
            }
        }
    }

    private void InsertBatch(List<(PredictionRecord Record, string Reason)> batch)
    {
        using SqliteConnection connection = Open();
        using SqliteTransaction transaction = connection.BeginTransaction(deferred: false);
        using SqliteCommand insert = InsertCommand(connection, transaction);
        foreach ((PredictionRecord record, string reason) in batch)
        {
            Bind(insert, record, reason, flagged: false);
            insert.ExecuteScalar();
        }

        transaction.Commit();
    }

    private long Insert(PredictionRecord record, string reason, bool flagged)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        ThrowIfDisposed();
        using SqliteConnection connection = Open();
        using SqliteCommand insert = InsertCommand(connection, null);
        Bind(insert, record, reason, flagged);
        return (long)insert.ExecuteScalar()!;
    }

    private static SqliteCommand InsertCommand(SqliteConnection connection, SqliteTransaction? transaction)
    {
        SqliteCommand insert = Command(
            connection,
            "INSERT INTO feedback (timestamp_ms, kind, input, predicted_label, probabilities, embedding, output, reason, flagged) " +
            "VALUES ($timestamp, $kind, $input, $predicted, $probabilities, $embedding, $output, $reason, $flagged) RETURNING id;",
            transaction);
        foreach (string name in new[] { "$timestamp", "$kind", "$input", "$predicted", "$probabilities", "$embedding", "$output", "$reason", "$flagged" })
        {
            insert.Parameters.Add(new SqliteParameter { ParameterName = name });
        }

        return insert;
    }

    private static void Bind(SqliteCommand insert, PredictionRecord record, string reason, bool flagged)
    {
        SqliteParameterCollection p = insert.Parameters;
        p["$timestamp"].Value = record.Timestamp.ToUnixTimeMilliseconds();
        p["$kind"].Value = (int)record.Kind;
        p["$input"].Value = record.Input ?? string.Empty;
        p["$predicted"].Value = (object?)record.PredictedLabel ?? DBNull.Value;
        p["$probabilities"].Value = ToBlob(record.Probabilities);
        p["$embedding"].Value = ToBlob(record.Embedding);
        p["$output"].Value = (object?)record.Output ?? DBNull.Value;
        p["$reason"].Value = reason;
        p["$flagged"].Value = flagged ? 1 : 0;
    }

    private static object ToBlob(ImmutableArray<float> values)
        => values.IsDefaultOrEmpty ? DBNull.Value : MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    private static ImmutableArray<float> FromBlob(SqliteDataReader reader, int column)
    {
        if (reader.IsDBNull(column))
        {
            return [];
        }

        byte[] bytes = (byte[])reader.GetValue(column);
        if (bytes.Length % sizeof(float) != 0)
        {
            throw new InvalidDataException($"A stored vector has {bytes.Length} bytes, not a whole number of 4-byte floats; the feedback file is damaged.");
        }

        return ImmutableArray.Create<float>(MemoryMarshal.Cast<byte, float>(bytes));
    }

    private List<FeedbackItem> Query(string where, params (string Name, object Value)[] parameters)
    {
        ThrowIfDisposed();
        using SqliteConnection connection = Open();
        using SqliteCommand command = Command(connection, $"SELECT {Columns} FROM feedback {where};");
        foreach ((string name, object value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        using SqliteDataReader reader = command.ExecuteReader();
        var items = new List<FeedbackItem>();
        while (reader.Read())
        {
            items.Add(new FeedbackItem(
                reader.GetInt64(0),
                DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(1)),
                (PredictionKind)reader.GetInt32(2),
                reader.GetString(3),
                reader.IsDBNull(4) ? null : reader.GetString(4),
                FromBlob(reader, 5),
                FromBlob(reader, 6),
                reader.IsDBNull(7) ? null : reader.GetString(7),
                reader.GetString(8),
                reader.GetInt64(9) != 0,
                reader.IsDBNull(10) ? null : reader.GetString(10),
                reader.IsDBNull(11) ? null : reader.GetString(11),
                reader.IsDBNull(12) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(12))));
        }

        return items;
    }

    private void Initialize()
    {
        using SqliteConnection connection = Open();
        Execute(connection, "PRAGMA journal_mode=WAL;");

        // The check and the creation happen under the write lock, so two processes opening a new file at once create the
        // schema once.
        using SqliteTransaction transaction = connection.BeginTransaction(deferred: false);
        long application = Scalar(connection, "PRAGMA application_id;", transaction);
        long version = Scalar(connection, "PRAGMA user_version;", transaction);
        if (application == 0 && version == 0)
        {
            long tables = Scalar(connection, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table';", transaction);
            if (tables > 0)
            {
                throw new InvalidDataException($"'{Path}' is a SQLite database of another program ({tables} table(s), no feedback-store marker); give the feedback store its own file.");
            }

            Execute(connection, Schema, transaction);
            Execute(connection, string.Create(CultureInfo.InvariantCulture, $"PRAGMA application_id = {ApplicationId}; PRAGMA user_version = {SchemaVersion};"), transaction);
        }
        else if (application != ApplicationId)
        {
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"'{Path}' is a SQLite database of another program (application_id 0x{application:X8}, a feedback store has 0x{ApplicationId:X8}); give the feedback store its own file."));
        }
        else if (version > SchemaVersion)
        {
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"The feedback file '{Path}' has schema version {version}, written by a newer NicheTune; this release reads version {SchemaVersion}. Upgrade NicheTune to read it."));
        }
        else if (version != SchemaVersion)
        {
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"The feedback file '{Path}' has schema version {version}, which this release does not read (it reads {SchemaVersion}); the file is damaged or was altered by hand."));
        }

        transaction.Commit();
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        Execute(connection, string.Create(CultureInfo.InvariantCulture, $"PRAGMA busy_timeout={(long)_options.BusyTimeout.TotalMilliseconds};"));
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

    private static long Scalar(SqliteConnection connection, string sql, SqliteTransaction transaction)
    {
        using SqliteCommand command = Command(connection, sql, transaction);
        return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }
}
