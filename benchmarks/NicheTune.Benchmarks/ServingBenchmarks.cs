using System.Collections.Concurrent;
using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using NicheTune.Benchmarks.Workload;
using NicheTune.Deployment;
using NicheTune.Models;
using NicheTune.Text;
using TorchSharp;

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
    public const int Callers = 16;
    public const int PerCaller = 8;
    public const int Predictions = Callers * PerCaller;

    // Computing-dictionary texts of varied lengths, so batches are padded as in real traffic.
    private static readonly string[] Queries =
    [
        "SMTP relay", "lazy evaluation", "page fault", "DEC PDP-11", "kludge", "PCI Express", "QAM modem", "heisenbug",
    ];

    private static readonly string[] Sentences =
    [
        "A network protocol that routes packets between autonomous systems on the Internet.",
        "A programming language with lazy evaluation and a strong static type system.",
        "The part of an operating system that schedules processes and manages memory for them.",
        "A company that made minicomputers in the 1970s.",
        "Slang for a program that works but that nobody understands any more, kept running out of fear.",
        "A bus standard for connecting peripheral cards to a personal computer's motherboard at high speed.",
        "Modulation scheme used by modems on telephone lines.",
        "An error in a program that makes it produce a wrong result or crash, found by testing or by users.",
    ];

    private readonly ConcurrentDictionary<string, ConcurrentBag<double>> _latencies = new();
    private string[] _texts = [];

    /// <summary>Short queries (5–15 bytes: per-call overhead dominates) or sentences (45–100 bytes: arithmetic dominates).</summary>
    [Params("queries", "sentences")]
    public string Input { get; set; } = "sentences";
    private string? _folder;
    private NicheModel? _batched;
    private NicheModel? _oneByOne;

    [GlobalSetup]
    public void Setup()
    {
        torch.manual_seed(1);
        _texts = Input == "queries" ? Queries : Sentences;
        var shape = ModelShape.Benchmark;
        var tokenizer = new ByteTokenizer();
        using var classifier = new MeanPoolClassifier(new Gpt2LMHeadModel(shape.ToConfig()), 8, dropout: 0);
        _folder = Path.Combine(Path.GetTempPath(), "nichetune-serving-bench-" + Guid.NewGuid().ToString("N")[..8]);
        ModelPackage.Export(classifier, _folder, new ModelPackageOptions
        {
            Tokenizer = tokenizer,
            Labels = new LabelMap([.. Enumerable.Range(0, 8).Select(i => $"class {i}")]),
            MaxLength = shape.ContextLength,
        });
        _batched = NicheModel.Load(_folder, new NicheModelOptions { MaxBatchSize = Callers, BatchWindow = TimeSpan.FromMilliseconds(2) });
        _oneByOne = NicheModel.Load(_folder, new NicheModelOptions { MaxBatchSize = 1 });
        Console.WriteLine($"// Serving: {shape.Describe()} body, mean-pooled 8-class head; {Callers} callers × {PerCaller} requests; {torch.get_num_threads()} libtorch threads");
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
            double[] sorted = [.. values.Order()];
            Console.WriteLine($"// Serving latency {name} ({Input}): p50 {Percentile(sorted, 0.50):F1} ms, p99 {Percentile(sorted, 0.99):F1} ms over {sorted.Length} requests");
        }

        if (_batched is not null)
        {
            Console.WriteLine($"// Serving MicroBatched ({Input}): {_batched.RequestCount} requests in {_batched.BatchCount} forward passes");
        }

        _batched?.Dispose();
        _oneByOne?.Dispose();
        if (_folder is not null)
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    private async Task Run(NicheModel model, string name)
    {
        ConcurrentBag<double> latencies = _latencies.GetOrAdd(name, _ => []);
        await Task.WhenAll(Enumerable.Range(0, Callers).Select(caller => Task.Run(async () =>
        {
            for (int i = 0; i < PerCaller; i++)
            {
                long started = Stopwatch.GetTimestamp();
                await model.ClassifyAsync(_texts[(caller + i) % _texts.Length]).ConfigureAwait(false);
                latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
        })));
    }

    private static double Percentile(double[] sorted, double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];

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
