// HyperparameterSearch: tune the fine-tuning of a small byte-level GPT-2 on FOLDOC (computing jargon) with TPE, pruning
// and a SQLite study file that survives a crash and resumes.
//   1. "Pretrain" a tiny GPT-2 on WordNet glosses once (the stand-in for a pretrained base; cached by samples/Common/BaseModelCache.cs).
//   2. Each trial loads the base and fine-tunes it on FOLDOC with its learning rate, warm-up fraction, weight decay,
//      number of frozen bottom layers and dropout, reporting validation loss at every evaluation for the pruner.
//   3. Print the best parameters; write study.md (docs-ready tables) and study.html (plots) beside the study file.
// Run: ./build.sh sample HyperparameterSearch                 (30 trials; run it again to continue the same study)
//      ./build.sh sample HyperparameterSearch --smoke         (3 tiny trials in a temporary folder unless --out, for CI)
//      options: --trials N (total for the study) --steps N --out DIR --pruner median|asha --parallel P --threads N --seed S
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using NicheTune;
using NicheTune.Evaluation;
using NicheTune.Freezing;
using NicheTune.Models;
using NicheTune.Samples;
using NicheTune.Reporting;
using NicheTune.Scheduling;
using NicheTune.Text;
using NicheTune.Training;
using NicheTune.Tuning;
using TorchSharp;
using static TorchSharp.torch;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
bool smoke = args.Contains("--smoke");
string? Text(string name) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
int Option(string name, int fallback) => Text(name) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
int totalTrials = Option("--trials", smoke ? 3 : 30);
int steps = smoke ? 6 : Option("--steps", 300);
int pretrainSteps = smoke ? 10 : Option("--pretrain-steps", 400);
int evaluateEvery = smoke ? 3 : Math.Max(1, steps / 6);
int parallel = Option("--parallel", 1);
int seed = Option("--seed", 7);
int width = smoke ? 32 : 64;
int layers = smoke ? 2 : 4;
string pruner = Text("--pruner") ?? "median";
bool temporaryOutput = smoke && Text("--out") is null;
string output = Text("--out") ?? (smoke ? Path.Combine(Path.GetTempPath(), "nichetune-hpo-smoke-" + Guid.NewGuid().ToString("N")[..8]) : "hpo-output");
TorchBackend.EnsureAvailable();
if (Text("--threads") is { } threads)
{
    torch.set_num_threads(int.Parse(threads, CultureInfo.InvariantCulture));
}

Directory.CreateDirectory(output);
string dataFolder = Path.Combine(AppContext.BaseDirectory, "data");
var tokenizer = new ByteTokenizer();
const int Context = 64;
var foldoc = File.ReadLines(Path.Combine(dataFolder, "foldoc-subset.jsonl"))
    .Select(line => JsonDocument.Parse(line).RootElement.GetProperty("text").GetString()!)
    .Take(smoke ? 120 : int.MaxValue)
    .ToList();
var glosses = File.ReadLines(Path.Combine(dataFolder, "wordnet-glosses-subset.txt")).Take(smoke ? 200 : int.MaxValue).ToList();
List<TokenExample> Pack(IEnumerable<string> texts) => SequencePacking.Pack(texts.Select(tokenizer.Encode), Context, ByteTokenizer.EndOfTextId);
var train = Pack(foldoc.Where((_, i) => i % 10 != 0));
var validation = Pack(foldoc.Where((_, i) => i % 10 == 0));
Console.WriteLine($"FOLDOC: {train.Count} training / {validation.Count} validation sequences of {Context} bytes. Output: {Path.GetFullPath(output)}");

Gpt2Config Config() => new()
{
    VocabularySize = ByteTokenizer.VocabularySize, ContextLength = Context, EmbeddingSize = width, LayerCount = layers, HeadCount = 4,
    ResidualDropout = 0.1, EmbeddingDropout = 0.1, AttentionDropout = 0.0,
};

// 1. The base model, pretrained once on general English and cached (so a resumed study fine-tunes the same base).
Dictionary<string, Tensor> baseWeights;
torch.manual_seed(2026);
using (var baseModel = BaseModelCache.GetOrPretrain(Config(), $"{pretrainSteps} steps of batch 32 × {Context} bytes from {glosses.Count} glosses, AdamW lr 0.003, linear warm-up 10 % then cosine to 0.1, seed 2026",
    Path.Combine(dataFolder, "wordnet-glosses-subset.txt"), model =>
    {
        Console.WriteLine($"Pretraining the base model on WordNet glosses ({pretrainSteps} steps)…");
        FineTuneResult pretrained = FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling()).WithLearningRate(3e-3)
            .WithSchedule(Schedules.LinearWarmup(0.1).ThenCosine(minFactor: 0.1)).WithBatchSize(32).WithMaxSteps(pretrainSteps).WithSeed(2026)
            .Fit(Pack(glosses));
        return pretrained.TrainingLoss.IsDefaultOrEmpty ? $"- {pretrained.Steps} steps" : $"- {pretrained.Steps} steps, last logged training loss {pretrained.TrainingLoss[^1].Loss:F3}";
    }))
{
    baseWeights = BaseModelCache.Snapshot(baseModel);
}

// 2. The study: TPE, pruning, SQLite. Run again with the same --out to continue it.
using var storage = new SqliteStudyStorage(Path.Combine(output, "study.db"));
var study = Study.Create(
    "foldoc-finetune",
    StudyDirection.Minimize,
    Samplers.Tpe(seed, new TpeOptions { StartupTrials = smoke ? 2 : 8 }),
    pruner == "asha" ? Pruners.SuccessiveHalving(minResource: evaluateEvery, reductionFactor: 3) : Pruners.Median(startupTrials: smoke ? 1 : 4, warmupSteps: evaluateEvery),
    storage,
    loadIfExists: true);
int finished = study.Trials.Count(t => t.State is TrialState.Complete or TrialState.Pruned);
int remaining = totalTrials - finished;
Console.WriteLine($"Study '{study.Name}': {finished} finished trial(s) so far; running {Math.Max(remaining, 0)} more ({parallel} at a time).");

double Objective(Trial trial)
{
    double learningRate = trial.SuggestFloat("learning_rate", 1e-4, 1e-2, log: true);
    double warmup = trial.SuggestFloat("warmup_fraction", 0.0, 0.2, step: 0.05);
    double weightDecay = trial.SuggestFloat("weight_decay", 1e-4, 1e-1, log: true);
    int frozen = trial.SuggestInt("frozen_layers", 0, layers - 1);
    double dropout = trial.SuggestFloat("dropout", 0.0, 0.3, step: 0.05);

    using var scope = torch.NewDisposeScope();
    using var model = new Gpt2LMHeadModel(Config());
    BaseModelCache.Restore(model, baseWeights);
    var clock = Stopwatch.StartNew();
    FineTuneResult result = FineTuner.For(model)
        .WithObjective(Objectives.CausalLanguageModeling())
        .WithLearningRate(learningRate)
        .WithSchedule(warmup > 0 ? Schedules.LinearWarmup(warmup).ThenCosine(minFactor: 0.1) : Schedules.Cosine(minFactor: 0.1))
        .Regularize(r => r.WeightDecay(weightDecay).Dropout(dropout))
        .Freeze(frozen > 0 ? Freeze.BottomLayers(frozen) : Freeze.Nothing())
        .WithBatchSize(32)
        .WithMaxSteps(steps)
        .EvaluateEvery(evaluateEvery)
        .Evaluate(Metrics.Perplexity())
        .WithSeed(seed)
        .WithTrial(trial, "validation.loss")
        .Fit(train, validation);
    double loss = result.Evaluations.Min(e => e.Metrics["validation.loss"]);
    string outcome = trial.IsPruned ? $"pruned at step {trial.PrunedAtStep}" : $"best validation loss {loss:F4}";
    Console.WriteLine($"  trial {trial.Number,3}: lr {learningRate:0.###e+0}, warm-up {warmup:F2}, decay {weightDecay:0.###e+0}, frozen {frozen}, dropout {dropout:F2} → {outcome} ({clock.Elapsed.TotalSeconds:F0} s)");
    return loss;
}

if (remaining > 0)
{
    study.Optimize(Objective, remaining, parallelism: parallel);
}

// 3. The results.
FrozenTrial best = study.BestTrial;
Console.WriteLine();
Console.WriteLine($"Best trial {best.Number}: validation loss {best.Values[0]:F4} (perplexity {Math.Exp(best.Values[0]):F2})");
foreach ((string name, object value) in best.Parameters.OrderBy(p => p.Key, StringComparer.Ordinal))
{
    Console.WriteLine($"  {name} = {value}");
}

string markdownPath = Path.Combine(output, "study.md");
File.WriteAllText(markdownPath, study.ToMarkdown());
string htmlPath = Path.Combine(output, "study.html");
StudyHtmlReport.Write(study, htmlPath);
Console.WriteLine($"Report: {markdownPath}, {htmlPath}");
bool anyComplete = study.Trials.Any(t => t.State == TrialState.Complete);
if (temporaryOutput)
{
    storage.Dispose();
    Directory.Delete(output, recursive: true);
}

return anyComplete ? 0 : 1;
