using NicheTune.Augmentation;
using NicheTune.Deployment;
using NicheTune.Refinement;

namespace NicheTune.Tests.Refinement;

/// <summary>The code shown in docs/refinement.md, region by region; RefinementDocTests runs it and checks the page shows it.</summary>
public static class RefinementDocExample
{
    /// <summary>One refinement round: keep unsure traffic, label the most useful, re-fine-tune with replay, gate the result.</summary>
    public static (FeedbackStatistics Store, IReadOnlyList<SelectedItem<FeedbackItem>> Picked, int TrainingSize, PromotionDecision Decision) Round(
        string feedbackPath,
        IReadOnlyList<PredictionRecord> traffic,
        Func<string, string> annotate,
        IReadOnlyList<LabeledText> originalTraining,
        Func<IReadOnlyList<LabeledText>, Func<IReadOnlyList<string>, IReadOnlyList<string>>> fineTune,
        Func<IReadOnlyList<string>, IReadOnlyList<string>> champion,
        IReadOnlyList<LabeledText> evaluationSet,
        IReadOnlyList<string> labels)
    {
        // DOC-BEGIN store
        using var store = new FeedbackStore(feedbackPath, new FeedbackStoreOptions
        {
            Filter = FeedbackFilters.LowConfidence(0.6),   // keep the requests the model is unsure of
        });

        // A served model calls Observe for every request (the store is an IPredictionObserver): cheap, buffered, batched.
        foreach (PredictionRecord record in traffic)
        {
            store.Observe(record);
        }

        store.Flush();
        // DOC-END

        // DOC-BEGIN select
        var sampler = new UncertaintySampler(new UncertaintySamplerOptions
        {
            Measure = Uncertainty.Margin(),   // or Uncertainty.Entropy(), Uncertainty.LeastConfidence()
            DiversityWeight = 0.3,            // 0 = uncertainty only; novelty from the inputs' character shingles
        });
        IReadOnlyList<SelectedItem<FeedbackItem>> picked = sampler.Select(store.GetUnlabelled(), k: 80);
        foreach (SelectedItem<FeedbackItem> pick in picked)
        {
            store.AddLabel(pick.Item.Id, annotate(pick.Item.Input), source: "annotator");
        }
        // DOC-END

        // DOC-BEGIN retrain
        List<LabeledText> training = RefinementData.MixWithReplay(
            store.ExportLabelled(), originalTraining, replayRatio: 1.0, seed: 42);   // new labels + as many old examples
        Func<IReadOnlyList<string>, IReadOnlyList<string>> challenger = fineTune(training);
        // DOC-END

        // DOC-BEGIN gate
        var gate = new PromotionGate(evaluationSet, labels, new PromotionGateOptions
        {
            Metrics = [PromotionMetric.Accuracy(tolerance: 0.02), PromotionMetric.MacroF1(tolerance: 0.02)],
            MinimumSliceSize = 20,   // every label is a slice; smaller slices are reported, not gated
        });
        PromotionDecision decision = gate.Evaluate(champion, challenger);
        Console.WriteLine(decision.Summary);   // "Refuse: 1 regression(s); worst: slice 'label = language' … recall 0.9727 → 0.7909 …"
        string report = decision.ToMarkdown();
        // DOC-END

        return (store.GetStatistics(), picked, training.Count, decision);
    }
}
