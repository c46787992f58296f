using System.Collections.Concurrent;
using FluentAssertions;
using Microsoft.Data.Sqlite;
using NicheTune.Tests.Support;
using NicheTune.Tuning;
using Xunit;

namespace NicheTune.Tests.Tuning;

// Optimize with parallelism > 1 sets torch's process-wide thread count while it runs: not beside training tests.
[Collection(TorchCollection.Name)]
public sealed class StorageTests
{
    [Fact]
    public void SqliteStudy_ClosedAndReopenedMidStudy_ResumesWithItsTrials()
    {
        using var folder = new TempFolder();
        string path = Path.Combine(folder.Path, "study.db");
        static double Objective(Trial t) => Math.Pow(t.SuggestFloat("x", -3, 3) - 1, 2) + t.SuggestCategorical("c", "a", "b").Length;

        using (var storage = new SqliteStudyStorage(path))
        {
            var study = Study.Create("resume", sampler: Samplers.Tpe(seed: 1), pruner: Pruners.None, storage: storage);
            study.Optimize(Objective, trials: 12);
            Trial t = study.Ask();
            t.Report(0, 0.5);
            study.Tell(t, TrialState.Pruned);
        }

        using (var reopened = new SqliteStudyStorage(path))
        {
            var study = Study.Create("resume", sampler: Samplers.Tpe(seed: 1), pruner: Pruners.None, storage: reopened, loadIfExists: true);
            study.Trials.Should().HaveCount(13);
            FrozenTrial before = study.BestTrial;
            study.Optimize(Objective, trials: 8);

            IReadOnlyList<FrozenTrial> trials = Study.Load("resume", reopened).Trials;
            trials.Select(t => t.Number).Should().Equal(Enumerable.Range(0, 21));
            trials[12].State.Should().Be(TrialState.Pruned);
            trials[12].Values.Should().Equal(0.5);
            trials[12].IntermediateValues.Should().ContainKey(0);
            trials[0].Parameters["x"].Should().BeOfType<double>();
            trials[0].Parameters["c"].Should().BeOneOf("a", "b");
            study.BestValue.Should().BeLessThanOrEqualTo(before.Values[0]);
        }
    }

    [Fact]
    public void SqliteStudy_TrialOfADeadWorker_IsMarkedFailedOnLoad()
    {
        using var folder = new TempFolder();
        string path = Path.Combine(folder.Path, "crash.db");
        var clock = new ManualClock(DateTimeOffset.UnixEpoch.AddDays(20000));
        var options = new SqliteStudyStorageOptions { HeartbeatInterval = TimeSpan.FromSeconds(10), GracePeriod = TimeSpan.FromSeconds(30), TimeProvider = clock };
        using (var storage = new SqliteStudyStorage(path, options))
        {
            var study = Study.Create("crash", storage: storage, pruner: Pruners.None);
            study.Optimize(t => t.SuggestFloat("x", 0, 1), trials: 2);
            Trial orphan = study.Ask();
            orphan.SuggestFloat("x", 0, 1);
            orphan.StopHeartbeat();

            // The process "dies" here: the trial is never told.
        }

        clock.Advance(TimeSpan.FromSeconds(31));
        using var reopened = new SqliteStudyStorage(path, options);
        var resumed = Study.Load("crash", reopened);

        FrozenTrial dead = resumed.Trials[2];
        dead.State.Should().Be(TrialState.Failed);
        dead.Error.Should().Contain("heartbeat");
        resumed.Optimize(t => t.SuggestFloat("x", 0, 1), trials: 1);
        resumed.Trials.Select(t => t.State).Should().Equal(TrialState.Complete, TrialState.Complete, TrialState.Failed, TrialState.Complete);
    }

    [Fact]
    public void SqliteStudy_RunningTrialWithFreshHeartbeat_IsNotFailed()
    {
        using var folder = new TempFolder();
        var clock = new ManualClock(DateTimeOffset.UnixEpoch.AddDays(20000));
        var options = new SqliteStudyStorageOptions { HeartbeatInterval = TimeSpan.FromSeconds(10), GracePeriod = TimeSpan.FromSeconds(30), TimeProvider = clock };
        using var storage = new SqliteStudyStorage(Path.Combine(folder.Path, "alive.db"), options);
        var study = Study.Create("alive", storage: storage);
        Trial running = study.Ask();
        clock.Advance(TimeSpan.FromSeconds(25));
        storage.RecordHeartbeat(running.Id);
        clock.Advance(TimeSpan.FromSeconds(25));

        storage.FailStaleTrials(study.Info.Id).Should().BeEmpty("the heartbeat 25 s ago is inside the 30 s grace period");
        clock.Advance(TimeSpan.FromSeconds(10));
        storage.FailStaleTrials(study.Info.Id).Should().Equal(0);
        running.StopHeartbeat();
    }

    [Fact]
    public void SqliteStudy_TwoWorkersWithSeparateConnections_NeverShareATrialNumber()
    {
        // Two "processes": separate storage instances with connection pooling off, so every operation has its own
        // connection to the file, as two processes would; each runs two threads.
        using var folder = new TempFolder();
        string path = Path.Combine(folder.Path, "shared.db");
        var options = new SqliteStudyStorageOptions { Pooling = false };
        using var first = new SqliteStudyStorage(path, options);
        using var second = new SqliteStudyStorage(path, options);
        Study.Create("shared", storage: first, sampler: Samplers.Random(seed: 1), pruner: Pruners.None);
        var evaluated = new ConcurrentBag<(int Worker, int Number)>();

        Parallel.For(0, 2, worker =>
        {
            Study study = Study.Load("shared", worker == 0 ? first : second, Samplers.Random(seed: worker));
            study.Optimize(t =>
            {
                evaluated.Add((worker, t.Number));
                return t.SuggestFloat("x", 0, 1);
            }, trials: 15, parallelism: 2);
        });

        evaluated.Should().HaveCount(30);
        evaluated.Select(e => e.Number).Should().OnlyHaveUniqueItems().And.BeEquivalentTo(Enumerable.Range(0, 30));
        evaluated.Select(e => e.Worker).Distinct().Should().HaveCount(2);
        Study.Load("shared", first).Trials.Should().HaveCount(30).And.OnlyContain(t => t.State == TrialState.Complete);
    }

    [Fact]
    public void SqliteTransaction_NotDeferred_TakesTheWriteLockAtBegin()
    {
        // The storage's trial numbering relies on this: BeginTransaction(deferred: false) must be BEGIN IMMEDIATE, so the
        // write lock is held before the highest number is read. A deferred BEGIN would take no lock until the first write.
        using var folder = new TempFolder();
        string path = Path.Combine(folder.Path, "lock.db");
        using (new SqliteStudyStorage(path))
        {
        }

        // Default Timeout 1 s: Microsoft.Data.Sqlite retries a busy statement until the command timeout.
        string connectionString = new SqliteConnectionStringBuilder { DataSource = path, Pooling = false, DefaultTimeout = 1 }.ToString();
        using var holder = new SqliteConnection(connectionString);
        using var other = new SqliteConnection(connectionString);
        holder.Open();
        other.Open();
        using (SqliteCommand noWait = other.CreateCommand())
        {
            noWait.CommandText = "PRAGMA busy_timeout=0;";
            noWait.ExecuteNonQuery();
        }

        using (holder.BeginTransaction(deferred: true))
        {
            var begin = () => Execute(other, "BEGIN IMMEDIATE; ROLLBACK;");
            begin.Should().NotThrow("a deferred transaction holds no lock before its first statement");
        }

        using (holder.BeginTransaction(deferred: false))
        {
            var begin = () => Execute(other, "BEGIN IMMEDIATE;");
            begin.Should().Throw<SqliteException>().Which.SqliteErrorCode.Should().Be(5, "SQLITE_BUSY: the non-deferred transaction took the write lock at BEGIN");
        }
    }

    [Fact]
    public void SqliteStorage_FinishedTrial_RefusesChanges()
    {
        using var folder = new TempFolder();
        using var storage = new SqliteStudyStorage(Path.Combine(folder.Path, "finished.db"));
        StudyInfo study = storage.CreateStudy("s", [StudyDirection.Minimize]);
        TrialSlot slot = storage.CreateTrial(study.Id)!.Value;
        storage.FinishTrial(slot.Id, TrialState.Complete, [1.0]);

        var again = () => storage.FinishTrial(slot.Id, TrialState.Failed, []);
        again.Should().Throw<InvalidOperationException>().WithMessage("*Trial 0*Complete*");
        var report = () => storage.SetIntermediateValue(slot.Id, 1, 2.0);
        report.Should().Throw<InvalidOperationException>();
        var duplicate = () => storage.CreateStudy("s", [StudyDirection.Maximize]);
        duplicate.Should().Throw<InvalidOperationException>().WithMessage("*'s'*already exists*");
    }

    [Fact]
    public void Study_Load_UnknownName_ListsTheStudiesThere()
    {
        using var storage = new InMemoryStudyStorage();
        Study.Create("alpha", storage: storage);

        var load = () => Study.Load("beta", storage);

        load.Should().Throw<InvalidOperationException>().WithMessage("*'beta'*'alpha'*");
    }

    [Fact]
    public void Storage_CreateTrialWithLimit_StopsAtTheLimit()
    {
        using var storage = new InMemoryStudyStorage();
        StudyInfo study = storage.CreateStudy("limit", [StudyDirection.Minimize]);

        TrialSlot? first = storage.CreateTrial(study.Id, maxTrials: 2);
        TrialSlot? second = storage.CreateTrial(study.Id, maxTrials: 2);
        storage.CreateTrial(study.Id, maxTrials: 2).Should().BeNull("the study already holds its 2 trials");

        first!.Value.Number.Should().Be(0);
        second!.Value.Number.Should().Be(1);
        second.Value.Id.Should().NotBe(first.Value.Id);
        storage.GetTrials(study.Id).Select(t => (t.Number, t.State)).Should().Equal((0, TrialState.Running), (1, TrialState.Running));
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    internal sealed class ManualClock(DateTimeOffset start) : TimeProvider
    {
        private DateTimeOffset _now = start;

        public void Advance(TimeSpan by) => _now += by;

        public override DateTimeOffset GetUtcNow() => _now;
    }
}
