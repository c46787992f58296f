// Serving: a fine-tuned FOLDOC-category classifier behind an ASP.NET Core minimal API.
//   1. fine-tunes a MeanPoolClassifier on the samples' cached WordNet GPT-2 (the base FewShotClassification uses),
//   2. exports it with ModelPackage.Export (weights, config, labels, evaluation, model card, hashed manifest),
//   3. serves it with services.AddNicheModel("foldoc", folder): POST /classify, GET /health, GET /metrics (Prometheus,
//      through OpenTelemetry), with micro-batching across concurrent requests,
//   4. sends requests to itself (16 concurrent clients in a full run), prints the answers and the latency, and exits —
//      or keeps serving with --serve.
// Run: ./build.sh sample Serving                  (full: 300 fine-tuning steps, then a 16-client self-test)
//      ./build.sh sample Serving --smoke          (a few steps and a few requests, for CI)
//      ./build.sh sample Serving --serve --port 5080   (stay up; curl -d '{"text":"…"}' -H 'Content-Type: application/json' localhost:5080/classify)
//      options: --threads N --steps N --no-cache --package DIR
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using NicheTune;
using NicheTune.DependencyInjection;
using NicheTune.Deployment;
using NicheTune.Evaluation;
using NicheTune.Freezing;
using NicheTune.Models;
using NicheTune.Monitoring;
using NicheTune.Samples;
using NicheTune.Scheduling;
using NicheTune.Text;
using NicheTune.Training;
using OpenTelemetry.Metrics;
using TorchSharp;
using static TorchSharp.torch;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
bool smoke = args.Contains("--smoke");
bool serve = args.Contains("--serve");
string? Text(string name) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
int Option(string name, int fallback) => Text(name) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
const int Context = 64;
const int ClassifierBytes = 128;
int steps = Option("--steps", smoke ? 8 : 300);
int port = Option("--port", 0);
TorchBackend.EnsureAvailable();
if (Option("--threads", smoke ? 1 : 0) is int threads and > 0)
{
    torch.set_num_threads(threads);
}

string dataFolder = Path.Combine(AppContext.BaseDirectory, "data");
var tokenizer = new ByteTokenizer();
var entries = File.ReadLines(Path.Combine(dataFolder, "foldoc-categories.jsonl")).Select(line =>
{
    using var document = JsonDocument.Parse(line);
    return (Text: document.RootElement.GetProperty("text").GetString()!, Label: document.RootElement.GetProperty("label").GetString()!);
}).ToList();
new Random(2026).Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(entries));
var labels = new LabelMap(entries.GroupBy(e => e.Label).OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal).Select(g => g.Key));
int testCount = smoke ? 32 : 300;
var test = entries.Take(testCount).ToList();
var validation = entries.Skip(testCount).Take(smoke ? 32 : 150).ToList();
var train = entries.Skip(testCount + validation.Count).Take(smoke ? 64 : int.MaxValue).ToList();
List<TokenExample> Tokenize(IEnumerable<(string Text, string Label)> items)
    => [.. items.Select(e => new TokenExample(Truncate(tokenizer.Encode(e.Text)), labels.IdOf(e.Label)))];
static int[] Truncate(int[] ids) => ids.Length <= ClassifierBytes ? ids : ids[..ClassifierBytes];

// 1. The base model: the samples' WordNet GPT-2, shared through the cache with QuickStart and FewShotClassification.
var glosses = File.ReadLines(Path.Combine(dataFolder, "wordnet-glosses-subset.txt")).ToList();
int pretrainSteps = smoke ? 10 : 300;
const double PretrainRate = 3e-3;
if (smoke)
{
    glosses = glosses.Take(300).ToList();
}

var baseConfig = new Gpt2Config
{
    VocabularySize = ByteTokenizer.VocabularySize,
    ContextLength = Context,
    EmbeddingSize = 128,
    LayerCount = 4,
    HeadCount = 4,
    ResidualDropout = 0.05,
    EmbeddingDropout = 0.05,
    AttentionDropout = 0.0,
};
string recipe = $"{pretrainSteps} steps of batch 32 × {Context} bytes from {glosses.Count} glosses (every 10th held out), AdamW lr {PretrainRate}, " +
    "linear warm-up 10 % then cosine to 0.1, seed 2026";
torch.manual_seed(2026);
var clock = Stopwatch.StartNew();
var body = BaseModelCache.GetOrPretrain(baseConfig, recipe, Path.Combine(dataFolder, "wordnet-glosses-subset.txt"), pretraining =>
{
    Console.WriteLine("Pretraining the base model on WordNet glosses (general English)…");
    List<TokenExample> Pack(IEnumerable<string> texts) => SequencePacking.Pack(texts.Select(tokenizer.Encode), Context, ByteTokenizer.EndOfTextId);
    FineTuneResult pretrained = BaseModelCache.TrainLanguageModel(pretraining, Pack(glosses.Where((_, i) => i % 10 != 0)), Pack(glosses.Where((_, i) => i % 10 == 0)), PretrainRate, pretrainSteps, smoke ? 5 : 100);
    return $"- WordNet validation perplexity after pretraining: {pretrained.FinalMetrics["validation.perplexity"]:F2} ({pretrained.Steps} steps, {pretrained.WallTime.TotalSeconds:F0} s)";
}, useCache: !args.Contains("--no-cache"));

// 2. Fine-tune the classifier (mean-pooled hidden states → linear head), evaluate on held-out entries, export.
torch.manual_seed(42);
using var classifier = new MeanPoolClassifier(body, labels.Count);
FineTuneResult result = FineTuner.For(classifier)
    .WithObjective(Objectives.SequenceClassification())
    .WithLearningRates(group => group.Kind == LayerGroupKind.Head ? 3e-3 : 3e-4)
    .WithSchedule(Schedules.LinearWarmup(0.1).ThenCosine(minFactor: 0.1))
    .WithBatchSize(16)
    .WithMaxSteps(steps)
    .LogEvery(smoke ? 4 : 50)
    .WithProgress(new Progress<TrainingProgress>(p => Console.WriteLine($"  step {p.Step,4}/{p.TotalSteps}  loss {p.TrainLoss:F3}")))
    .EvaluateEvery(smoke ? steps : 100)
    .Evaluate(Metrics.Accuracy(), Metrics.MacroF1())
    .Fit(Tokenize(train), Tokenize(validation), new TokenCollator(ByteTokenizer.PaddingId, ClassifierBytes));
classifier.eval();
var (testAccuracy, perLabel) = Evaluate(classifier, test);
Console.WriteLine($"Fine-tuned on {train.Count} entries in {result.Steps} steps ({result.WallTime.TotalSeconds:F0} s); test accuracy {testAccuracy:F3} on {test.Count} held-out entries.");

string package = Text("--package") ?? Path.Combine(smoke ? Path.Combine(Path.GetTempPath(), "nichetune-serving-" + Guid.NewGuid().ToString("N")[..8]) : AppContext.BaseDirectory, "foldoc-categories");
ModelPackageManifest manifest = ModelPackage.Export(classifier, package, new ModelPackageOptions
{
    Tokenizer = tokenizer,
    Labels = labels,
    MaxLength = ClassifierBytes,
    Name = "foldoc-categories",
    Version = "1.0.0",
    Result = result,
    Evaluation = System.Collections.Immutable.ImmutableSortedDictionary.CreateRange<string, double>(StringComparer.Ordinal, [new("test.accuracy", testAccuracy)]),
    Card = new ModelCard
    {
        Description = "Assigns a FOLDOC dictionary entry (computing terms) to one of eight categories.",
        TrainingData = $"{train.Count} entries of the Free On-line Dictionary of Computing (GNU FDL; tests/data/foldoc-categories.jsonl), first {ClassifierBytes} bytes each; " +
            $"{validation.Count} for validation, {test.Count} held out for test. Labels are each entry's first category among the eight most frequent.",
        HyperParameters = System.Collections.Immutable.ImmutableSortedDictionary.CreateRange<string, string>(StringComparer.Ordinal,
        [
            new("base", "WordNet byte-level GPT-2, 4 layers × 128"), new("steps", steps.ToString(CultureInfo.InvariantCulture)), new("batch size", "16"),
            new("learning rate (body / head)", "3e-4 / 3e-3, warm-up 10 % then cosine"), new("input bytes", ClassifierBytes.ToString(CultureInfo.InvariantCulture)),
        ]),
        SliceMetrics = System.Collections.Immutable.ImmutableSortedDictionary.CreateRange(StringComparer.Ordinal, perLabel),
        BiasChecks = ["The entries describe technology, not people; no demographic attributes exist to check. Per-label recall (above) is the slice check: small labels are recognised less often."],
        IntendedUse = "A demonstration of serving a NicheTune classifier; routing computing-dictionary entries by topic.",
        Limitations = "Reads only the first 128 bytes; trained on a few hundred entries; eight labels only, so any other topic is forced into one of them.",
    },
});
Console.WriteLine($"Exported to {package} (content hash {manifest.ContentHash[..16]}…, {manifest.Files.Count} files) in {clock.Elapsed.TotalSeconds:F0} s since start.");

// 3. The drift monitor's reference window: the validation entries as the exported model answers them — what normal
// traffic looks like. In production the monitor compares rolling windows of requests with it (PSI, Jensen–Shannon).
var referenceRecords = new ConcurrentQueue<PredictionRecord>();
using (var referenceModel = NicheModel.Load(package, new NicheModelOptions { Observers = { new RecordingObserver(referenceRecords) } }))
{
    foreach (var (text, _) in validation)
    {
        referenceModel.Classify(text);
    }
}

using var monitor = new ModelMonitor(MonitorReference.Capture(referenceRecords), new ModelMonitorOptions { Name = "foldoc" });
Console.WriteLine($"Monitor reference captured from {referenceRecords.Count} validation answers.");

// 4. Serve it.
var builder = WebApplication.CreateSlimBuilder(args);
builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
builder.Logging.SetMinimumLevel(smoke ? LogLevel.Warning : LogLevel.Information).AddFilter("Microsoft", LogLevel.Warning);
builder.Services.AddSingleton<ServingMetrics>();
builder.Services.AddSingleton<IPredictionObserver>(provider => provider.GetRequiredService<ServingMetrics>());
builder.Services.AddSingleton<IPredictionObserver>(monitor);
builder.Services.AddNicheModel("foldoc", package, options =>
{
    options.MaxBatchSize = 32;
    options.BatchWindow = TimeSpan.FromMilliseconds(2);
});
builder.Services.AddHealthChecks().AddCheck<ModelHealthCheck>("foldoc-model");
builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics
    .AddMeter(ServingMetrics.MeterName)
    .AddMeter(ModelMonitor.MeterName)
    .AddPrometheusExporter());
var app = builder.Build();
app.MapPost("/classify", async ([FromKeyedServices("foldoc")] NicheModel model, ClassifyRequest request, CancellationToken cancellationToken) =>
{
    if (string.IsNullOrWhiteSpace(request.Text))
    {
        return Results.BadRequest(new { error = "Send {\"text\": \"…\"} with a non-empty text." });
    }

    ClassificationResult answer = await model.ClassifyAsync(request.Text, cancellationToken);
    return Results.Ok(new ClassifyResponse(answer.Label, answer.Confidence,
        model.Labels!.Labels.Select((l, i) => (l, i)).ToDictionary(p => p.l, p => answer.Probabilities[p.i])));
});
app.MapHealthChecks("/health");
app.MapPrometheusScrapingEndpoint();
await app.StartAsync();
string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
Console.WriteLine($"Serving on {address}: POST /classify, GET /health, GET /metrics.");

// 5. Talk to ourselves.
using var http = new HttpClient { BaseAddress = new Uri(address) };
Console.WriteLine($"GET /health → {(int)(await http.GetAsync("/health")).StatusCode} {await http.GetStringAsync("/health")}");
foreach (var (text, label) in test.Take(4))
{
    var response = await http.PostAsJsonAsync("/classify", new ClassifyRequest(text));
    var answer = await response.Content.ReadFromJsonAsync<ClassifyResponse>();
    Console.WriteLine($"POST /classify \"{Shorten(text, 60)}\" → {answer!.Label} ({answer.Confidence:F2}); true label {label}");
}

int clients = smoke ? 4 : 16;
int perClient = smoke ? 2 : 40;
var latencies = new ConcurrentBag<double>();
var load = Stopwatch.StartNew();
await Task.WhenAll(Enumerable.Range(0, clients).Select(async client =>
{
    for (int i = 0; i < perClient; i++)
    {
        var started = Stopwatch.GetTimestamp();
        var response = await http.PostAsJsonAsync("/classify", new ClassifyRequest(test[(client * perClient + i) % test.Count].Text));
        response.EnsureSuccessStatusCode();
        latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
    }
}));
double[] sorted = [.. latencies.Order()];
var served = app.Services.GetRequiredKeyedService<NicheModel>("foldoc");
Console.WriteLine($"{clients} concurrent clients × {perClient} requests over HTTP: {sorted.Length / load.Elapsed.TotalSeconds:F0} requests/s, " +
    $"latency p50 {Percentile(sorted, 0.50):F1} ms, p99 {Percentile(sorted, 0.99):F1} ms; {served.RequestCount} requests in {served.BatchCount} forward passes " +
    $"(mean batch {served.RequestCount / (double)Math.Max(1, served.BatchCount):F1}); {torch.get_num_threads()} libtorch thread(s).");
DriftReport drift = monitor.Evaluate();
Console.WriteLine($"Monitor: {monitor.TotalObservations} requests observed, window {drift.WindowCount}, drift level {drift.Level}" +
    $" (PSI of predicted labels {drift[DriftStatistic.PredictedLabel].PopulationStabilityIndex:F3}; windows under {new ModelMonitorOptions().MinimumWindowCount} requests are not judged).");
string metricsText = await http.GetStringAsync("/metrics");
foreach (string line in metricsText.Split('\n').Where(l => l.StartsWith("nichetune_", StringComparison.Ordinal) && !l.Contains("_bucket", StringComparison.Ordinal)).Take(6))
{
    Console.WriteLine($"GET /metrics: {line}");
}

if (serve)
{
    Console.WriteLine("Serving until Ctrl+C.");
    await app.WaitForShutdownAsync();
}
else
{
    await app.StopAsync();
}

await app.DisposeAsync();
if (smoke)
{
    Directory.Delete(Path.GetDirectoryName(package)!, recursive: true);
}

return 0;

(double Accuracy, Dictionary<string, System.Collections.Immutable.ImmutableSortedDictionary<string, double>> PerLabel) Evaluate(MeanPoolClassifier model, List<(string Text, string Label)> items)
{
    var predictions = new List<int>();
    var collator = new TokenCollator(ByteTokenizer.PaddingId, ClassifierBytes);
    var examples = Tokenize(items);
    using var noGrad = torch.no_grad();
    for (int start = 0; start < examples.Count; start += 64)
    {
        using var scope = torch.NewDisposeScope();
        TokenBatch batch = collator.Collate(examples.GetRange(start, Math.Min(64, examples.Count - start)));
        predictions.AddRange(model.forward(batch.InputIds, batch.AttentionMask).argmax(1).data<long>().ToArray().Select(p => (int)p));
    }

    int[] targets = [.. items.Select(i => labels.IdOf(i.Label))];
    var report = ClassificationReport.FromLabels(targets, predictions, labels.Count, [.. labels.Labels]);
    var perLabel = new Dictionary<string, System.Collections.Immutable.ImmutableSortedDictionary<string, double>>(StringComparer.Ordinal)
    {
        ["overall"] = System.Collections.Immutable.ImmutableSortedDictionary.CreateRange<string, double>(StringComparer.Ordinal,
            [new("accuracy", report.Accuracy), new("macro-F1", report.F1(Average.Macro)), new("support", targets.Length)]),
    };
    for (int c = 0; c < labels.Count; c++)
    {
        int support = targets.Count(t => t == c);
        int hits = targets.Where((t, i) => t == c && predictions[i] == c).Count();
        perLabel[$"label = {labels.LabelOf(c)}"] = System.Collections.Immutable.ImmutableSortedDictionary.CreateRange<string, double>(StringComparer.Ordinal,
            [new("recall", support == 0 ? 0 : hits / (double)support), new("support", support)]);
    }

    return (report.Accuracy, perLabel);
}

static double Percentile(double[] sorted, double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];

static string Shorten(string text, int length) => text.Length <= length ? text : text[..length] + "…";

/// <summary>The body of POST /classify.</summary>
internal sealed record ClassifyRequest(string Text);

/// <summary>The answer of POST /classify.</summary>
internal sealed record ClassifyResponse(string Label, float Confidence, Dictionary<string, float> Probabilities);

/// <summary>Request counts and latency of the served model as a Meter, fed by the model's prediction records.</summary>
internal sealed class ServingMetrics : IPredictionObserver, IDisposable
{
    public const string MeterName = "NicheTune.Serving";

    private readonly Meter _meter = new(MeterName);
    private readonly Counter<long> _requests;
    private readonly Histogram<double> _latency;

    public ServingMetrics()
    {
        _requests = _meter.CreateCounter<long>("nichetune.requests", unit: "{request}", description: "Requests answered by the served model, by kind and label.");
        _latency = _meter.CreateHistogram<double>("nichetune.request.duration", unit: "ms", description: "Time from a request's arrival at the model to its answer, micro-batch wait included.");
    }

    public void Observe(PredictionRecord record)
    {
        var kind = new KeyValuePair<string, object?>("kind", record.Kind.ToString());
        _requests.Add(1, kind, new KeyValuePair<string, object?>("label", record.PredictedLabel));
        _latency.Record(record.Latency.TotalMilliseconds, kind);
    }

    public void Dispose() => _meter.Dispose();
}

/// <summary>Healthy when the model is loaded and answers a one-word request within a second.</summary>
// Keeps every answer, to capture the monitor's reference from a known-good data set.
internal sealed class RecordingObserver(ConcurrentQueue<PredictionRecord> records) : IPredictionObserver
{
    public void Observe(PredictionRecord record) => records.Enqueue(record);
}

internal sealed class ModelHealthCheck([FromKeyedServices("foldoc")] NicheModel model) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(1));
        try
        {
            ClassificationResult answer = await model.ClassifyAsync("router", timeout.Token);
            return HealthCheckResult.Healthy($"{model.Name} {model.Manifest.Version} answers ({answer.Label}); {model.RequestCount} requests served.");
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
        {
            return HealthCheckResult.Unhealthy($"{model.Name} did not answer within a second.", ex);
        }
    }
}
