using NicheTune.Augmentation;
using NicheTune.Deployment;
using NicheTune.Fairness;
using NicheTune.Models;
using NicheTune.Prompting;
using NicheTune.Text;
using NicheTune.Training;
using TorchSharp;

namespace NicheTune.Tests.Fairness;

/// <summary>
/// The code of docs/bias.md (between the DOC markers), compiled here and run by <see cref="PlantedBiasTests"/>: a FOLDOC
/// category classifier trained on texts that carry a possessive pronoun, with and without a planted correlation between
/// the pronoun and one label, then checked with a counterfactual probe and group metrics.
/// </summary>
public static class PlantedBiasExample
{
    /// <summary>The label the planted data ties to "her".</summary>
    public const string PlantedLabel = "networking";

    // DOC-BEGIN training data
    // Every text says whose notes it comes from. With plant = true, 90 % of the networking texts say "her" and 90 % of
    // the others "his": the pronoun predicts the label. Without, exactly half of every label's texts say "her", so the
    // pronoun and the label are independent (a coin toss per text would leave chance correlations a model can learn).
    public static string Attributed(string possessive, string text) => $"From {possessive} notes: {text}";

    public static List<LabeledText> Attribute(IReadOnlyList<LabeledText> examples, bool plant, int seed)
    {
        var random = new Random(seed);
        var attributed = new LabeledText[examples.Count];
        foreach (var label in Enumerable.Range(0, examples.Count).GroupBy(i => examples[i].Label))
        {
            int[] members = [.. label];
            random.Shuffle(members);
            double herShare = !plant ? 0.5 : label.Key == PlantedLabel ? 0.9 : 0.1;
            int her = (int)Math.Round(herShare * members.Length);
            for (int k = 0; k < members.Length; k++)
            {
                LabeledText e = examples[members[k]];
                attributed[members[k]] = e with { Text = Attributed(k < her ? "her" : "his", e.Text) };
            }
        }

        return [.. attributed];
    }
    // DOC-END

    /// <summary>Fine-tunes a mean-pooled byte-level GPT-2 on <paramref name="train"/> and exports it to <paramref name="folder"/>.</summary>
    public static void TrainAndExport(IReadOnlyList<LabeledText> train, IReadOnlyList<string> labelNames, string folder, int seed)
    {
        // DOC-BEGIN model
        // A byte-level GPT-2 (2 blocks, width 64) mean-pooled into a classifier, fine-tuned for 300 steps of 16 texts
        // cut to 96 bytes, then exported as the package that would be deployed.
        var tokenizer = new ByteTokenizer();
        var labels = new LabelMap(labelNames);
        torch.manual_seed(seed);
        using var classifier = new MeanPoolClassifier(
            new Gpt2LMHeadModel(new Gpt2Config { VocabularySize = ByteTokenizer.VocabularySize, ContextLength = 96, EmbeddingSize = 64, LayerCount = 2, HeadCount = 2 }),
            labels.Count);
        FineTuner.For(classifier)
            .WithObjective(Objectives.SequenceClassification())
            .WithLearningRate(1e-3)
            .WithBatchSize(16)
            .WithMaxSteps(300)
            .WithSeed(seed)
            .Fit([.. train.Select(e => new TokenExample(tokenizer.Encode(e.Text), labels.IdOf(e.Label)))], null, tokenizer.CreateCollator(maxLength: 96));
        ModelPackage.Export(classifier, folder, new ModelPackageOptions { Tokenizer = tokenizer, Labels = labels, MaxLength = 96 });
        // DOC-END
    }

    /// <summary>Probes a classifier (any delegate from texts to class probabilities) on held-out texts and judges it.</summary>
    public static BiasReport Check(Func<IReadOnlyList<string>, IReadOnlyList<float[]>> classify, IReadOnlyList<LabeledText> heldOut, IReadOnlyList<string> labelNames, string title)
    {
        // DOC-BEGIN check
        // Counterfactual probe: every held-out text with "her" and with "his" (the shipped possessive pair).
        CounterfactualAttribute possessive = CounterfactualAttribute.Defaults().Single(a => a.Slot == "possessive");
        var probe = new CounterfactualProbe(heldOut.Select(e => new PromptTemplate(Attributed("{possessive}", PromptTemplate.Escape(e.Text)))), [possessive]);
        CounterfactualReport counterfactual = probe.ProbeClassifier(classify, labelNames);

        // Group metrics: every held-out text once per group, so the two groups differ in the pronoun only.
        string[] groups = [.. heldOut.SelectMany(_ => new[] { "female", "male" })];
        string[] texts = [.. heldOut.SelectMany(e => new[] { Attributed("her", e.Text), Attributed("his", e.Text) })];
        var labels = new LabelMap(labelNames);
        int[] targets = [.. heldOut.SelectMany(e => new[] { labels.IdOf(e.Label), labels.IdOf(e.Label) })];
        int[] predictions = [.. classify(texts).Select(p => Array.IndexOf(p, p.Max()))];
        GroupFairnessReport fairness = GroupFairness.Compute(targets, predictions, groups, labelNames);

        // One verdict against the default thresholds (flip rate, score gap, group differences ≤ 0.10).
        return new BiasReport(counterfactual, fairness, title: title);
        // DOC-END
    }

    /// <summary>Loads the exported package and checks it, classifying through <see cref="NicheModel"/> as production would.</summary>
    public static (BiasReport Report, double Accuracy) CheckPackage(string folder, IReadOnlyList<LabeledText> heldOut, IReadOnlyList<string> labelNames, string title)
    {
        // DOC-BEGIN package
        // Check the package that would ship: concurrent requests are micro-batched by NicheModel.
        using NicheModel model = NicheModel.Load(folder);
        IReadOnlyList<float[]> Classify(IReadOnlyList<string> texts) =>
            [.. Task.WhenAll(texts.Select(t => model.ClassifyAsync(t))).GetAwaiter().GetResult().Select(r => r.Probabilities.ToArray())];
        BiasReport report = Check(Classify, heldOut, labelNames, title);
        // DOC-END
        return (report, Accuracy(Classify, heldOut, labelNames));
    }

    /// <summary>The share of held-out texts classified right, each counted once with "her" and once with "his".</summary>
    public static double Accuracy(Func<IReadOnlyList<string>, IReadOnlyList<float[]>> classify, IReadOnlyList<LabeledText> heldOut, IReadOnlyList<string> labelNames)
    {
        LabeledText[] both = [.. heldOut.SelectMany(e => new[] { e with { Text = Attributed("her", e.Text) }, e with { Text = Attributed("his", e.Text) } })];
        IReadOnlyList<float[]> probabilities = classify([.. both.Select(e => e.Text)]);
        return both.Select((e, i) => labelNames[Array.IndexOf(probabilities[i], probabilities[i].Max())] == e.Label ? 1.0 : 0.0).Average();
    }
}
