using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Diagnostics.Metrics;
using FluentAssertions;
using Microsoft.Extensions.Logging;
using NicheTune.Deployment;
using NicheTune.Evaluation;
using NicheTune.Monitoring;
using NicheTune.Tests.Support;
using NicheTune.Text;
using Xunit;

namespace NicheTune.Tests.Monitoring;

public sealed class ModelMonitorTests
{
    private static readonly Lazy<NGramLanguageModel> ReferenceLm = new(() =>
        new NGramLanguageModel(3, ByteTokenizer.VocabularySize).Fit(TestData.FoldocEntries.Take(500).Select(e => new ByteTokenizer().Encode(e.Text))));

    [Fact]
    public void Observe_SameDistributionStream_RaisesNoAlert()
    {
        MonitorReference reference = MonitorReference.Capture(TestData.FoldocEntries.Skip(500).Take(500).Select(e => TextObservation(e.Text)));
        using var monitor = new ModelMonitor(reference, new ModelMonitorOptions { WindowSize = 500, EvaluateEvery = 50 });
        var alerts = new List<DriftAlert>();
        monitor.Alert += (_, a) => alerts.Add(a);

        foreach (FoldocEntry entry in TestData.FoldocEntries.Skip(1000).Take(500))
        {
            monitor.Observe(TextObservation(entry.Text));
        }

        DriftReport report = monitor.Evaluate();
        alerts.Should().BeEmpty();
        report.Level.Should().Be(DriftLevel.None);
        report[DriftStatistic.InputLength].PopulationStabilityIndex.Should().BeLessThan(0.1);
        report[DriftStatistic.InputPerplexity].PopulationStabilityIndex.Should().BeLessThan(0.1);
        report[DriftStatistic.InputLength].WindowCount.Should().Be(500);
    }

    [Fact]
    public void Observe_WordNetGlossesAgainstFoldocReference_AlertsOnLengthAndPerplexity()
    {
        MonitorReference reference = MonitorReference.Capture(TestData.FoldocEntries.Skip(500).Take(500).Select(e => TextObservation(e.Text)));
        using var monitor = new ModelMonitor(reference, new ModelMonitorOptions { WindowSize = 500, EvaluateEvery = 50 });
        var alerts = new ConcurrentBag<DriftAlert>();
        monitor.Alert += (_, a) => alerts.Add(a);

        foreach (string gloss in TestData.WordNetGlosses().Take(500))
        {
            monitor.Observe(TextObservation(gloss));
        }

        DriftReport report = monitor.Evaluate();
        report[DriftStatistic.InputLength].Level.Should().Be(DriftLevel.Alert);
        report[DriftStatistic.InputPerplexity].Level.Should().Be(DriftLevel.Alert);
        report[DriftStatistic.InputLength].PopulationStabilityIndex.Should().BeGreaterThan(0.25);
        alerts.Select(a => a.Statistic).Should().Contain([DriftStatistic.InputLength, DriftStatistic.InputPerplexity]);
        alerts.Should().OnlyContain(a => a.Monitor == "default" && a.Level > a.PreviousLevel);
    }

    [Fact]
    public void Evaluate_ShiftedLabels_RaisesOneAlertThroughEventLoggerAndMeter()
    {
        MonitorReference reference = MonitorReference.Capture(Enumerable.Range(0, 100).Select(i => new MonitorObservation { PredictedLabel = i % 2 == 0 ? "a" : "b" }));
        var logger = new ListLogger();
        string name = "labels-" + Guid.NewGuid().ToString("N");
        long alertCount = 0;
        double? psiGauge = null;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == ModelMonitor.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            if (instrument.Name == "nichetune.monitor.alerts" && HasTag(tags, "monitor", name))
            {
                Interlocked.Add(ref alertCount, value);
            }
        });
        listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
        {
            if (instrument.Name == "nichetune.monitor.psi" && HasTag(tags, "monitor", name) && HasTag(tags, "statistic", "PredictedLabel"))
            {
                psiGauge = value;
            }
        });
        listener.Start();
        using var monitor = new ModelMonitor(reference, new ModelMonitorOptions { Name = name, WindowSize = 100, EvaluateEvery = 10, MinimumWindowCount = 20 }, logger);
        var alerts = new List<DriftAlert>();
        monitor.Alert += (_, a) => alerts.Add(a);

        for (int i = 0; i < 100; i++)
        {
            monitor.Observe(new MonitorObservation { PredictedLabel = i % 10 == 0 ? "b" : "a" });
        }

        listener.RecordObservableInstruments();

        // 90 % "a", 10 % "b" against 50/50: PSI = 0.4·ln 1.8 + 0.4·ln 5 = 0.879 from the first evaluation with 20 observations on.
        alerts.Should().ContainSingle().Which.Should().Match<DriftAlert>(a => a.Statistic == DriftStatistic.PredictedLabel && a.Level == DriftLevel.Alert && a.PreviousLevel == DriftLevel.None);
        monitor.LastReport![DriftStatistic.PredictedLabel].PopulationStabilityIndex.Should().BeApproximately(0.8788898309, 1e-9);
        logger.Entries.Should().ContainSingle(e => e.EventId.Id == 102 && e.Level == LogLevel.Error && e.Message.Contains("PredictedLabel"));
        Interlocked.Read(ref alertCount).Should().Be(1);
        psiGauge.Should().BeApproximately(0.8788898309, 1e-9);
    }

    [Fact]
    public void Evaluate_BelowMinimumWindowCount_DoesNotAlert()
    {
        MonitorReference reference = MonitorReference.Capture(Enumerable.Range(0, 100).Select(i => new MonitorObservation { InputLength = i }));
        using var monitor = new ModelMonitor(reference, new ModelMonitorOptions { WindowSize = 1000, EvaluateEvery = 1, MinimumWindowCount = 50 });
        var alerts = new List<DriftAlert>();
        monitor.Alert += (_, a) => alerts.Add(a);

        for (int i = 0; i < 49; i++)
        {
            monitor.Observe(new MonitorObservation { InputLength = 1000 + i });
        }

        alerts.Should().BeEmpty();
        monitor.LastReport![DriftStatistic.InputLength].PopulationStabilityIndex.Should().BeGreaterThan(0.25);
        monitor.Observe(new MonitorObservation { InputLength = 2000 });
        alerts.Should().ContainSingle().Which.Level.Should().Be(DriftLevel.Alert);
    }

    [Fact]
    public void Evaluate_CustomThresholds_WarnBeforeAlert()
    {
        MonitorReference reference = MonitorReference.Capture(Enumerable.Range(0, 100).Select(i => new MonitorObservation { PredictedLabel = i % 2 == 0 ? "a" : "b" }));
        var thresholds = new Dictionary<DriftStatistic, DriftThresholds> { [DriftStatistic.PredictedLabel] = new(PsiWarning: 0.5, PsiAlert: 2) };
        using var monitor = new ModelMonitor(reference, new ModelMonitorOptions { WindowSize = 100, EvaluateEvery = 100, MinimumWindowCount = 10, Thresholds = thresholds });
        for (int i = 0; i < 100; i++)
        {
            monitor.Observe(new MonitorObservation { PredictedLabel = i % 10 == 0 ? "b" : "a" });
        }

        monitor.LastReport![DriftStatistic.PredictedLabel].Level.Should().Be(DriftLevel.Warning, "PSI 0.879 lies between 0.5 and 2");
    }

    [Fact]
    public void Observe_EightThreadsTenThousandEach_LosesNoCount()
    {
        MonitorReference reference = MonitorReference.Capture(Enumerable.Range(0, 200).Select(i => new MonitorObservation
        {
            InputLength = i % 37,
            PredictedLabel = (i % 3).ToString(System.Globalization.CultureInfo.InvariantCulture),
            Probabilities = [0.2f + (i % 5) * 0.1f, 0.8f - (i % 5) * 0.1f],
        }));
        string name = "threads-" + Guid.NewGuid().ToString("N");
        long counted = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == ModelMonitor.MeterName && instrument.Name == "nichetune.monitor.observations")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            if (HasTag(tags, "monitor", name))
            {
                Interlocked.Add(ref counted, value);
            }
        });
        listener.Start();
        using var monitor = new ModelMonitor(reference, new ModelMonitorOptions { Name = name, WindowSize = 100_000, EvaluateEvery = 997 });

        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, t =>
        {
            for (int i = 0; i < 10_000; i++)
            {
                monitor.Observe(new MonitorObservation
                {
                    InputLength = (t * 10_000 + i) % 50,
                    PredictedLabel = (i % 4).ToString(System.Globalization.CultureInfo.InvariantCulture),
                    Probabilities = [0.6f, 0.4f],
                });
            }
        });

        monitor.TotalObservations.Should().Be(80_000);
        monitor.WindowCount.Should().Be(80_000);
        foreach (DriftStatistic statistic in new[] { DriftStatistic.InputLength, DriftStatistic.PredictedLabel, DriftStatistic.Confidence, DriftStatistic.Entropy })
        {
            monitor.WindowCounts(statistic).Sum().Should().Be(80_000, statistic.ToString());
        }

        monitor.WindowCounts(DriftStatistic.PredictedLabel)[^1].Should().Be(20_000, "label \"3\" was never predicted in the reference, so every one lands in (other)");
        Interlocked.Read(ref counted).Should().Be(80_000);
        monitor.Evaluate()[DriftStatistic.InputLength].WindowCount.Should().Be(80_000);
    }

    [Fact]
    public void Observe_MoreThanWindowSize_KeepsTheLatest()
    {
        MonitorReference reference = MonitorReference.Capture(Enumerable.Range(0, 10).Select(i => new MonitorObservation { InputLength = i }));
        using var monitor = new ModelMonitor(reference, new ModelMonitorOptions { WindowSize = 10, EvaluateEvery = 1000, MinimumWindowCount = 1 });
        for (int i = 0; i < 25; i++)
        {
            monitor.Observe(new MonitorObservation { InputLength = i < 15 ? 0 : 100 });
        }

        monitor.WindowCount.Should().Be(10);
        monitor.TotalObservations.Should().Be(25);
        ImmutableArray<long> counts = monitor.WindowCounts(DriftStatistic.InputLength);
        counts[^1].Should().Be(10, "only the last ten (all 100, above every edge) remain");
        counts.Sum().Should().Be(10);
    }

    [Fact]
    public void Observe_TimeWindow_DropsExpiredObservations()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        MonitorReference reference = MonitorReference.Capture(Enumerable.Range(0, 10).Select(i => new MonitorObservation { InputLength = i }));
        using var monitor = new ModelMonitor(reference, new ModelMonitorOptions { WindowSize = 100, WindowDuration = TimeSpan.FromMinutes(5), MinimumWindowCount = 1 }, timeProvider: clock);
        for (int i = 0; i < 6; i++)
        {
            monitor.Observe(new MonitorObservation { InputLength = i });
            clock.Now += TimeSpan.FromMinutes(1);
        }

        // Observations at minutes 0..5, now minute 6: the one at minute 0 is older than 5 minutes.
        monitor.Evaluate().WindowCount.Should().Be(5);
        clock.Now += TimeSpan.FromMinutes(10);
        monitor.Evaluate().WindowCount.Should().Be(0);
        monitor.WindowCounts(DriftStatistic.InputLength).Sum().Should().Be(0);
        double.IsNaN(monitor.LastReport![DriftStatistic.InputLength].PopulationStabilityIndex).Should().BeTrue("the window is empty");
    }

    [Fact]
    public void Observe_PredictionRecord_ReadsEveryStatistic()
    {
        var records = Enumerable.Range(0, 50).Select(i => Record(i, embedding: [1, i % 5, 0])).ToList();
        MonitorReference reference = MonitorReference.Capture(records);
        reference.Statistics.Should().BeEquivalentTo(Enum.GetValues<DriftStatistic>());
        reference.EmbeddingCentroid.Should().Equal(1f, 2f, 0f);
        reference.Categories(DriftStatistic.PredictedLabel).Should().Equal("neg", "pos", MonitorReference.OtherLabel);

        using var monitor = new ModelMonitor(reference, new ModelMonitorOptions { WindowSize = 100, MinimumWindowCount = 10 });
        IPredictionObserver observer = monitor;
        foreach (PredictionRecord r in records)
        {
            observer.Observe(r);
        }

        DriftReport report = monitor.Evaluate();
        report.Statistics.Should().HaveCount(7).And.OnlyContain(s => s.WindowCount == 50 && s.PopulationStabilityIndex < 1e-9, "the same records as the reference");
        FluentActions.Invoking(() => monitor.Observe(Record(0, embedding: [1, 2]))).Should().Throw<ArgumentException>().WithMessage("*2 dimensions but the reference centroid has 3*");
    }

    [Fact]
    public void ToJson_RoundTrip_KeepsBinsAndGivesTheSameDrift()
    {
        var records = Enumerable.Range(0, 80).Select(i => Record(i, embedding: [i % 3, 1, 2])).ToList();
        MonitorReference reference = MonitorReference.Capture(records);
        using var folder = new TempFolder();
        string path = Path.Combine(folder.Path, "package", "monitor-reference.json");
        reference.Save(path);
        MonitorReference loaded = MonitorReference.Load(path);

        Directory.GetFiles(Path.GetDirectoryName(path)!).Should().ContainSingle("the temporary file is renamed into place");
        loaded.ToJson().Should().Be(reference.ToJson());
        loaded.ObservationCount.Should().Be(80);
        foreach (DriftStatistic s in reference.Statistics)
        {
            loaded.BinEdges(s).Should().Equal(reference.BinEdges(s));
            loaded.Proportions(s).Should().Equal(reference.Proportions(s));
            loaded.Categories(s).Should().Equal(reference.Categories(s));
        }

        FluentActions.Invoking(() => MonitorReference.FromJson("{\"format\":\"other\"}")).Should().Throw<InvalidDataException>().WithMessage("*nichetune.monitor-reference*");
        FluentActions.Invoking(() => MonitorReference.FromJson(reference.ToJson().Replace("\"proportions\": [", "\"proportions\": [5, ", StringComparison.Ordinal)))
            .Should().Throw<InvalidDataException>().WithMessage("*inconsistent*");
    }

    [Fact]
    public void Constructor_InvalidOptions_ListsEveryProblem()
    {
        MonitorReference reference = MonitorReference.Capture([new MonitorObservation { InputLength = 1 }]);
        FluentActions.Invoking(() => new ModelMonitor(reference, new ModelMonitorOptions { WindowSize = 0, MinimumWindowCount = 5, WindowDuration = TimeSpan.Zero }))
            .Should().Throw<ArgumentException>().WithMessage("*WindowSize*WindowDuration must be positive*MinimumWindowCount (5) exceeds WindowSize (0)*");
    }

    internal static MonitorObservation TextObservation(string text)
    {
        int[] ids = new ByteTokenizer().Encode(text);
        return new MonitorObservation { InputLength = ids.Length, UnknownTokenRate = 0, InputPerplexity = ReferenceLm.Value.Perplexity([ids]) };
    }

    private static PredictionRecord Record(int i, ImmutableArray<float> embedding)
    {
        float p = 0.5f + (i % 5) * 0.1f;
        return new PredictionRecord(DateTimeOffset.UnixEpoch.AddSeconds(i), PredictionKind.Classify, "text " + i, 10 + (i % 7), i % 4 == 0 ? 1 : 0,
            [p, 1 - p], i % 3 == 0 ? "pos" : "neg", -20.0 - i % 6, embedding, null, TimeSpan.FromMilliseconds(3));
    }

    private static bool HasTag(ReadOnlySpan<KeyValuePair<string, object?>> tags, string key, string value)
    {
        foreach (KeyValuePair<string, object?> tag in tags)
        {
            if (tag.Key == key && value.Equals(tag.Value))
            {
                return true;
            }
        }

        return false;
    }

    private sealed class ManualClock(DateTimeOffset start) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = start;

        public override DateTimeOffset GetUtcNow() => Now;
    }

    private sealed class ListLogger : ILogger<ModelMonitor>
    {
        public ConcurrentQueue<(LogLevel Level, EventId EventId, string Message)> Entries { get; } = new();

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => Entries.Enqueue((logLevel, eventId, formatter(state, exception)));
    }
}
