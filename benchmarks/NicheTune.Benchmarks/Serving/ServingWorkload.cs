using System.Collections.Concurrent;
using System.Diagnostics;
using NicheTune.Benchmarks.Workload;
using NicheTune.Deployment;
using NicheTune.Models;
using NicheTune.Text;
using TorchSharp;

namespace NicheTune.Benchmarks.Serving;

/// <summary>
/// The serving workload shared by <see cref="ServingBenchmarks"/> and <see cref="ServingRounds"/>: a classifier package
/// on the benchmark model's body (GPT-2, d 256, 4 layers, 128 positions; mean-pooled, 8 classes, random weights) and 16
/// concurrent callers that each send 8 requests, one after the other.
/// </summary>
internal sealed class ServingWorkload : IDisposable
{
    public const int Callers = 16;
    public const int PerCaller = 8;
    public const int Predictions = Callers * PerCaller;

    // Computing-dictionary texts of varied lengths, so batches are padded as in real traffic.
    public static readonly string[] Queries =
    [
        "SMTP relay", "lazy evaluation", "page fault", "DEC PDP-11", "kludge", "PCI Express", "QAM modem", "heisenbug",
    ];

    public static readonly string[] Sentences =
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

    private ServingWorkload(string folder) => Folder = folder;

    public string Folder { get; }

    public static ModelShape Shape => ModelShape.Benchmark;

    public static string Describe() =>
        $"{Shape.Describe()} body, mean-pooled 8-class head; {Callers} callers x {PerCaller} requests; {torch.get_num_threads()} libtorch threads";

    public static string[] Texts(string input) => input switch
    {
        "queries" => Queries,
        "sentences" => Sentences,
        _ => throw new ArgumentException($"Input '{input}' is neither 'queries' nor 'sentences'.", nameof(input)),
    };

    /// <summary>Exports the seeded random classifier to a temporary package folder (deleted on dispose).</summary>
    public static ServingWorkload Create()
    {
        torch.manual_seed(1);
        using var classifier = CreateClassifier();
        string folder = Path.Combine(Path.GetTempPath(), "nichetune-serving-bench-" + Guid.NewGuid().ToString("N")[..8]);
        ModelPackage.Export(classifier, folder, new ModelPackageOptions
        {
            Tokenizer = new ByteTokenizer(),
            Labels = new LabelMap([.. Enumerable.Range(0, 8).Select(i => $"class {i}")]),
            MaxLength = Shape.ContextLength,
        });
        return new ServingWorkload(folder);
    }

    public static MeanPoolClassifier CreateClassifier() => new(new Gpt2LMHeadModel(Shape.ToConfig()), 8, dropout: 0);

    /// <summary>The served model micro-batching up to one request per caller, or answering one request per forward pass.</summary>
    public NicheModel Load(bool microBatched) => NicheModel.Load(Folder, microBatched
        ? new NicheModelOptions { MaxBatchSize = Callers, BatchWindow = TimeSpan.FromMilliseconds(2) }
        : new NicheModelOptions { MaxBatchSize = 1 });

    /// <summary>16 callers send 8 requests each (caller c's i-th request is text (c + i) mod 8); each latency is added to <paramref name="latencies"/>.</summary>
    public static async Task Run(NicheModel model, string[] texts, ConcurrentBag<double> latencies)
    {
        await Task.WhenAll(Enumerable.Range(0, Callers).Select(caller => Task.Run(async () =>
        {
            for (int i = 0; i < PerCaller; i++)
            {
                long started = Stopwatch.GetTimestamp();
                await model.ClassifyAsync(texts[(caller + i) % texts.Length]).ConfigureAwait(false);
                latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
        }))).ConfigureAwait(false);
    }

    public static double Percentile(IEnumerable<double> values, double q)
    {
        double[] sorted = [.. values.Order()];
        return sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, Math.Max(0, (int)Math.Ceiling(q * sorted.Length) - 1))];
    }

    public void Dispose() => Directory.Delete(Folder, recursive: true);
}
