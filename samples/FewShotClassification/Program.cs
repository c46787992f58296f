// FewShotClassification: the FOLDOC few-shot case study. 100 labelled training examples, a fixed 800-example test set,
// eight categories; macro-F1 and accuracy of
//   (a) fine-tuning a classifier on the samples' base GPT-2 with the 100 examples,
//   (b) the same with EDA augmentation (4 copies per example, and class-balanced: only the short classes topped up;
//       FOLDOC's distinctive words protected), at the same number of epochs as (a),
//   (c) zero-shot label scoring with the base model (plain and calibrated),
//   (d) in-context few-shot classification with demonstrations from the 100,
//   (a') (a) from a base first adapted to FOLDOC text (causal LM on unlabelled FOLDOC entries, the test entries excluded),
// beside majority-class, multinomial naive Bayes and logistic regression baselines on the same splits, over several
// seeds (each seed draws another 100 training and 100 validation examples and seeds training; the test set is fixed).
// Run: ./build.sh sample FewShotClassification --seeds 3 --threads 1
//      ./build.sh sample FewShotClassification --smoke          (a tiny subset and a few steps, for CI)
//      options: --seeds N --threads N --epochs N (every fine-tuning arm, over its own data) --body-lr R --head-lr R
//               --classifier-bytes N --k N --no-cache --no-prompting (skips (c) and (d))
//               --adapt-steps N (domain-adaptive pretraining steps for (a'); 0 skips (a'))
//               --stop-on loss|f1 (the fine-tuning arms' early-stopping metric on the validation split; default loss)
//               --diagnose ARMS  (seed 42 only, scored on the development entries outside the test set; ARMS e.g.
//                                 plain:loss,eda4:loss,eda4:loss:epochs,bal:f1:epochs — data:stopping metric[:epochs])
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using NicheTune;
using NicheTune.Augmentation;
using NicheTune.Evaluation;
using NicheTune.Freezing;
using NicheTune.Models;
using NicheTune.Prompting;
using NicheTune.Samples;
using NicheTune.Scheduling;
using NicheTune.Text;
using NicheTune.Training;
using TorchSharp;
using static TorchSharp.torch;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
bool smoke = args.Contains("--smoke");
int Option(string name, int fallback) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
double Rate(string name, double fallback) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? double.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
int seedCount = Option("--seeds", 1);
int epochs = smoke ? 2 : Option("--epochs", 30);
double bodyRate = Rate("--body-lr", 3e-4);
double headRate = Rate("--head-lr", 3e-3);
int k = Option("--k", 1);
int adaptSteps = smoke ? 10 : Option("--adapt-steps", 2400);
string stopOption = Array.IndexOf(args, "--stop-on") is int stopAt and >= 0 && stopAt + 1 < args.Length ? args[stopAt + 1] : "loss";
if (stopOption is not ("loss" or "f1"))
{
    Console.Error.WriteLine($"--stop-on is '{stopOption}'; use loss (validation loss, the default) or f1 (validation macro-F1).");
    return 2;
}

string stoppingMetric = stopOption == "f1" ? "validation.f1.macro" : "validation.loss";
const int Copies = 4;
const int BatchSize = 8;
const int Context = 64;
// The fine-tuned classifiers read the first 256 bytes (four windows of the context); the median entry has 244 characters.
int classifierBytes = Option("--classifier-bytes", 256);
int trainCount = smoke ? 24 : 100;
int validationCount = smoke ? 16 : 100;
int testCount = smoke ? 48 : 800;
if (seedCount < 1)
{
    Console.Error.WriteLine($"--seeds is {seedCount}; give at least 1.");
    return 2;
}

TorchBackend.EnsureAvailable();

// On a shared machine libtorch's OpenMP threads spin at every barrier while another process holds a core; --threads 1
// keeps progress steady. Smoke runs take one thread unless told otherwise.
if (Option("--threads", smoke ? 1 : 0) is int threads and > 0)
{
    torch.set_num_threads(threads);
}

var total = Stopwatch.StartNew();
string dataFolder = Path.Combine(AppContext.BaseDirectory, "data");
var tokenizer = new ByteTokenizer();

// The task: FOLDOC entry text → its first category among the eight most frequent (tests/data/foldoc-categories.jsonl).
var entries = new List<LabeledText>();
var terms = new List<string>();
foreach (string line in File.ReadLines(Path.Combine(dataFolder, "foldoc-categories.jsonl")))
{
    using var document = JsonDocument.Parse(line);
    entries.Add(new LabeledText(document.RootElement.GetProperty("text").GetString()!, document.RootElement.GetProperty("label").GetString()!));
    terms.Add(document.RootElement.GetProperty("term").GetString()!);
}

string[] labels = [.. entries.GroupBy(e => e.Label).OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal).Select(g => g.Key)];
var labelIndex = labels.Select((l, i) => (l, i)).ToDictionary(p => p.l, p => p.i, StringComparer.Ordinal);
Console.WriteLine($"FOLDOC categories: {entries.Count} entries, {labels.Length} labels ({string.Join(", ", labels)}); " +
    $"{trainCount} training / {validationCount} validation per seed, {testCount} fixed test.");

// 1. The base model: QuickStart's WordNet-pretrained byte-level GPT-2, shared through the cache (same config, recipe and data).
var glosses = File.ReadLines(Path.Combine(dataFolder, "wordnet-glosses-subset.txt")).ToList();
int pretrainSteps = smoke ? 10 : 300;
double pretrainRate = 3e-3;
if (smoke)
{
    glosses = glosses.Take(300).ToList();
}

List<TokenExample> Pack(IEnumerable<string> texts) => SequencePacking.Pack(texts.Select(tokenizer.Encode), Context, ByteTokenizer.EndOfTextId);
var progress = new Progress<TrainingProgress>(p => Console.WriteLine($"  step {p.Step,4}/{p.TotalSteps}  loss {p.TrainLoss:F3}"));
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
string recipe = $"{pretrainSteps} steps of batch 32 × {Context} bytes from {glosses.Count} glosses (every 10th held out), AdamW lr {pretrainRate}, " +
    "linear warm-up 10 % then cosine to 0.1, seed 2026";
torch.manual_seed(2026);
using var baseModel = BaseModelCache.GetOrPretrain(baseConfig, recipe, Path.Combine(dataFolder, "wordnet-glosses-subset.txt"), pretraining =>
{
    Console.WriteLine("Pretraining the base model on WordNet glosses (general English)…");
    FineTuneResult pretrained = BaseModelCache.TrainLanguageModel(pretraining, Pack(glosses.Where((_, i) => i % 10 != 0)), Pack(glosses.Where((_, i) => i % 10 == 0)), pretrainRate, pretrainSteps, smoke ? 5 : 100, progress);
    return $"- WordNet validation perplexity after pretraining: {pretrained.FinalMetrics["validation.perplexity"]:F2} ({pretrained.Steps} steps, {pretrained.WallTime.TotalSeconds:F0} s, {pretrained.TokensPerSecond:F0} tokens/s)";
}, useCache: !args.Contains("--no-cache"));
baseModel.eval();

// The glossary augmentation must not touch: words far more frequent in FOLDOC than in WordNet glosses. Counted on the
// category texts outside the fixed test set (no labels used), so the test texts do not shape the training data.
var testTexts = FewShotSplit.Create(entries, trainCount, validationCount, testCount, seed: 0).Test.Select(t => t.Text).ToHashSet(StringComparer.Ordinal);
IReadOnlyList<string> distinctive = ProtectedTerms.DistinctiveWords(entries.Select(e => e.Text).Where(t => !testTexts.Contains(t)), glosses);
Console.WriteLine($"Protected FOLDOC words for augmentation: {distinctive.Count} (e.g. {string.Join(", ", distinctive.Take(12))}).");
IAugmenter<LabeledText> augmenter = Augmenters.Eda(new EdaOptions
{
    Copies = Copies,
    ProtectedTerms = ProtectedTerms.Default.WithGlossary(distinctive),
}).ForLabeled();
// One EDA variant per call, for class-balanced augmentation: AugmentBalanced calls it as often as a class is short.
IAugmenter<LabeledText> singleEda = Augmenters.Eda(new EdaOptions
{
    Copies = 1,
    ProtectedTerms = ProtectedTerms.Default.WithGlossary(distinctive),
}).ForLabeled();
// The gentlest part of EDA alone (used by --diagnose): WordNet synonym replacement, same protection and copies.
IAugmenter<LabeledText> synonymsOnly = Augmenters.SynonymReplacement(0.1, ProtectedTerms.Default.WithGlossary(distinctive)).Copies(Copies).ForLabeled();

// Prompts for label scoring. The base model reads 64 bytes at most and LabelScorer keeps a prompt's end, so a text is
// cut to its first words (the definition's head, where FOLDOC names the kind of thing) before it goes into a prompt.
var verbalizations = labels.Select(l => " " + l).ToArray();
int longestLabel = verbalizations.Max(v => Encoding.UTF8.GetByteCount(v));
const string QuerySuffix = "\nCategory:";
var queryTemplate = new PromptTemplate("{text}" + QuerySuffix);
int zeroShotBytes = Context - longestLabel - QuerySuffix.Length;
// In context the window must hold a demonstration (text and label) and the query, so the format is terser and the texts
// shorter: "{text} = {label}\n{text} =" with 18-byte texts fits one demonstration for labels of average length (longer
// ones cut the demonstration's first bytes; with k > 1 the scorer cuts the earlier demonstrations, nearest stays last).
var demonstrationTemplate = new PromptTemplate("{text} = {label}");
var inContextQuery = new PromptTemplate("{text} =");
const int InContextBytes = 18;
var scorer = new LabelScorer(baseModel, tokenizer.Encode, new LabelScorerOptions { BatchSize = 64 });

// (a'): the base adapted to FOLDOC text first (domain-adaptive pretraining): causal language modelling on unlabelled
// FOLDOC entries, every entry of the fixed test set left out (by term, also from foldoc-subset.jsonl, which overlaps the
// category file), so the test texts shape nothing. Training and validation texts of every seed may be in it, unlabelled.
Gpt2LMHeadModel? adaptedModel = null;
if (adaptSteps > 0)
{
    HashSet<string> testTerms = [.. Enumerable.Range(0, entries.Count).Where(i => testTexts.Contains(entries[i].Text)).Select(i => terms[i])];
    var domainTexts = new List<string>();
    var seenTerms = new HashSet<string>(StringComparer.Ordinal);
    foreach (string line in File.ReadLines(Path.Combine(dataFolder, "foldoc-subset.jsonl")))
    {
        using var document = JsonDocument.Parse(line);
        string term = document.RootElement.GetProperty("term").GetString()!;
        string text = document.RootElement.GetProperty("text").GetString()!;
        if (!testTerms.Contains(term) && text.Length > 0 && seenTerms.Add(term))
        {
            domainTexts.Add(text);
        }
    }

    domainTexts.AddRange(Enumerable.Range(0, entries.Count).Where(i => !testTerms.Contains(terms[i]) && seenTerms.Add(terms[i])).Select(i => entries[i].Text));
    if (smoke)
    {
        domainTexts = [.. domainTexts.Take(300)];
    }

    const double AdaptRate = 1e-3;
    string adaptRecipe = $"adapted to FOLDOC from [{recipe}]: {adaptSteps} steps of batch 32 × {Context} bytes from {domainTexts.Count} FOLDOC entries " +
        $"(foldoc-subset.jsonl and foldoc-categories.jsonl outside the {testCount}-entry test set, every 10th held out), AdamW lr {AdaptRate}, linear warm-up 10 % then cosine to 0.1, seed 2027";
    torch.manual_seed(2027);
    adaptedModel = BaseModelCache.GetOrPretrain(baseConfig, adaptRecipe, Path.Combine(dataFolder, "foldoc-subset.jsonl"), adapting =>
    {
        Console.WriteLine($"Adapting the base model to FOLDOC text ({domainTexts.Count} entries, {adaptSteps} steps)…");
        adapting.load_state_dict(baseModel.state_dict());
        FineTuneResult adapted = BaseModelCache.TrainLanguageModel(adapting, Pack(domainTexts.Where((_, i) => i % 10 != 0)), Pack(domainTexts.Where((_, i) => i % 10 == 0)), AdaptRate, adaptSteps, smoke ? 5 : 100, progress, seed: 2027);
        return $"- FOLDOC validation perplexity after adaptation: {adapted.FinalMetrics["validation.perplexity"]:F2} ({adapted.Steps} steps, {adapted.WallTime.TotalSeconds:F0} s)";
    }, useCache: !args.Contains("--no-cache"), new CachedModelDescription(
        "foldoc-adapted-byte-gpt2",
        "FOLDOC-adapted byte-level GPT-2 (NicheTune FewShotClassification sample, arm (a'))",
        "the samples' WordNet base model, further pretrained (causal language modelling) on unlabelled FOLDOC entries outside the few-shot test set.",
        "`foldoc-subset.jsonl` and `foldoc-categories.jsonl` (FOLDOC, GNU FDL 1.1 or later, see `foldoc.COPYRIGHT` beside the samples' data)."));
    adaptedModel.eval();
}

if (Array.IndexOf(args, "--diagnose") is int diagnoseAt and >= 0)
{
    return Diagnose(diagnoseAt + 1 < args.Length ? args[diagnoseAt + 1] : "plain:loss,eda4:loss");
}

var methods = new List<string>();
var results = new Dictionary<string, List<(double MacroF1, double Accuracy, double Seconds)>>(StringComparer.Ordinal);
void Record(string method, IReadOnlyList<int> targets, IReadOnlyList<int> predictions, TimeSpan elapsed)
{
    var report = ClassificationReport.FromLabels(targets, predictions, labels.Length, labels);
    if (!results.TryGetValue(method, out var list))
    {
        methods.Add(method);
        results[method] = list = [];
    }

    list.Add((report.F1(Average.Macro), report.Accuracy, elapsed.TotalSeconds));
    Console.WriteLine($"  {method,-44} macro-F1 {report.F1(Average.Macro):F3}  accuracy {report.Accuracy:F3}  ({elapsed.TotalSeconds:F1} s)");
}

(int[] Plain, TimeSpan PlainTime, int[] Calibrated, TimeSpan CalibratedTime)? zeroShotPredictions = null;
int[] seeds = [.. Enumerable.Range(0, seedCount).Select(s => 42 + s)];
foreach (int seed in seeds)
{
    FewShotSplit split = FewShotSplit.Create(entries, trainCount, validationCount, testCount, seed);
    int[] testTargets = [.. split.Test.Select(t => labelIndex[t.Label])];
    string[] testTextList = [.. split.Test.Select(t => t.Text)];
    Console.WriteLine($"Seed {seed}: training labels {string.Join(", ", split.Train.GroupBy(t => t.Label).OrderByDescending(g => g.Count()).Select(g => $"{g.Key} {g.Count()}"))}.");

    // Baselines.
    var clock = Stopwatch.StartNew();
    int majority = labelIndex[split.Train.GroupBy(t => t.Label).OrderByDescending(g => g.Count()).ThenBy(g => labelIndex[g.Key]).First().Key];
    Record("majority class (of the training set)", testTargets, [.. testTargets.Select(_ => majority)], clock.Elapsed);

    string[] trainTexts = [.. split.Train.Select(t => t.Text)];
    int[] trainTargets = [.. split.Train.Select(t => labelIndex[t.Label])];
    clock.Restart();
    var bayes = new NaiveBayes(trainTexts, trainTargets, labels.Length);
    Record("naive Bayes (word counts)", testTargets, [.. testTextList.Select(bayes.Predict)], clock.Elapsed);
    clock.Restart();
    var logistic = new LogisticRegression(trainTexts, trainTargets, labels.Length);
    Record("logistic regression (bag of words)", testTargets, [.. testTextList.Select(logistic.Predict)], clock.Elapsed);

    // (a) and (b): fine-tuning, without and with augmentation. Every arm gets the same number of epochs (passes over its own
    // training data, originals and variants), is evaluated once per epoch and stops after 4 epochs without a better validation
    // loss. An equal number of optimiser steps instead (the first version of this sample) stopped the augmented runs after
    // about 1.6 passes, before they had learned the small classes: see docs/few-shot.md, "Why augmentation hurt".
    var validation = Tokenize(split.Validation);
    var test = Tokenize(split.Test);
    clock.Restart();
    Record("(a) fine-tuned classifier", testTargets, FineTune(Tokenize(split.Train), validation, test, seed, epochs, StepsPerEpoch(split.Train.Count), stoppingMetric), clock.Elapsed);
    if (adaptedModel is not null)
    {
        clock.Restart();
        Record("(a') fine-tuned classifier, FOLDOC-adapted base", testTargets, FineTune(Tokenize(split.Train), validation, test, seed, epochs, StepsPerEpoch(split.Train.Count), stoppingMetric, adaptedModel), clock.Elapsed);
    }

    clock.Restart();
    List<LabeledText> augmented = split.Train.AugmentAll(augmenter, seed);
    Record($"(b) fine-tuned + EDA ×{Copies}", testTargets, FineTune(Tokenize(augmented), validation, test, seed, epochs, StepsPerEpoch(augmented.Count), stoppingMetric), clock.Elapsed);
    clock.Restart();
    List<LabeledText> balanced = split.Train.AugmentBalanced(singleEda, seed, maxCopies: Copies);
    Record($"(b) fine-tuned + EDA, class-balanced (≤ {Copies} per original)", testTargets, FineTune(Tokenize(balanced), validation, test, seed, epochs, StepsPerEpoch(balanced.Count), stoppingMetric), clock.Elapsed);
    if (seed == seeds[0])
    {
        Console.WriteLine($"  ({augmented.Count} training texts after EDA ×{Copies}, {balanced.Count} after class-balanced EDA; the first: \"{Shorten(augmented[0].Text, 100)}\" → \"{Shorten(augmented[Math.Min(1, augmented.Count - 1)].Text, 100)}\")");
    }

    if (args.Contains("--no-prompting"))
    {
        continue;
    }

    // (c) zero-shot label scoring: no labelled data and no randomness, so it is computed once (same texts every seed).
    if (zeroShotPredictions is null)
    {
        clock.Restart();
        string[] zeroShotTexts = [.. testTextList.Select(t => Snippet(t, zeroShotBytes))];
        var zeroShot = new ZeroShotClassifier(scorer, queryTemplate, labels, new LabelScoringOptions { Verbalizations = verbalizations });
        int[] plain = [.. zeroShot.PredictAll(zeroShotTexts).Select(p => p.Index)];
        TimeSpan plainTime = clock.Elapsed;
        clock.Restart();
        var calibrated = new ZeroShotClassifier(scorer, queryTemplate, labels, new LabelScoringOptions { Verbalizations = verbalizations, Calibrate = true });
        zeroShotPredictions = (plain, plainTime, [.. calibrated.PredictAll(zeroShotTexts).Select(p => p.Index)], clock.Elapsed);
    }

    Record("(c) zero-shot label scoring", testTargets, zeroShotPredictions.Value.Plain, zeroShotPredictions.Value.PlainTime);
    Record("(c) zero-shot, calibrated", testTargets, zeroShotPredictions.Value.Calibrated, zeroShotPredictions.Value.CalibratedTime);

    // (d) in-context: the k training examples most similar to the query (character 3-gram cosine), plain and calibrated.
    string[] inContextTexts = [.. testTextList.Select(t => Snippet(t, InContextBytes))];
    LabeledText[] pool = [.. split.Train.Select(t => t with { Text = Snippet(t.Text, InContextBytes) })];
    foreach (bool calibrate in new[] { false, true })
    {
        clock.Restart();
        var inContext = new InContextClassifier(
            scorer,
            pool,
            demonstrationTemplate,
            inContextQuery,
            labels,
            new InContextOptions
            {
                K = k,
                Selection = DemonstrationSelection.Similar,
                Separator = "\n",
                Seed = seed,
                Scoring = new LabelScoringOptions { Verbalizations = verbalizations, Calibrate = calibrate },
            });
        Record($"(d) in-context, k = {k} nearest{(calibrate ? ", calibrated" : "")}", testTargets, [.. inContext.PredictAll(inContextTexts).Select(p => p.Index)], clock.Elapsed);
    }
}

// The table: mean ± sample standard deviation over seeds.
Console.WriteLine();
Console.WriteLine($"FOLDOC categories, {labels.Length} classes, {trainCount} labelled training examples, fixed {testCount}-example test set; seeds {string.Join(", ", seeds)}.");
Console.WriteLine();
Console.WriteLine("| method | macro-F1 (mean ± std) | accuracy (mean ± std) | macro-F1 per seed | wall time per seed |");
Console.WriteLine("| --- | ---: | ---: | --- | ---: |");
foreach (string method in methods)
{
    var runs = results[method];
    (double f1, double f1Std) = MeanStd(runs.Select(r => r.MacroF1));
    (double accuracy, double accuracyStd) = MeanStd(runs.Select(r => r.Accuracy));
    Console.WriteLine($"| {method} | {f1:F3} ± {f1Std:F3} | {accuracy:F3} ± {accuracyStd:F3} | {string.Join(", ", runs.Select(r => r.MacroF1.ToString("F3", CultureInfo.InvariantCulture)))} | {runs.Average(r => r.Seconds):F1} s |");
}

// The augmentation check the issue asks for: augmented may not be worse than plain by more than the seed spread. Measured
// strictly: the mean over seeds of the paired difference (b − a) on the same split and seed, against the seed spread of the
// plain arm (its sample standard deviation over seeds). The standard deviation of the paired differences is printed beside it.
string plainName = methods.First(m => m.StartsWith("(a)", StringComparison.Ordinal));
(double plainMean, double plainStd) = MeanStd(results[plainName].Select(r => r.MacroF1));
Console.WriteLine();
foreach (string augmentedName in methods.Where(m => m.StartsWith("(b)", StringComparison.Ordinal)))
{
    (double augmentedMean, _) = MeanStd(results[augmentedName].Select(r => r.MacroF1));
    double[] paired = [.. results[augmentedName].Zip(results[plainName], (a, p) => a.MacroF1 - p.MacroF1)];
    (double meanDifference, double differenceStd) = MeanStd(paired);
    bool pass = meanDifference >= -plainStd;
    if (paired.Length < 2)
    {
        Console.WriteLine($"Augmentation check, {augmentedName} vs {plainName}: difference {meanDifference:+0.000;-0.000} on one seed; no seed spread to compare it with (run --seeds 3).");
        continue;
    }

    Console.WriteLine($"Augmentation check, {augmentedName} vs {plainName}: macro-F1 {augmentedMean:F3} vs {plainMean:F3}; " +
        $"paired difference per seed {string.Join(", ", paired.Select(d => d.ToString("+0.000;-0.000", CultureInfo.InvariantCulture)))}, " +
        $"mean {meanDifference:+0.000;-0.000} (std {differenceStd:F3}); seed spread of (a) = std over {paired.Length} seed(s) {plainStd:F3}; " +
        $"criterion mean difference ≥ −spread: {(pass ? "PASS" : "FAIL")}" +
        $"{(pass ? "" : $" (worse by {-meanDifference:F3}, more than the spread)")}; better on {paired.Count(d => d > 0)} of {paired.Length} seed(s).");
}

Console.WriteLine($"Total {total.Elapsed.TotalSeconds:F0} s; {torch.get_num_threads()} libtorch thread(s).");
return 0;

// Diagnosis on the first seed, never on the test set: the arms are scored on a development set, every non-test entry
// that is in neither the 100 training nor the 100 validation examples.
int Diagnose(string armList)
{
    const int seed = 42;
    FewShotSplit split = FewShotSplit.Create(entries, trainCount, validationCount, testCount, seed);
    var used = split.Train.Concat(split.Validation).Select(e => e.Text).ToHashSet(StringComparer.Ordinal);
    List<LabeledText> dev = [.. entries.Where(e => !testTexts.Contains(e.Text) && !used.Contains(e.Text))];
    int[] devTargets = [.. dev.Select(e => labelIndex[e.Label])];
    string[] devTexts = [.. dev.Select(e => e.Text)];
    Console.WriteLine($"Diagnosis, seed {seed}: {split.Train.Count} training, {split.Validation.Count} validation, {dev.Count} development examples (no test text).");
    string[] trainTexts = [.. split.Train.Select(t => t.Text)];
    int[] trainTargets = [.. split.Train.Select(t => labelIndex[t.Label])];
    var logistic = new LogisticRegression(trainTexts, trainTargets, labels.Length);
    double Macro(IReadOnlyList<int> predictions) => ClassificationReport.FromLabels(devTargets, predictions, labels.Length, labels).F1(Average.Macro);
    Console.WriteLine($"  logistic regression on the 100: development macro-F1 {Macro([.. devTexts.Select(logistic.Predict)]):F3}");
    var augmenters = new Dictionary<string, IAugmenter<LabeledText>>(StringComparer.Ordinal) { ["eda4"] = augmenter, ["syn4"] = synonymsOnly };
    foreach ((string name, IAugmenter<LabeledText> aug) in augmenters)
    {
        List<LabeledText> all = split.Train.AugmentAll(aug, seed);
        var variants = new List<(LabeledText Original, LabeledText Variant)>();
        LabeledText? current = null;
        int next = 0;
        foreach (LabeledText e in all)
        {
            if (next < split.Train.Count && ReferenceEquals(e, split.Train[next]))
            {
                current = e;
                next++;
                continue;
            }

            variants.Add((current!, e));
        }

        string Head(string t) => Encoding.UTF8.GetString(Truncate(tokenizer.Encode(t), classifierBytes).Where(b => b < 256).Select(b => (byte)b).ToArray());
        double headSame = variants.Count(v => Head(v.Original.Text) == Head(v.Variant.Text)) / (double)variants.Count;
        double simWhole = variants.Average(v => TextSimilarity.CharacterNGramCosine(v.Original.Text, v.Variant.Text));
        double simHead = variants.Average(v => TextSimilarity.CharacterNGramCosine(Head(v.Original.Text), Head(v.Variant.Text)));
        double flips = variants.Count(v => logistic.Predict(v.Variant.Text) != logistic.Predict(v.Original.Text)) / (double)variants.Count;
        var augmentedLogistic = new LogisticRegression([.. all.Select(t => t.Text)], [.. all.Select(t => labelIndex[t.Label])], labels.Length);
        var augmentedBayes = new NaiveBayes([.. all.Select(t => t.Text)], [.. all.Select(t => labelIndex[t.Label])], labels.Length);
        var bayes = new NaiveBayes(trainTexts, trainTargets, labels.Length);
        Console.WriteLine($"  {name}: {variants.Count} variants; first {classifierBytes} bytes unchanged in {headSame:P0}; 3-gram cosine to the original {simWhole:F3} (whole), {simHead:F3} (first {classifierBytes} bytes); " +
            $"logistic regression (fitted on the 100) changes its prediction on {flips:P1} of variants");
        Console.WriteLine($"    word-count models with these variants: logistic regression {Macro([.. devTexts.Select(augmentedLogistic.Predict)]):F3} (without {Macro([.. devTexts.Select(logistic.Predict)]):F3}), " +
            $"naive Bayes {Macro([.. devTexts.Select(augmentedBayes.Predict)]):F3} (without {Macro([.. devTexts.Select(bayes.Predict)]):F3})");
    }

    var validation = Tokenize(split.Validation);
    var devTokens = Tokenize(dev);
    int stepsPerEpoch = (split.Train.Count + BatchSize - 1) / BatchSize;
    foreach (string arm in armList.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
    {
        string[] parts = arm.Split(':');
        string data = parts[0];
        string stopOn = parts.Length > 1 && parts[1] == "f1" ? "validation.f1.macro" : "validation.loss";
        bool sameEpochs = parts.Length > 2 && parts[2] == "epochs";
        List<LabeledText> train = data switch
        {
            "plain" => split.Train,
            "eda4" => split.Train.AugmentAll(augmenter, seed),
            "syn4" => split.Train.AugmentAll(synonymsOnly, seed),
            "eda1" => split.Train.AugmentAll(Augmenters.Eda(new EdaOptions { Copies = 1, ProtectedTerms = ProtectedTerms.Default.WithGlossary(distinctive) }).ForLabeled(), seed),
            "bal" => split.Train.AugmentBalanced(singleEda, seed, maxCopies: Copies),
            _ => throw new ArgumentException($"Unknown diagnosis arm '{data}'; use plain, eda4, syn4 or eda1.", nameof(armList)),
        };
        int runEpochs = sameEpochs ? epochs : Math.Max(1, (int)Math.Round(epochs * (double)split.Train.Count / train.Count));
        var clock = Stopwatch.StartNew();
        int[] predictions = FineTune(Tokenize(train), validation, devTokens, seed, runEpochs, sameEpochs ? StepsPerEpoch(train.Count) : stepsPerEpoch, stopOn);
        var report = ClassificationReport.FromLabels(devTargets, predictions, labels.Length, labels);
        Console.WriteLine($"  {arm,-22} development macro-F1 {report.F1(Average.Macro):F3}, accuracy {report.Accuracy:F3}; predicted per class {string.Join(" ", Enumerable.Range(0, labels.Length).Select(c => predictions.Count(p => p == c)))} " +
            $"(true {string.Join(" ", Enumerable.Range(0, labels.Length).Select(c => devTargets.Count(p => p == c)))}) ({clock.Elapsed.TotalSeconds:F0} s)");
    }

    return 0;
}

List<TokenExample> Tokenize(IEnumerable<LabeledText> examples)
    => [.. examples.Select(e => new TokenExample(Truncate(tokenizer.Encode(e.Text), classifierBytes), labelIndex[e.Label]))];

// Fine-tunes a fresh classifier (a copy of the base weights, or of source's, and a new head) and returns its test predictions.
int[] FineTune(List<TokenExample> train, List<TokenExample> validation, List<TokenExample> test, int seed, int runEpochs, int evaluateEvery, string stopOn = "validation.loss", Gpt2LMHeadModel? source = null)
{
    torch.manual_seed(seed);
    var body = new Gpt2LMHeadModel(baseConfig);
    body.load_state_dict((source ?? baseModel).state_dict());
    using var classifier = new Gpt2MeanPoolClassifier(body, labels.Length);
    FineTuneResult result = FineTuner.For(classifier)
        .WithObjective(Objectives.SequenceClassification())
        .WithFewShotRecipe(FewShot.Recipe() with { Seed = seed, Epochs = runEpochs, BatchSize = BatchSize, Patience = 4, EarlyStoppingMetric = stopOn })
        .WithLearningRates(group => group.Kind == LayerGroupKind.Head ? headRate : bodyRate)
        .EvaluateEvery(evaluateEvery)
        .Evaluate(Metrics.Accuracy(), Metrics.MacroF1())
        .Fit(train, validation, new TokenCollator(ByteTokenizer.PaddingId, classifierBytes));
    Console.WriteLine($"    {train.Count} examples, {result.Steps} steps, best {stopOn} {result.BestMetric:F3} at step {result.BestStep} ({result.StopReason}); " +
        $"validation accuracy {result.FinalMetrics.GetValueOrDefault("validation.accuracy"):F3}, macro-F1 {result.FinalMetrics.GetValueOrDefault("validation.f1.macro"):F3}");
    return Predict(classifier, test);
}

int[] Predict(Gpt2MeanPoolClassifier classifier, List<TokenExample> examples)
{
    classifier.eval();
    var collator = new TokenCollator(ByteTokenizer.PaddingId, classifierBytes);
    var predictions = new List<int>(examples.Count);
    using var noGrad = torch.no_grad();
    for (int start = 0; start < examples.Count; start += 64)
    {
        using var scope = torch.NewDisposeScope();
        TokenBatch batch = collator.Collate(examples.GetRange(start, Math.Min(64, examples.Count - start)));
        Tensor logits = classifier.forward(batch.InputIds, batch.AttentionMask);
        predictions.AddRange(logits.argmax(1).to_type(ScalarType.Int64).data<long>().ToArray().Select(p => (int)p));
    }

    return [.. predictions];
}

static int StepsPerEpoch(int examples) => (examples + BatchSize - 1) / BatchSize;

static int[] Truncate(int[] ids, int length) => ids.Length <= length ? ids : ids[..length];

// The text's first words, at most maxBytes UTF-8 bytes (cut at a space where there is one).
static string Snippet(string text, int maxBytes)
{
    if (Encoding.UTF8.GetByteCount(text) <= maxBytes)
    {
        return text;
    }

    int end = 0;
    int bytes = 0;
    while (end < text.Length && bytes + Encoding.UTF8.GetByteCount(text.AsSpan(end, 1)) <= maxBytes)
    {
        bytes += Encoding.UTF8.GetByteCount(text.AsSpan(end, 1));
        end++;
    }

    int space = text.LastIndexOf(' ', Math.Max(0, end - 1), end);
    return text[..(space > 0 ? space : end)];
}

static string Shorten(string text, int length) => text.Length <= length ? text : text[..length] + "…";

static (double Mean, double Std) MeanStd(IEnumerable<double> values)
{
    double[] v = [.. values];
    double mean = v.Average();
    double std = v.Length < 2 ? 0 : Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Length - 1));
    return (mean, std);
}
