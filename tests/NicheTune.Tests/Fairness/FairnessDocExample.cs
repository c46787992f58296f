using NicheTune.Fairness;
using NicheTune.Models;
using NicheTune.Prompting;
using NicheTune.Text;

namespace NicheTune.Tests.Fairness;

/// <summary>The code of docs/fairness.md (between the DOC markers), compiled here and run by <see cref="FairnessDocTests"/>.</summary>
public static class FairnessDocExample
{
    public static (CounterfactualReport LanguageModel, CounterfactualReport Classifier, GroupFairnessReport Groups, BiasReport Report) Probe(
        Gpt2LMHeadModel model, Func<IReadOnlyList<string>, IReadOnlyList<float[]>> classify, int[] targets, int[] predictions, string[] groups)
    {
        // DOC-BEGIN
        // Counterfactual probes: the shipped word lists (pronouns, given names, nationalities), or CounterfactualAttribute.Load(yourFile).
        var probe = new CounterfactualProbe(
            [
                new PromptTemplate("{name} said that {pronoun} wrote the compiler."),
                new PromptTemplate("The {nationality} programmer fixed the network driver."),
            ],
            CounterfactualAttribute.Defaults());

        // A language model: log-likelihood of each sentence (here after a newline) through a LabelScorer.
        var scorer = new LabelScorer(model, new ByteTokenizer().Encode);
        CounterfactualReport lm = probe.ProbeLanguageModel(texts => scorer.Score("\n", texts));

        // A classifier: any delegate from texts to class probabilities (a fine-tuned model, a served NicheModel …).
        CounterfactualReport classifier = probe.ProbeClassifier(classify, ["ok", "flagged"]);

        // Group metrics from labelled predictions (or GroupFairness.Compute(errorReport) with slices).
        GroupFairnessReport fairness = GroupFairness.Compute(targets, predictions, groups, ["ok", "flagged"]);
        string markdown = lm.ToMarkdown() + classifier.ToMarkdown() + fairness.ToMarkdown();
        
        // One verdict against thresholds (defaults: flip rate, score gap and group differences ≤ 0.10; groups under 30
        // examples left out), as Markdown or a self-contained HTML page. A promotion gate can require it to pass:
        // gate.Compare(champion, challenger).RequireBiasChecks(report).
        var report = new BiasReport(classifier, fairness, thresholds: new BiasThresholds { MinimumGroupSize = 4 });
        string html = report.ToHtml();
        // DOC-END
        return (lm, classifier, fairness, report);
    }
}
