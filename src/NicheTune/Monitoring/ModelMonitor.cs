using System.Collections.Immutable;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using NicheTune.Deployment;

namespace NicheTune.Monitoring;

/// <summary>
/// Watches a served model for drift: every observation's input statistics (length, unknown-token rate, perplexity
/// under a reference LM, embedding distance to the reference centroid) and output statistics (predicted label,
/// confidence, entropy) are binned with the <see cref="MonitorReference"/>'s bins into a rolling window (by count and
/// optionally time), and the window is compared with the reference through PSI, KL and Jensen–Shannon divergence.
/// A statistic that crosses its <see cref="DriftThresholds"/> raises <see cref="Alert"/>, logs through
/// <see cref="ILogger"/>, and counts in the <c>NicheTune.Monitoring</c> meter.
/// </summary>
/// <remarks>
/// Thread-safe: the bins of an observation are computed without a lock, then one short lock updates the window's
/// ring and counts; no observation is lost or double-counted. Evaluation runs on the observing thread every
/// <see cref="ModelMonitorOptions.EvaluateEvery"/> observations (a few hundred floating-point operations).
/// Metrics: counters <c>nichetune.monitor.observations</c> and <c>nichetune.monitor.alerts</c> (tags <c>monitor</c>,
/// <c>statistic</c>, <c>level</c>), observable gauges <c>nichetune.monitor.psi</c>,
/// <c>nichetune.monitor.jensen_shannon</c> (tags <c>monitor</c>, <c>statistic</c>) and <c>nichetune.monitor.window</c>.
/// </remarks>
public sealed class ModelMonitor : IPredictionObserver, IDisposable
{
    /// <summary>The meter's name, for OpenTelemetry's <c>AddMeter</c> or <c>dotnet-counters monitor --counters NicheTune.Monitoring</c>.</summary>
    public const string MeterName = "NicheTune.Monitoring";

    private const int Stats = MonitorReference.StatisticCount;

    private readonly ModelMonitorOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Meter _meter;
    private readonly Counter<long> _observations;
    private readonly Counter<long> _alerts;
    private readonly KeyValuePair<string, object?> _monitorTag;
    private readonly StatisticBins?[] _bins = new StatisticBins?[Stats];
    private readonly object _window = new();
    private readonly short[] _ring;
    private readonly long[] _ringTicks;
    private readonly long[][] _counts = new long[Stats][];
    private readonly object _evaluation = new();
    private readonly DriftLevel[] _levels = new DriftLevel[Stats];
    private int _head;
    private int _size;
    private long _total;
    private DriftReport? _last;

    /// <summary>Creates a monitor for traffic that should look like <paramref name="reference"/>.</summary>
    /// <param name="reference">The reference window, captured at export time.</param>
    /// <param name="options">Window, thresholds and name; <see langword="null"/> for the defaults.</param>
    /// <param name="logger">Receives warnings, alerts and recoveries; <see langword="null"/> for none.</param>
    /// <param name="timeProvider">The clock of time-based windows and reports; <see langword="null"/> for <see cref="TimeProvider.System"/>.</param>
    /// <param name="meterFactory">Creates the meter (as a host's DI container does); <see langword="null"/> for a meter of its own, disposed with the monitor.</param>
    /// <exception cref="ArgumentException">The options are invalid (every problem is listed).</exception>
    public ModelMonitor(MonitorReference reference, ModelMonitorOptions? options = null, ILogger<ModelMonitor>? logger = null, TimeProvider? timeProvider = null, IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(reference);
        _options = options ?? new ModelMonitorOptions();
        _options.Validate();
        Reference = reference;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
        for (int s = 0; s < Stats; s++)
        {
            if (reference.TryGetBins((DriftStatistic)s, out StatisticBins bins))
            {
                _bins[s] = bins;
                _counts[s] = new long[bins.BinCount];
            }
            else
            {
                _counts[s] = [];
            }
        }

        _ring = new short[_options.WindowSize * Stats];
        _ringTicks = new long[_options.WindowSize];
        _monitorTag = new KeyValuePair<string, object?>("monitor", _options.Name);
        _meter = meterFactory?.Create(new MeterOptions(MeterName) { Version = "1.0" }) ?? new Meter(MeterName, "1.0");
        _observations = _meter.CreateCounter<long>("nichetune.monitor.observations", "{observation}", "Observations a model monitor received.");
        _alerts = _meter.CreateCounter<long>("nichetune.monitor.alerts", "{alert}", "Statistics that rose to a drift warning or alert.");
        _meter.CreateObservableGauge("nichetune.monitor.psi", () => Gauge(s => s.PopulationStabilityIndex), null, "Population stability index of each statistic at the last evaluation.");
        _meter.CreateObservableGauge("nichetune.monitor.jensen_shannon", () => Gauge(s => s.JensenShannon), "bit", "Jensen–Shannon divergence of each statistic at the last evaluation.");
        _meter.CreateObservableGauge("nichetune.monitor.window", () => new Measurement<long>(WindowCount, _monitorTag), "{observation}", "Observations in the rolling window.");
    }

    /// <summary>Raised when a statistic rises to <see cref="DriftLevel.Warning"/> or <see cref="DriftLevel.Alert"/>, on the thread that evaluated. A handler that throws is logged, not propagated.</summary>
    public event EventHandler<DriftAlert>? Alert;

    /// <summary>The reference the window is compared with.</summary>
    public MonitorReference Reference { get; }

    /// <summary>The monitor's name (<see cref="ModelMonitorOptions.Name"/>).</summary>
    public string Name => _options.Name;

    /// <summary>Observations received since the monitor was created.</summary>
    public long TotalObservations => Interlocked.Read(ref _total);

    /// <summary>Observations in the rolling window now (time-expired ones leave at the next observation or evaluation).</summary>
    public int WindowCount
    {
        get
        {
            lock (_window)
            {
                return _size;
            }
        }
    }

    /// <summary>The last evaluation's report, or <see langword="null"/> before the first.</summary>
    public DriftReport? LastReport => Volatile.Read(ref _last);

    /// <summary>Observes one served request (what <c>NicheModel</c> calls for each request).</summary>
    /// <param name="record">The request and its answer.</param>
    /// <exception cref="ArgumentException">The record's embedding does not match the reference centroid's length.</exception>
    public void Observe(PredictionRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        Observe(MonitorObservation.FromRecord(record, _options.InputPerplexity));
    }

    /// <summary>Observes one request described by hand.</summary>
    /// <param name="observation">The measured values; unset ones are skipped.</param>
    /// <exception cref="ArgumentException">The embedding does not match the reference centroid's length.</exception>
    public void Observe(MonitorObservation observation)
    {
        ArgumentNullException.ThrowIfNull(observation);
        ObservationValues values = ObservationValues.From(observation, Reference.EmbeddingCentroid);
        Span<short> bins = stackalloc short[Stats];
        for (int s = 0; s < Stats; s++)
        {
            StatisticBins? b = _bins[s];
            bins[s] = b is null ? (short)-1
                : s == (int)DriftStatistic.PredictedLabel ? (values.Label is { } label ? (short)b.BinOf(label) : (short)-1)
                : values.Get(s) is { } v ? (short)b.BinOf(v) : (short)-1;
        }

        long ticks = (observation.Timestamp ?? _time.GetUtcNow()).UtcTicks;
        lock (_window)
        {
            ExpireLocked(_time.GetUtcNow().UtcTicks);
            if (_size == _options.WindowSize)
            {
                RemoveOldestLocked();
            }

            int slot = (_head + _size) % _options.WindowSize;
            bins.CopyTo(_ring.AsSpan(slot * Stats, Stats));
            _ringTicks[slot] = ticks;
            _size++;
            for (int s = 0; s < Stats; s++)
            {
                if (bins[s] >= 0)
                {
                    _counts[s][bins[s]]++;
                }
            }
        }

        long n = Interlocked.Increment(ref _total);
        _observations.Add(1, _monitorTag);
        if (n % _options.EvaluateEvery == 0)
        {
            Evaluate();
        }
    }

    /// <summary>Compares the window with the reference now, updates the gauges, and raises alerts for statistics whose level rose.</summary>
    /// <returns>The report.</returns>
    public DriftReport Evaluate()
    {
        var counts = new long[Stats][];
        long windowCount;
        lock (_window)
        {
            ExpireLocked(_time.GetUtcNow().UtcTicks);
            windowCount = _size;
            for (int s = 0; s < Stats; s++)
            {
                counts[s] = (long[])_counts[s].Clone();
            }
        }

        DateTimeOffset now = _time.GetUtcNow();
        var entries = ImmutableArray.CreateBuilder<StatisticDrift>();
        for (int s = 0; s < Stats; s++)
        {
            if (_bins[s] is not { } bins)
            {
                continue;
            }

            long n = counts[s].Sum();
            double[] reference = [.. bins.Proportions];
            double[] window = [.. counts[s].Select(c => n == 0 ? 0 : c / (double)n)];
            double psi = n == 0 ? double.NaN : Divergence.PopulationStabilityIndex(reference, window, _options.Epsilon);
            double kl = n == 0 ? double.NaN : Divergence.KullbackLeibler(window, reference, _options.Epsilon);
            double js = n == 0 ? double.NaN : Divergence.JensenShannon(reference, window);
            DriftLevel level = n < _options.MinimumWindowCount ? DriftLevel.None : _options.ThresholdsOf((DriftStatistic)s).LevelOf(psi, js);
            entries.Add(new StatisticDrift((DriftStatistic)s, n, psi, kl, js, level, bins.Proportions, [.. window]));
        }

        var report = new DriftReport(_options.Name, now, windowCount, entries.ToImmutable());
        var raised = new List<DriftAlert>();
        lock (_evaluation)
        {
            foreach (StatisticDrift drift in report.Statistics)
            {
                DriftLevel previous = _levels[(int)drift.Statistic];
                _levels[(int)drift.Statistic] = drift.Level;
                if (drift.Level > previous)
                {
                    raised.Add(new DriftAlert(_options.Name, drift.Statistic, drift.Level, previous, drift, now));
                }
                else if (drift.Level == DriftLevel.None && previous != DriftLevel.None)
                {
                    Log.DriftRecovered(_logger, _options.Name, drift.Statistic, drift.PopulationStabilityIndex, previous);
                }
            }

            Volatile.Write(ref _last, report);
        }

        foreach (DriftAlert alert in raised)
        {
            if (alert.Level == DriftLevel.Alert)
            {
                Log.DriftAlert(_logger, alert.Monitor, alert.Statistic, alert.Drift.PopulationStabilityIndex, alert.Drift.JensenShannon, alert.Drift.WindowCount);
            }
            else
            {
                Log.DriftWarning(_logger, alert.Monitor, alert.Statistic, alert.Drift.PopulationStabilityIndex, alert.Drift.JensenShannon, alert.Drift.WindowCount);
            }

            _alerts.Add(1, _monitorTag, new("statistic", alert.Statistic.ToString()), new("level", alert.Level.ToString()));
            try
            {
                Alert?.Invoke(this, alert);
            }
            catch (Exception e)
            {
                Log.AlertHandlerFailed(_logger, e, _options.Name);
            }
        }

        return report;
    }

    /// <summary>The window's count in each bin of a statistic (a snapshot).</summary>
    /// <param name="statistic">The statistic.</param>
    /// <returns>Counts per bin, in the reference's bin order; empty when the reference has no bins for it.</returns>
    public ImmutableArray<long> WindowCounts(DriftStatistic statistic)
    {
        lock (_window)
        {
            return [.. _counts[(int)statistic]];
        }
    }

    /// <summary>Disposes the meter when the monitor created it.</summary>
    public void Dispose() => _meter.Dispose();

    private void ExpireLocked(long nowTicks)
    {
        if (_options.WindowDuration is not { } duration)
        {
            return;
        }

        long oldest = nowTicks - duration.Ticks;
        while (_size > 0 && _ringTicks[_head] < oldest)
        {
            RemoveOldestLocked();
        }
    }

    private void RemoveOldestLocked()
    {
        ReadOnlySpan<short> old = _ring.AsSpan(_head * Stats, Stats);
        for (int s = 0; s < Stats; s++)
        {
            if (old[s] >= 0)
            {
                _counts[s][old[s]]--;
            }
        }

        _head = (_head + 1) % _options.WindowSize;
        _size--;
    }

    private IEnumerable<Measurement<double>> Gauge(Func<StatisticDrift, double> value)
    {
        if (Volatile.Read(ref _last) is not { } report)
        {
            yield break;
        }

        foreach (StatisticDrift s in report.Statistics)
        {
            if (!double.IsNaN(value(s)))
            {
                yield return new Measurement<double>(value(s), _monitorTag, new("statistic", s.Statistic.ToString()));
            }
        }
    }
}
