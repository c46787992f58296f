using System.Collections.Immutable;
using System.Globalization;

namespace NicheTune.Tuning;

/// <summary>
/// One evaluation of the objective. The objective asks it for hyperparameters (<see cref="SuggestFloat"/>,
/// <see cref="SuggestInt"/>, <see cref="SuggestCategorical{T}"/>: define-by-run, so a parameter can exist only when
/// another has some value), reports intermediate values (<see cref="Report"/>) and asks whether to stop early
/// (<see cref="ShouldPrune"/>). A trial is used by one thread.
/// </summary>
public sealed class Trial
{
    private readonly Study _study;
    private readonly IReadOnlyList<FrozenTrial> _history;
    private readonly Dictionary<string, (ParameterDistribution Distribution, double Value)> _parameters = new(StringComparer.Ordinal);
    private ImmutableSortedDictionary<long, double> _intermediate = ImmutableSortedDictionary<long, double>.Empty;
    private Timer? _heartbeat;

    internal Trial(Study study, TrialSlot slot, IReadOnlyList<FrozenTrial> history)
    {
        _study = study;
        Id = slot.Id;
        Number = slot.Number;
        _history = history;
    }

    /// <summary>The trial's number in its study (0, 1, 2, …; unique across every worker).</summary>
    public int Number { get; }

    /// <summary>The storage's key of this trial.</summary>
    public long Id { get; }

    /// <summary>The study this trial belongs to.</summary>
    public Study Study => _study;

    /// <summary>The parameters suggested so far, as the objective received them.</summary>
    public IReadOnlyDictionary<string, object> Parameters
        => _parameters.ToDictionary(p => p.Key, p => p.Value.Distribution.ToExternal(p.Value.Value));

    /// <summary>Intermediate values reported so far, by step.</summary>
    public IReadOnlyDictionary<long, double> IntermediateValues => _intermediate;

    /// <summary>Whether a pruner decided to stop this trial (through <see cref="ShouldPrune"/> from a fine-tuner's trial callback).</summary>
    public bool IsPruned { get; private set; }

    /// <summary>The step at which the trial was pruned, or <see langword="null"/>.</summary>
    public long? PrunedAtStep { get; private set; }

    /// <summary>Suggests a real value in [<paramref name="low"/>, <paramref name="high"/>].</summary>
    /// <param name="name">The parameter's name; asking again returns the same value.</param>
    /// <param name="low">The lower bound.</param>
    /// <param name="high">The upper bound.</param>
    /// <param name="log">Sample uniformly in log space (learning rates, weight decay).</param>
    /// <param name="step">Quantise to <c>low + k·step</c>.</param>
    /// <returns>The value.</returns>
    /// <exception cref="ArgumentException"><paramref name="name"/> was already suggested (in this trial or an earlier one) with another distribution, or the bounds are invalid.</exception>
    public double SuggestFloat(string name, double low, double high, bool log = false, double? step = null)
        => (double)Suggest(name, new FloatDistribution(low, high, log, step));

    /// <summary>Suggests an integer in [<paramref name="low"/>, <paramref name="high"/>].</summary>
    /// <param name="name">The parameter's name; asking again returns the same value.</param>
    /// <param name="low">The lower bound.</param>
    /// <param name="high">The upper bound.</param>
    /// <param name="log">Sample uniformly in log space.</param>
    /// <param name="step">The spacing of values.</param>
    /// <returns>The value.</returns>
    /// <exception cref="ArgumentException"><paramref name="name"/> was already suggested with another distribution, or the bounds are invalid.</exception>
    public int SuggestInt(string name, int low, int high, bool log = false, int step = 1)
        => (int)(long)Suggest(name, new IntDistribution(low, high, log, step));

    /// <summary>Suggests one of <paramref name="choices"/>.</summary>
    /// <typeparam name="T">The choices' type; choices are stored by their invariant-culture text.</typeparam>
    /// <param name="name">The parameter's name; asking again returns the same value.</param>
    /// <param name="choices">The options, at least one, with distinct texts.</param>
    /// <returns>The chosen option.</returns>
    /// <exception cref="ArgumentException"><paramref name="name"/> was already suggested with another distribution, or the choices are empty or repeat.</exception>
    public T SuggestCategorical<T>(string name, params T[] choices)
    {
        ArgumentNullException.ThrowIfNull(choices);
        var distribution = new CategoricalDistribution(choices.Select(CategoricalDistribution.Text));
        double index = SuggestInternal(name, distribution);
        return choices[(int)index];
    }

    /// <summary>Reports an intermediate value (validation loss after an epoch, accuracy at a step) for pruning and the report.</summary>
    /// <param name="step">The step, ≥ 0; reporting a step again replaces its value.</param>
    /// <param name="value">The value, in the study's direction.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="step"/> is negative.</exception>
    /// <exception cref="InvalidOperationException">The study has several objectives (pruning needs one).</exception>
    public void Report(long step, double value)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        if (_study.Directions.Length != 1)
        {
            throw new InvalidOperationException($"Trial.Report needs a single-objective study; '{_study.Name}' has {_study.Directions.Length} objectives.");
        }

        _study.Storage.SetIntermediateValue(Id, step, value);
        _intermediate = _intermediate.SetItem(step, value);
    }

    /// <summary>Asks the study's pruner whether this trial should stop now (after the latest <see cref="Report"/>).</summary>
    /// <returns><see langword="true"/> when the objective should stop and throw <see cref="TrialPrunedException"/>.</returns>
    public bool ShouldPrune()
    {
        if (_study.Directions.Length != 1 || _intermediate.IsEmpty || _study.Pruner is NopPruner)
        {
            return false;
        }

        IReadOnlyList<FrozenTrial> trials = _study.Storage.GetTrials(_study.Info.Id);
        FrozenTrial self = trials.FirstOrDefault(t => t.Id == Id) ?? _study.Storage.GetTrial(Id);
        return _study.Pruner.ShouldPrune(new PrunerArguments(_study.Directions[0], trials, self, (key, value) => _study.Storage.SetTrialAttribute(Id, key, value)));
    }

    /// <summary>Stores a free-form attribute with the trial (shown by nothing; for your own bookkeeping).</summary>
    /// <param name="key">The key.</param>
    /// <param name="value">The value.</param>
    public void SetAttribute(string key, string value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        _study.Storage.SetTrialAttribute(Id, key, value);
    }

    internal void StartHeartbeat(TimeSpan interval)
    {
        _heartbeat = new Timer(_ =>
        {
            try
            {
                _study.Storage.RecordHeartbeat(Id);
            }
            catch (Exception)
            {
                // A missed heartbeat is harmless unless they all fail; then the trial is marked failed, which is the truth.
            }
        }, null, interval, interval);
    }

    internal void StopHeartbeat()
    {
        Interlocked.Exchange(ref _heartbeat, null)?.Dispose();
    }

    internal void MarkPruned(long step)
    {
        IsPruned = true;
        PrunedAtStep = step;
    }

    private object Suggest(string name, ParameterDistribution distribution)
        => distribution.ToExternal(SuggestInternal(name, distribution));

    private double SuggestInternal(string name, ParameterDistribution distribution)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (_parameters.TryGetValue(name, out var existing))
        {
            if (existing.Distribution != distribution)
            {
                throw new ArgumentException(
                    $"Parameter '{name}' was already suggested in trial {Number} as {existing.Distribution.Describe()}; it is now asked as {distribution.Describe()}. Give each distinct parameter its own name.",
                    nameof(name));
            }

            return existing.Value;
        }

        FrozenTrial? earlier = _history.FirstOrDefault(t => t.Distributions.TryGetValue(name, out ParameterDistribution? d) && d.GetType() != distribution.GetType());
        if (earlier is not null)
        {
            throw new ArgumentException(
                $"Parameter '{name}' was {earlier.Distributions[name].Describe()} in trial {earlier.Number}; it is now asked as {distribution.Describe()}. A name keeps its kind (float, int, categorical) within a study: rename it or start a new study.",
                nameof(name));
        }

        double value = IsSingleValued(distribution, out double only)
            ? only
            : _study.Sampler.Sample(new SamplerArguments(_study.Directions, _history, Number, name, distribution));
        if (!distribution.Contains(value))
        {
            throw new InvalidOperationException(
                $"Sampler {_study.Sampler.GetType().Name} returned {value.ToString("R", CultureInfo.InvariantCulture)} for '{name}', outside {distribution.Describe()}.");
        }

        _study.Storage.SetTrialParameter(Id, name, distribution, value);
        _parameters[name] = (distribution, value);
        return value;
    }

    private static bool IsSingleValued(ParameterDistribution distribution, out double value)
    {
        (bool single, value) = distribution switch
        {
            FloatDistribution f when f.Low == f.High => (true, f.Low),
            IntDistribution i when i.Low == i.High => (true, (double)i.Low),
            CategoricalDistribution c when c.Choices.Length == 1 => (true, 0.0),
            _ => (false, 0.0),
        };
        return single;
    }
}
