// QuickStart: adapt a small general-English language model to computing jargon (FOLDOC) and measure what changed.
//   1. "Pretrain" a tiny GPT-2 on WordNet glosses — the stand-in for a general pretrained base model.
//   2. Fine-tune it on FOLDOC definitions with NicheTune (early stopping on validation perplexity).
//   3. Report niche (FOLDOC) and general (WordNet) perplexity before and after, beside n-gram baselines on the same split.
// Run: ./build.sh quickstart            (a few minutes on 2 cores)
//      options: --pretrain-steps N --steps N --width D --layers L --pretrain-lr R --lr R --no-cache
//      The base model is trained on the first run and cached (samples/Common/BaseModelCache.cs: ~/.cache/nichetune).
//      ./build.sh quickstart --smoke    (a few steps, for CI)
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using NicheTune;
using NicheTune.Evaluation;
using NicheTune.Models;
using NicheTune.Samples;
using NicheTune.Scheduling;
using NicheTune.Text;
using NicheTune.Training;
using TorchSharp;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
bool smoke = args.Contains("--smoke");
int Option(string name, int fallback) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
double Rate(string name, double fallback) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? double.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
int pretrainSteps = smoke ? 10 : Option("--pretrain-steps", 300);
int fineTuneSteps = smoke ? 10 : Option("--steps", 1200);
int width = Option("--width", 128);
int layers = Option("--layers", 4);
double pretrainRate = Rate("--pretrain-lr", 3e-3);
double fineTuneRate = Rate("--lr", 3e-3);
TorchBackend.EnsureAvailable();

string dataFolder = Path.Combine(AppContext.BaseDirectory, "data");
var tokenizer = new ByteTokenizer();
const int Context = 64;

// FOLDOC: every 10th entry is held out for validation. WordNet glosses: the same rule.
var foldoc = File.ReadLines(Path.Combine(dataFolder, "foldoc-subset.jsonl"))
    .Select(line => JsonDocument.Parse(line).RootElement.GetProperty("text").GetString()!)
    .ToList();
var glosses = File.ReadLines(Path.Combine(dataFolder, "wordnet-glosses-subset.txt")).ToList();
if (smoke)
{
    foldoc = foldoc.Take(200).ToList();
    glosses = glosses.Take(300).ToList();
}

List<TokenExample> Pack(IEnumerable<string> texts) => SequencePacking.Pack(texts.Select(tokenizer.Encode), Context, ByteTokenizer.EndOfTextId);
var nicheTrain = Pack(foldoc.Where((_, i) => i % 10 != 0));
var nicheValidation = Pack(foldoc.Where((_, i) => i % 10 == 0));
var generalTrain = Pack(glosses.Where((_, i) => i % 10 != 0));
var generalValidation = Pack(glosses.Where((_, i) => i % 10 == 0));
Console.WriteLine($"FOLDOC: {nicheTrain.Count} training / {nicheValidation.Count} validation sequences of {Context} bytes; WordNet: {generalTrain.Count} / {generalValidation.Count}.");

var baseConfig = new Gpt2Config
{
    VocabularySize = ByteTokenizer.VocabularySize,
    ContextLength = Context,
    EmbeddingSize = width,
    LayerCount = layers,
    HeadCount = 4,
    ResidualDropout = 0.05,
    EmbeddingDropout = 0.05,
    AttentionDropout = 0.0,
};

var clock = Stopwatch.StartNew();
var progress = new Progress<TrainingProgress>(p => Console.WriteLine($"  step {p.Step,4}/{p.TotalSteps}  loss {p.TrainLoss:F3}  {p.TokensPerSecond,7:F0} tokens/s"));

// 1. The base model: general English, trained on the first run and then loaded from the user's cache folder.
string recipe = $"{pretrainSteps} steps of batch 32 × {Context} bytes from {glosses.Count} glosses (every 10th held out), AdamW lr {pretrainRate}, " +
    "linear warm-up 10 % then cosine to 0.1, seed 2026";
torch.manual_seed(2026);
using var model = BaseModelCache.GetOrPretrain(baseConfig, recipe, Path.Combine(dataFolder, "wordnet-glosses-subset.txt"), pretraining =>
{
    Console.WriteLine("Pretraining the base model on WordNet glosses (general English)…");
    FineTuneResult pretrained = BaseModelCache.TrainLanguageModel(pretraining, generalTrain, generalValidation, pretrainRate, pretrainSteps, smoke ? 5 : 100, progress);
    return $"- WordNet validation perplexity after pretraining: {pretrained.FinalMetrics["validation.perplexity"]:F2} ({pretrained.Steps} steps, {pretrained.WallTime.TotalSeconds:F0} s, {pretrained.TokensPerSecond:F0} tokens/s)";
}, useCache: !args.Contains("--no-cache"));
torch.manual_seed(2027);

// 2. The fine-tune: the README's recipe, on the niche.
FineTunePlan<TokenBatch> fineTune = FineTuner.For(model)
    .WithObjective(Objectives.CausalLanguageModeling())
    .WithLearningRate(fineTuneRate)
    .WithSchedule(Schedules.LinearWarmup(0.1).ThenCosine(minFactor: 0.1))
    .WithBatchSize(32)
    .WithMaxSteps(fineTuneSteps)
    .EvaluateEvery(smoke ? 5 : 100)
    .LogEvery(smoke ? 5 : 100)
    .Evaluate(Metrics.Perplexity(), Metrics.Accuracy())
    .EarlyStopping("validation.perplexity", patience: 3)
    .WithProgress(progress)
    .Build();

double nicheBefore = fineTune.Evaluate(nicheValidation)["validation.perplexity"];
double generalBefore = fineTune.Evaluate(generalValidation)["validation.perplexity"];
Console.WriteLine($"Fine-tuning on FOLDOC (niche perplexity before: {nicheBefore:F2})…");
FineTuneResult result = fineTune.Fit(nicheTrain, nicheValidation);
double nicheAfter = fineTune.Evaluate(nicheValidation)["validation.perplexity"];
double generalAfter = fineTune.Evaluate(generalValidation)["validation.perplexity"];

// Classical baselines on the same splits.
var nicheTrainIds = nicheTrain.Select(e => e.InputIds).ToList();
var nicheValidationIds = nicheValidation.Select(e => e.InputIds).ToList();
double Baseline(int order) => new NGramLanguageModel(order, ByteTokenizer.VocabularySize).Fit(nicheTrainIds).Perplexity(nicheValidationIds);

Console.WriteLine();
Console.WriteLine("| model (byte-level, same FOLDOC validation split) | FOLDOC perplexity | WordNet perplexity |");
Console.WriteLine("| --- | ---: | ---: |");
Console.WriteLine($"| base model (before fine-tuning) | {nicheBefore:F2} | {generalBefore:F2} |");
Console.WriteLine($"| fine-tuned (best of {result.Steps} steps, step {result.BestStep}) | {nicheAfter:F2} | {generalAfter:F2} |");
Console.WriteLine($"| unigram baseline (FOLDOC train) | {Baseline(1):F2} | |");
Console.WriteLine($"| bigram baseline (FOLDOC train) | {Baseline(2):F2} | |");
Console.WriteLine($"| 4-gram baseline (FOLDOC train) | {Baseline(4):F2} | |");
Console.WriteLine();
Console.WriteLine($"Stop: {result.StopReason}{(result.StopMessage is null ? "" : $" ({result.StopMessage})")}; {result.TokensPerSecond:F0} tokens/s; total {clock.Elapsed.TotalSeconds:F0} s.");
Console.WriteLine($"validation perplexity before: {nicheBefore:F3}");
Console.WriteLine($"validation perplexity after: {nicheAfter:F3}");
if (!(nicheAfter < nicheBefore))
{
    Console.Error.WriteLine("Fine-tuning did not lower the niche validation perplexity.");
    return 1;
}

return 0;
