using System.Collections.Immutable;
using System.Text.Json;
using FluentAssertions;
using Microsoft.Data.Sqlite;
using NicheTune.Augmentation;
using NicheTune.Deployment;
using NicheTune.Refinement;
using NicheTune.Tests.Support;
using NicheTune.Tests.Tuning;
using Xunit;

namespace NicheTune.Tests.Refinement;

public sealed class FeedbackStoreTests
{
    private static readonly DateTimeOffset Start = DateTimeOffset.UnixEpoch.AddDays(20000);

    internal static PredictionRecord Classified(string input, params float[] probabilities)
    {
        string[] labels = ["networking", "language", "hardware"];
        int top = Array.IndexOf(probabilities, probabilities.Max());
        return new PredictionRecord(Start, PredictionKind.Classify, input, input.Length, 0, [.. probabilities], labels[top], null, [], null, TimeSpan.FromMilliseconds(3));
    }

    [Fact]
    public void RecordAndLabel_ReopenedFile_RoundTripsEveryField()
    {
        using var folder = new TempFolder();
        string path = Path.Combine(folder.Path, "feedback.db");
        var clock = new StorageTests.ManualClock(Start.AddHours(1));
        long recorded, flagged, embedded;
        PredictionRecord embedding = new(Start.AddSeconds(5), PredictionKind.Embed, "a vector please", 4, 1, [], null, null, [0.25f, -1.5f, 3f], null, TimeSpan.FromMilliseconds(8));
        using (var store = new FeedbackStore(path, new FeedbackStoreOptions { TimeProvider = clock }))
        {
            recorded = store.Record(Classified("TCP sends packets", 0.45f, 0.35f, 0.2f), "user report");
            flagged = store.Flag(Classified("a parser for Lisp", 0.1f, 0.8f, 0.1f), "drift: unknown tokens");
            embedded = store.Record(embedding, "observed");
            store.AddLabel(recorded, "networking", "annotator:ana");
            clock.Advance(TimeSpan.FromMinutes(5));
            store.AddLabel(flagged, "language", "user-correction");
            store.AddLabel(flagged, "hardware", "annotator:bo");
        }

        using var reopened = new FeedbackStore(path);
        FeedbackItem first = reopened.Get(recorded);
        first.Should().BeEquivalentTo(new
        {
            Id = recorded,
            Timestamp = Start,
            Kind = PredictionKind.Classify,
            Input = "TCP sends packets",
            PredictedLabel = "networking",
            Reason = "user report",
            Flagged = false,
            Label = "networking",
            LabelSource = "annotator:ana",
            LabelledAt = (DateTimeOffset?)Start.AddHours(1),
            IsCorrection = false,
        });
        first.Probabilities.Should().Equal(0.45f, 0.35f, 0.2f);
        first.Embedding.IsEmpty.Should().BeTrue();

        FeedbackItem second = reopened.Get(flagged);
        second.Flagged.Should().BeTrue();
        second.Reason.Should().Be("drift: unknown tokens");
        second.Label.Should().Be("hardware", "a later label replaces an earlier one");
        second.LabelSource.Should().Be("annotator:bo");
        second.LabelledAt.Should().Be(Start.AddHours(1).AddMinutes(5));
        second.IsCorrection.Should().BeTrue("the model said language");

        FeedbackItem third = reopened.Get(embedded);
        third.Kind.Should().Be(PredictionKind.Embed);
        third.Embedding.Should().Equal(0.25f, -1.5f, 3f);
        third.Probabilities.IsEmpty.Should().BeTrue();
        third.PredictedLabel.Should().BeNull();

        reopened.GetUnlabelled().Select(i => i.Id).Should().Equal(embedded);
        reopened.GetLabelled().Select(i => i.Id).Should().Equal(recorded, flagged);
        reopened.GetFlagged().Select(i => i.Id).Should().Equal(flagged);
        reopened.ExportLabelled().Should().Equal(new LabeledText("TCP sends packets", "networking"), new LabeledText("a parser for Lisp", "hardware"));
        reopened.GetStatistics().Should().BeEquivalentTo(new { Items = 3L, Labelled = 2L, Flagged = 1L });
    }

    [Fact]
    public void FlagById_ExistingItem_MarksItAndChangesTheReason()
    {
        using var folder = new TempFolder();
        using var store = new FeedbackStore(Path.Combine(folder.Path, "f.db"));
        long id = store.Record(Classified("x", 0.5f, 0.3f, 0.2f), "observed");

        store.Flag(id, "monitor: PSI 0.4 on input length");

        store.Get(id).Should().BeEquivalentTo(new { Flagged = true, Reason = "monitor: PSI 0.4 on input length" });
        store.Invoking(s => s.Flag(id + 100, "x")).Should().Throw<KeyNotFoundException>().WithMessage($"*{id + 100}*");
        store.Invoking(s => s.AddLabel(id + 100, "networking", "a")).Should().Throw<KeyNotFoundException>().WithMessage($"*{id + 100}*");
        store.Invoking(s => s.AddLabel(id, " ", "a")).Should().Throw<ArgumentException>().WithParameterName("label");
    }

    [Fact]
    public void Observe_LowConfidenceFilter_KeepsOnlyUnsureClassificationsWithTheReason()
    {
        using var folder = new TempFolder();
        using var store = new FeedbackStore(Path.Combine(folder.Path, "f.db"), new FeedbackStoreOptions { Filter = FeedbackFilters.LowConfidence(0.6) });

        store.Observe(Classified("sure", 0.9f, 0.05f, 0.05f));
        store.Observe(Classified("unsure", 0.41f, 0.39f, 0.2f));
        store.Observe(Classified("borderline", 0.6f, 0.3f, 0.1f));
        store.Observe(new PredictionRecord(Start, PredictionKind.Generate, "write", 5, 0, [], null, null, [], "text", TimeSpan.Zero));
        store.Flush();

        store.GetUnlabelled().Should().ContainSingle().Which.Should().BeEquivalentTo(new { Input = "unsure", Reason = "low confidence 0.41", Flagged = false });
        store.GetStatistics().Should().BeEquivalentTo(new { Observed = 4L, Matched = 1L, Written = 1L, Dropped = 0L, Failed = 0L });
    }

    [Fact]
    public void Observe_WithoutFlush_BackgroundWriterStoresWithinTheInterval()
    {
        using var folder = new TempFolder();
        using var store = new FeedbackStore(Path.Combine(folder.Path, "f.db"), new FeedbackStoreOptions { Filter = FeedbackFilters.All, FlushInterval = TimeSpan.FromMilliseconds(50) });

        store.Observe(Classified("one", 0.9f, 0.05f, 0.05f));

        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (store.GetStatistics().Items == 0 && waited.Elapsed < TimeSpan.FromSeconds(20))
        {
            Thread.Sleep(20);
        }

        store.GetStatistics().Items.Should().Be(1, "the writer wakes every 50 ms and writes what is queued");
    }

    [Fact]
    public async Task Observe_ManyThreadsAndASecondStoreOnTheFile_LosesNothing()
    {
        // Eight threads observe through one store (pooled connections) while a second store on the same file (pooling off,
        // like another process) records by hand: every matching record lands exactly once, and no write fails on the lock.
        using var folder = new TempFolder();
        string path = Path.Combine(folder.Path, "busy.db");
        var options = new FeedbackStoreOptions { Filter = FeedbackFilters.LowConfidence(0.5), BatchSize = 16, FlushInterval = TimeSpan.FromMilliseconds(10) };
        using var observer = new FeedbackStore(path, options);
        using var other = new FeedbackStore(path, new FeedbackStoreOptions { Pooling = false });
        const int Threads = 8, PerThread = 250;

        Task byHand = Task.Run(() =>
        {
            for (int i = 0; i < 100; i++)
            {
                other.Record(Classified($"hand {i}", 0.9f, 0.05f, 0.05f), "user report");
            }
        });
        Parallel.For(0, Threads, new ParallelOptions { MaxDegreeOfParallelism = Threads }, t =>
        {
            for (int i = 0; i < PerThread; i++)
            {
                // Every other request is unsure (top probability 0.4): half of them match.
                observer.Observe(i % 2 == 0 ? Classified($"t{t} r{i}", 0.4f, 0.35f, 0.25f) : Classified($"t{t} r{i}", 0.8f, 0.1f, 0.1f));
            }
        });
        await byHand;
        observer.Flush();

        FeedbackStatistics statistics = observer.GetStatistics();
        statistics.Should().BeEquivalentTo(new { Observed = (long)Threads * PerThread, Matched = (long)Threads * PerThread / 2, Written = (long)Threads * PerThread / 2, Dropped = 0L, Failed = 0L, LastError = (string?)null });
        IReadOnlyList<FeedbackItem> items = other.GetUnlabelled();
        items.Should().HaveCount((Threads * PerThread / 2) + 100);
        items.Select(i => i.Input).Should().OnlyHaveUniqueItems();
        items.Count(i => i.Reason == "low confidence 0.40").Should().Be(Threads * PerThread / 2);
    }

    [Fact]
    public void Observe_WriterBlockedAndQueueFull_DropsAndCountsInsteadOfBlocking()
    {
        using var folder = new TempFolder();
        using var store = new FeedbackStore(Path.Combine(folder.Path, "f.db"), new FeedbackStoreOptions
        {
            Filter = FeedbackFilters.All, BatchSize = 10, Capacity = 10, FlushInterval = TimeSpan.FromMilliseconds(10),
        });

        // Another connection holds the write lock, so the writer's first batch cannot commit: the 10 queued records stay
        // counted against the capacity and the other 15 are dropped (Observe never waits for the database).
        using (var holder = new SqliteConnection($"Data Source={store.Path};Pooling=False"))
        {
            holder.Open();
            using SqliteTransaction transaction = holder.BeginTransaction(deferred: false);
            for (int i = 0; i < 25; i++)
            {
                store.Observe(Classified($"r{i}", 0.9f, 0.05f, 0.05f));
            }

            transaction.Rollback();
        }

        store.Flush();
        store.GetStatistics().Should().BeEquivalentTo(new { Items = 10L, Matched = 25L, Written = 10L, Dropped = 15L, Failed = 0L });
        store.GetUnlabelled().Select(i => i.Input).Should().Equal(Enumerable.Range(0, 10).Select(i => $"r{i}"));
    }

    [Fact]
    public void Observe_FilterThrows_CountsTheFailureInsteadOfFailingTheRequest()
    {
        using var folder = new TempFolder();
        using var store = new FeedbackStore(Path.Combine(folder.Path, "f.db"), new FeedbackStoreOptions { Filter = _ => throw new InvalidOperationException("bad filter") });

        store.Invoking(s => s.Observe(Classified("x", 0.4f, 0.3f, 0.3f))).Should().NotThrow();

        FeedbackStatistics statistics = store.GetStatistics();
        statistics.Should().BeEquivalentTo(new { Observed = 1L, Matched = 0L, Failed = 1L, Items = 0L });
        statistics.LastError.Should().Contain("InvalidOperationException").And.Contain("bad filter");
    }

    [Fact]
    public void Dispose_QueuedRecords_AreWritten()
    {
        using var folder = new TempFolder();
        string path = Path.Combine(folder.Path, "f.db");
        using (var store = new FeedbackStore(path, new FeedbackStoreOptions { Filter = FeedbackFilters.All, FlushInterval = TimeSpan.FromHours(1), BatchSize = 100 }))
        {
            for (int i = 0; i < 7; i++)
            {
                store.Observe(Classified($"r{i}", 0.9f, 0.05f, 0.05f));
            }
        }

        using var reopened = new FeedbackStore(path);
        reopened.GetUnlabelled().Select(i => i.Input).Should().Equal(Enumerable.Range(0, 7).Select(i => $"r{i}"));
        reopened.Invoking(s => s.Observe(Classified("late", 0.1f, 0.1f, 0.8f))).Should().NotThrow();
    }

    [Fact]
    public void Open_NewerSchemaVersion_RefusesNamingTheVersions()
    {
        using var folder = new TempFolder();
        string path = Path.Combine(folder.Path, "f.db");
        using (new FeedbackStore(path))
        {
        }

        Execute(path, "PRAGMA user_version = 7;");

        Action open = () => new FeedbackStore(path).Dispose();
        open.Should().Throw<InvalidDataException>().WithMessage("*schema version 7*newer NicheTune*reads version 1*");
    }

    [Fact]
    public void Open_SqliteFileOfAnotherProgram_RefusesAndLeavesItAlone()
    {
        using var folder = new TempFolder();
        string path = Path.Combine(folder.Path, "other.db");
        Execute(path, "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);");

        Action open = () => new FeedbackStore(path).Dispose();

        open.Should().Throw<InvalidDataException>().WithMessage("*another program*1 table*own file*");
        Execute(path, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'feedback';").Should().Be(0L, "the file was not altered");
    }

    [Fact]
    public void Open_FileThatIsNotADatabase_ThrowsInvalidData()
    {
        using var folder = new TempFolder();
        string path = Path.Combine(folder.Path, "notes.db");
        File.WriteAllText(path, new string('x', 4096));

        Action open = () => new FeedbackStore(path).Dispose();

        open.Should().Throw<InvalidDataException>().WithMessage("*is not a SQLite database*");
    }

    [Fact]
    public void Create_InvalidOptionsOrFolder_ListsEveryProblem()
    {
        using var folder = new TempFolder();
        Action bad = () => new FeedbackStore(Path.Combine(folder.Path, "f.db"), new FeedbackStoreOptions { BatchSize = 0, FlushInterval = TimeSpan.Zero, Capacity = -1 });
        Action missing = () => new FeedbackStore(Path.Combine(folder.Path, "no", "such", "f.db"));

        bad.Should().Throw<ArgumentException>().WithParameterName("options").WithMessage("*BatchSize is 0*FlushInterval*Capacity is -1*");
        missing.Should().Throw<DirectoryNotFoundException>().WithMessage("*does not exist*");
    }

    [Fact]
    public void ExportLabelledJsonl_LabelledItems_WritesTextAndLabelLines()
    {
        using var folder = new TempFolder();
        using var store = new FeedbackStore(Path.Combine(folder.Path, "f.db"));
        long a = store.Record(Classified("route \"packets\"\nfast", 0.4f, 0.3f, 0.3f), "r");
        store.Record(Classified("unlabelled", 0.4f, 0.3f, 0.3f), "r");
        store.AddLabel(a, "networking", "ana");
        string file = Path.Combine(folder.Path, "new.jsonl");

        store.ExportLabelledJsonl(file).Should().Be(1);

        string[] lines = File.ReadAllLines(file);
        lines.Should().ContainSingle();
        using var doc = JsonDocument.Parse(lines[0]);
        doc.RootElement.GetProperty("text").GetString().Should().Be("route \"packets\"\nfast");
        doc.RootElement.GetProperty("label").GetString().Should().Be("networking");
        Directory.GetFiles(folder.Path, "*.tmp-*").Should().BeEmpty("the temporary file was moved into place");
    }

    [Fact]
    public void Filters_AnyAndLowConfidence_CombineAndValidate()
    {
        Func<PredictionRecord, string?> longInput = r => r.TokenCount > 100 ? "long input" : null;
        var filter = FeedbackFilters.Any(FeedbackFilters.LowConfidence(0.5), longInput);

        filter(Classified("x", 0.3f, 0.3f, 0.4f)).Should().Be("low confidence 0.40");
        filter(Classified(new string('a', 150), 0.9f, 0.05f, 0.05f)).Should().Be("long input");
        filter(Classified("x", 0.9f, 0.05f, 0.05f)).Should().BeNull();
        FeedbackFilters.None(Classified("x", 0.3f, 0.3f, 0.4f)).Should().BeNull();
        FluentActions.Invoking(() => FeedbackFilters.LowConfidence(1.5)).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("threshold");
        FluentActions.Invoking(() => FeedbackFilters.Any()).Should().Throw<ArgumentException>().WithParameterName("filters");
    }

    private static object? Execute(string path, string sql)
    {
        using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        connection.Open();
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }
}
