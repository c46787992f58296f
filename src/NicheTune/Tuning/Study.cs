using System.Collections.Immutable;
using System.Diagnostics;
using TorchSharp;

namespace NicheTune.Tuning;

/// <summary>
/// A hyperparameter search: a named set of trials in a storage, a sampler that proposes parameters and a pruner that
/// stops hopeless trials. <c>Study.Create("lr", StudyDirection.Minimize, Samplers.Tpe(seed: 1), Pruners.Median(), storage)</c>,
/// then <c>study.Optimize(trial =&gt; Objective(trial), trials: 50)</c>, then <see cref="BestTrial"/> and <see cref="ToMarkdown"/>.
/// With a <see cref="SqliteStudyStorage"/> the study resumes after a crash and several processes can share it.
/// </summary>
public sealed class Study
{
    private Study(StudyInfo info, ISampler sampler, IPruner pruner, IStudyStorage storage)
    {
        Info = info;
        Sampler = sampler;
        Pruner = pruner;
        Storage = storage;
        storage.FailStaleTrials(info.Id);
    }

    /// <summary>The study's name.</summary>
    public string Name => Info.Name;

    /// <summary>One direction per objective.</summary>
    public ImmutableArray<StudyDirection> Directions => Info.Directions;

    /// <summary>The sampler.</summary>
    public ISampler Sampler { get; }

    /// <summary>The pruner.</summary>
    public IPruner Pruner { get; }

    /// <summary>The storage.</summary>
    public IStudyStorage Storage { get; }

    /// <summary>The study as its storage knows it.</summary>
    public StudyInfo Info { get; }

    /// <summary>Every trial so far, by number (read fresh from the storage: includes other workers' trials).</summary>
    public IReadOnlyList<FrozenTrial> Trials => Storage.GetTrials(Info.Id);

    /// <summary>The complete trial with the best value (the lowest number among ties).</summary>
    /// <exception cref="InvalidOperationException">The study has several objectives (use <see cref="ParetoFront"/>) or no complete trial.</exception>
    public FrozenTrial BestTrial
    {
        get
        {
            if (Directions.Length != 1)
            {
                throw new InvalidOperationException($"Study '{Name}' has {Directions.Length} objectives: there is no single best trial; use ParetoFront.");
            }

            double sign = Directions[0] == StudyDirection.Maximize ? -1 : 1;
            return Trials.Where(t => t.State == TrialState.Complete).OrderBy(t => sign * t.Values[0]).ThenBy(t => t.Number).FirstOrDefault()
                ?? throw new InvalidOperationException($"Study '{Name}' has no complete trial yet; run Optimize first (failed trials' errors are in Trials).");
        }
    }

    /// <summary>The best trial's value.</summary>
    /// <exception cref="InvalidOperationException">See <see cref="BestTrial"/>.</exception>
    public double BestValue => BestTrial.Values[0];

    /// <summary>The best trial's parameters.</summary>
    /// <exception cref="InvalidOperationException">See <see cref="BestTrial"/>.</exception>
    public IReadOnlyDictionary<string, object> BestParameters => BestTrial.Parameters;

    /// <summary>The complete trials that no other complete trial dominates (better or equal in every objective, better in one), by number.</summary>
    public IReadOnlyList<FrozenTrial> ParetoFront
    {
        get
        {
            var complete = Trials.Where(t => t.State == TrialState.Complete && t.Values.Length == Directions.Length).ToList();
            int[] rank = TpeSampler.ParetoRanks(complete, Directions);
            return [.. complete.Where((_, i) => rank[i] == 0)];
        }
    }

    /// <summary>Creates a single-objective study.</summary>
    /// <param name="name">A name unique in the storage.</param>
    /// <param name="direction">Minimise or maximise.</param>
    /// <param name="sampler">The sampler; TPE with a random seed when <see langword="null"/>.</param>
    /// <param name="pruner">The pruner; <see cref="Pruners.Median"/> with defaults when <see langword="null"/>.</param>
    /// <param name="storage">The storage; a new <see cref="InMemoryStudyStorage"/> when <see langword="null"/>.</param>
    /// <param name="loadIfExists">Resume the study of this name if the storage has it (its directions must match).</param>
    /// <returns>The study.</returns>
    /// <exception cref="InvalidOperationException">The study exists and <paramref name="loadIfExists"/> is false, or it exists with other directions.</exception>
    public static Study Create(string name, StudyDirection direction = StudyDirection.Minimize, ISampler? sampler = null, IPruner? pruner = null, IStudyStorage? storage = null, bool loadIfExists = false)
        => Create(name, [direction], sampler, pruner, storage, loadIfExists);

    /// <summary>Creates a multi-objective study (one value per direction; see <see cref="ParetoFront"/>).</summary>
    /// <param name="name">A name unique in the storage.</param>
    /// <param name="directions">One direction per objective, at least one.</param>
    /// <param name="sampler">The sampler; TPE with a random seed when <see langword="null"/>.</param>
    /// <param name="pruner">The pruner; <see cref="Pruners.Median"/> when <see langword="null"/> (used by single-objective studies only).</param>
    /// <param name="storage">The storage; a new <see cref="InMemoryStudyStorage"/> when <see langword="null"/>.</param>
    /// <param name="loadIfExists">Resume the study of this name if the storage has it (its directions must match).</param>
    /// <returns>The study.</returns>
    /// <exception cref="ArgumentException"><paramref name="directions"/> is empty.</exception>
    /// <exception cref="InvalidOperationException">The study exists and <paramref name="loadIfExists"/> is false, or it exists with other directions.</exception>
    public static Study Create(string name, IReadOnlyList<StudyDirection> directions, ISampler? sampler = null, IPruner? pruner = null, IStudyStorage? storage = null, bool loadIfExists = false)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(directions);
        if (directions.Count == 0)
        {
            throw new ArgumentException("A study needs at least one direction.", nameof(directions));
        }

        storage ??= new InMemoryStudyStorage();
        StudyInfo? existing = loadIfExists ? storage.FindStudy(name) : null;
        if (existing is not null && !existing.Directions.SequenceEqual(directions))
        {
            throw new InvalidOperationException($"Study '{name}' exists with directions [{string.Join(", ", existing.Directions)}], not [{string.Join(", ", directions)}]; use another name.");
        }

        StudyInfo info = existing ?? storage.CreateStudy(name, directions);
        return new Study(info, sampler ?? Samplers.Tpe(), pruner ?? Pruners.Median(), storage);
    }

    /// <summary>Loads an existing study to continue it (trials its dead workers left running are marked failed).</summary>
    /// <param name="name">The study's name.</param>
    /// <param name="storage">The storage holding it.</param>
    /// <param name="sampler">The sampler; TPE with a random seed when <see langword="null"/>.</param>
    /// <param name="pruner">The pruner; <see cref="Pruners.Median"/> when <see langword="null"/>.</param>
    /// <returns>The study.</returns>
    /// <exception cref="InvalidOperationException">The storage has no study of that name; the message lists those it has.</exception>
    public static Study Load(string name, IStudyStorage storage, ISampler? sampler = null, IPruner? pruner = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(storage);
        StudyInfo info = storage.FindStudy(name)
            ?? throw new InvalidOperationException($"No study named '{name}' in the storage; it has: {string.Join(", ", storage.GetStudies().Select(s => $"'{s.Name}'").DefaultIfEmpty("none"))}. Use Study.Create.");
        return new Study(info, sampler ?? Samplers.Tpe(), pruner ?? Pruners.Median(), storage);
    }

    /// <summary>Starts a trial (ask-and-tell use, when you drive the loop yourself); finish it with <see cref="Tell(Trial, double)"/> or <see cref="Tell(Trial, TrialState, IReadOnlyList{double}?, string?)"/>.</summary>
    /// <returns>The running trial.</returns>
    /// <exception cref="InvalidOperationException">The sampler has no more trials to give (a grid is exhausted).</exception>
    public Trial Ask() => TryAsk() ?? throw new InvalidOperationException($"Study '{Name}' has run every trial its sampler can give ({Sampler.MaxTrials}); the grid is exhausted.");

    /// <summary>Finishes a trial with its objective value.</summary>
    /// <param name="trial">A trial from <see cref="Ask"/>.</param>
    /// <param name="value">The objective value; a non-finite value fails the trial.</param>
    public void Tell(Trial trial, double value) => Tell(trial, TrialState.Complete, [value]);

    /// <summary>Finishes a trial.</summary>
    /// <param name="trial">A trial from <see cref="Ask"/>.</param>
    /// <param name="state">Complete, pruned or failed.</param>
    /// <param name="values">One value per direction when complete; ignored otherwise.</param>
    /// <param name="error">Why it failed.</param>
    /// <exception cref="ArgumentException">A complete trial's value count differs from the directions'.</exception>
    public void Tell(Trial trial, TrialState state, IReadOnlyList<double>? values = null, string? error = null)
    {
        ArgumentNullException.ThrowIfNull(trial);
        try
        {
            switch (state)
            {
                case TrialState.Complete:
                    ArgumentNullException.ThrowIfNull(values);
                    if (values.Count != Directions.Length)
                    {
                        throw new ArgumentException($"Study '{Name}' has {Directions.Length} objective(s); trial {trial.Number} returned {values.Count} value(s).", nameof(values));
                    }

                    if (values.Any(v => double.IsNaN(v)))
                    {
                        Storage.FinishTrial(trial.Id, TrialState.Failed, [], $"The objective returned NaN ({string.Join(", ", values)}); the trial is recorded as failed.");
                    }
                    else
                    {
                        Storage.FinishTrial(trial.Id, TrialState.Complete, values);
                    }

                    break;
                case TrialState.Pruned:
                    double[] last = trial.IntermediateValues.Count > 0 ? [trial.IntermediateValues.MaxBy(p => p.Key).Value] : [];
                    Storage.FinishTrial(trial.Id, TrialState.Pruned, last);
                    break;
                case TrialState.Failed:
                    Storage.FinishTrial(trial.Id, TrialState.Failed, [], error ?? "failed");
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(state), state, "Tell a trial as Complete, Pruned or Failed.");
            }
        }
        finally
        {
            trial.StopHeartbeat();
        }
    }

    /// <summary>
    /// Runs the objective on <paramref name="trials"/> new trials (this call's count; other workers add their own),
    /// at most <paramref name="parallelism"/> at a time. A trial that throws is recorded as failed with the exception's
    /// text and the study goes on; <see cref="TrialPrunedException"/> (or a fine-tuner stopped by <c>WithTrial</c>)
    /// records it as pruned.
    /// </summary>
    /// <param name="objective">Evaluates one trial and returns the value to minimise or maximise.</param>
    /// <param name="trials">How many trials this call runs, at least 1.</param>
    /// <param name="parallelism">Trials evaluated at once in this process, at least 1. With more than one, torch's intra-op threads are divided among them (see docs/tuning.md).</param>
    /// <param name="timeout">Start no new trial after this long; running trials finish.</param>
    /// <param name="cancellationToken">Start no new trial once cancelled; running trials see the token only if the objective does.</param>
    /// <returns>The trials this call ran, by number.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="trials"/> or <paramref name="parallelism"/> is below 1.</exception>
    /// <exception cref="InvalidOperationException">The study has several objectives.</exception>
    public IReadOnlyList<FrozenTrial> Optimize(Func<Trial, double> objective, int trials, int parallelism = 1, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(objective);
        if (Directions.Length != 1)
        {
            throw new InvalidOperationException($"Study '{Name}' has {Directions.Length} objectives; pass an objective that returns one value per direction.");
        }

        return Run(t => [objective(t)], trials, parallelism, timeout, cancellationToken);
    }

    /// <summary>Runs a multi-objective (or single-objective) search; the objective returns one value per direction. Otherwise as <see cref="Optimize(Func{Trial, double}, int, int, TimeSpan?, CancellationToken)"/>.</summary>
    /// <param name="objective">Evaluates one trial.</param>
    /// <param name="trials">How many trials this call runs, at least 1.</param>
    /// <param name="parallelism">Trials evaluated at once in this process.</param>
    /// <param name="timeout">Start no new trial after this long.</param>
    /// <param name="cancellationToken">Start no new trial once cancelled.</param>
    /// <returns>The trials this call ran, by number.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="trials"/> or <paramref name="parallelism"/> is below 1.</exception>
    public IReadOnlyList<FrozenTrial> Optimize(Func<Trial, IReadOnlyList<double>> objective, int trials, int parallelism = 1, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(objective);
        return Run(objective, trials, parallelism, timeout, cancellationToken);
    }

    /// <summary>The study as Markdown: summary, best trial (or Pareto front), the trials table and the optimisation history.</summary>
    /// <param name="maxTrialRows">Show at most this many trials in the table (the best first when cut).</param>
    /// <returns>Markdown text.</returns>
    public string ToMarkdown(int maxTrialRows = 100) => StudyMarkdown.Render(this, Trials, maxTrialRows);

    internal Trial? TryAsk()
    {
        Storage.FailStaleTrials(Info.Id);
        IReadOnlyList<FrozenTrial> history = Storage.GetTrials(Info.Id);
        if (Storage.CreateTrial(Info.Id, Sampler.MaxTrials) is not { } slot)
        {
            return null;
        }

        var trial = new Trial(this, slot, history);
        if (Storage.HeartbeatInterval is { } interval)
        {
            trial.StartHeartbeat(interval);
        }

        return trial;
    }

    private IReadOnlyList<FrozenTrial> Run(Func<Trial, IReadOnlyList<double>> objective, int trials, int parallelism, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(trials, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(parallelism, 1);
        var clock = Stopwatch.StartNew();
        int started = 0;
        int exhausted = 0;
        var ran = new List<long>();
        int threads = parallelism > 1 ? Math.Max(1, Environment.ProcessorCount / parallelism) : 0;

        void Worker()
        {
            if (threads > 0)
            {
                TorchThreads.Set(threads);
            }

            while (Volatile.Read(ref exhausted) == 0
                && !cancellationToken.IsCancellationRequested
                && (timeout is not { } limit || clock.Elapsed < limit)
                && Interlocked.Increment(ref started) <= trials)
            {
                Trial? trial = TryAsk();
                if (trial is null)
                {
                    Volatile.Write(ref exhausted, 1);
                    return;
                }

                lock (ran)
                {
                    ran.Add(trial.Id);
                }

                RunOne(objective, trial);
            }
        }

        int previous = threads > 0 ? TorchThreads.Get() : 0;
        try
        {
            if (parallelism == 1)
            {
                Worker();
            }
            else
            {
                var workers = Enumerable.Range(0, parallelism).Select(i => new Thread(Worker) { Name = $"study {Name} worker {i}", IsBackground = true }).ToList();
                workers.ForEach(w => w.Start());
                workers.ForEach(w => w.Join());
            }
        }
        finally
        {
            if (previous > 0)
            {
                TorchThreads.Set(previous);
            }
        }

        var ids = new HashSet<long>(ran);
        return [.. Trials.Where(t => ids.Contains(t.Id))];
    }

    private void RunOne(Func<Trial, IReadOnlyList<double>> objective, Trial trial)
    {
        IReadOnlyList<double> values;
        try
        {
            values = objective(trial);
        }
        catch (TrialPrunedException)
        {
            SafeTell(trial, TrialState.Pruned, null, null);
            return;
        }
        catch (Exception ex)
        {
            SafeTell(trial, TrialState.Failed, null, ex.ToString());
            return;
        }

        if (trial.IsPruned)
        {
            SafeTell(trial, TrialState.Pruned, null, null);
        }
        else if (values is null || values.Count != Directions.Length)
        {
            SafeTell(trial, TrialState.Failed, null, $"The objective returned {values?.Count ?? 0} value(s); study '{Name}' has {Directions.Length} direction(s).");
        }
        else
        {
            SafeTell(trial, TrialState.Complete, values, null);
        }
    }

    private void SafeTell(Trial trial, TrialState state, IReadOnlyList<double>? values, string? error)
    {
        try
        {
            Tell(trial, state, values, error);
        }
        catch (InvalidOperationException)
        {
            // The storage had already finished it: its heartbeat was taken as stale by another worker. Its record stands.
        }
    }
}

/// <summary>
/// torch's intra-op thread count. In TorchSharp <c>torch.set_num_threads</c> reaches libtorch's process-wide pool
/// but, with OpenMP, also the calling thread's own setting, so each worker thread sets it for itself.
/// </summary>
internal static class TorchThreads
{
    public static int Get()
    {
        try
        {
            return torch.get_num_threads();
        }
        catch (Exception ex) when (ex is DllNotFoundException or TypeInitializationException or NotSupportedException or NativeBackendException)
        {
            return 0;
        }
    }

    public static void Set(int threads)
    {
        try
        {
            torch.set_num_threads(threads);
        }
        catch (Exception ex) when (ex is DllNotFoundException or TypeInitializationException or NotSupportedException or NativeBackendException)
        {
            // Without libtorch there is nothing to divide: the objective does not use torch.
        }
    }
}
