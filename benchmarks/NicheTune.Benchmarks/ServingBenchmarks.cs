using System.Collections.Concurrent;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using NicheTune.Benchmarks.Serving;
using NicheTune.Deployment;

namespace NicheTune.Benchmarks;

/// <summary>
/// A served classifier on the benchmark model's body (GPT-2, d 256, 4 layers, 128 positions; mean-pooled, 8 classes)
/// under 16 concurrent callers: NicheModel with micro-batching (up to 16 requests per forward, 2 ms window) against the
/// same model answering one request per forward. Each invocation answers <see cref="Predictions"/> requests (16 callers
/// × 8 each), so the table's time is per prediction, for short queries and for sentences; p50/p99 request latency is printed at the end of each run.
/// </summary>
[Config(typeof(Config))]
public class ServingBenchmarks
{
    public const int Callers = ServingWorkload.Callers;
    public const int PerCaller = ServingWorkload.PerCaller;
    public const int Predictions = ServingWorkload.Predictions;

    private readonly ConcurrentDictionary<string, ConcurrentBag<double>> _latencies = new();
    private string[] _texts = [];

    /// <summary>Short queries (5–15 bytes: per-call overhead dominates) or sentences (45–100 bytes: arithmetic dominates).</summary>
    [Params("queries", "sentences")]
    public string Input { get; set; } = "sentences";
    private ServingWorkload? _workload;
    private NicheModel? _batched;
    private NicheModel? _oneByOne;

    [GlobalSetup]
    public void Setup()
    {
        _texts = ServingWorkload.Texts(Input);
        _workload = ServingWorkload.Create();
        _batched = _workload.Load(microBatched: true);
        _oneByOne = _workload.Load(microBatched: false);
        Console.WriteLine($"// Serving: {ServingWorkload.Describe()}");
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Predictions)]
    public Task OneByOne() => Run(_oneByOne!, nameof(OneByOne));

    [Benchmark(OperationsPerInvoke = Predictions)]
    public Task MicroBatched() => Run(_batched!, nameof(MicroBatched));

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach ((string name, ConcurrentBag<double> values) in _latencies)
        {
            Console.WriteLine($"// Serving latency {name} ({Input}): p50 {ServingWorkload.Percentile(values, 0.50):F1} ms, p99 {ServingWorkload.Percentile(values, 0.99):F1} ms over {values.Count} requests");
        }

        if (_batched is not null)
        {
            Console.WriteLine($"// Serving MicroBatched ({Input}): {_batched.RequestCount} requests in {_batched.BatchCount} forward passes");
        }

        _batched?.Dispose();
        _oneByOne?.Dispose();
        _workload?.Dispose();
    }

    private Task Run(NicheModel model, string name) => ServingWorkload.Run(model, _texts, _latencies.GetOrAdd(name, _ => []));

    // One launch, one warm-up, five measured invocations of 128 predictions each: about a minute on two cores.
    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddColumn(StatisticColumn.Median, StatisticColumn.Min);
            AddJob(Job.Default
                .WithLaunchCount(1)
                .WithWarmupCount(1)
                .WithIterationCount(5)
                .WithInvocationCount(1)
                .WithUnrollFactor(1)
                .WithId("Serving"));
        }
    }
}
