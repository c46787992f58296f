using NicheTune.Augmentation;
using NicheTune.Evaluation;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Tests.Refinement;

/// <summary>
/// A refinement round on the FOLDOC category task with a tiny bag-of-bytes classifier: train on a few labels, predict
/// a pool, label some of it, re-fine-tune, compare. Shared by the end-to-end test and the docs example.
/// </summary>
internal static class FoldocRefinement
{
    private static readonly ByteTokenizer Tokenizer = new();

    public static IReadOnlyList<string> Labels => FoldocCategories.Labels;

    public static TinyClassifier NewModel(int seed)
    {
        torch.manual_seed(seed);
        return new TinyClassifier(ByteTokenizer.VocabularySize, Labels.Count, width: 32);
    }

    public static void Train(TinyClassifier model, IReadOnlyList<LabeledText> data, int seed, int epochs = 10)
        => FineTuner.For(model)
            .WithObjective(Objectives.SequenceClassification())
            .WithLearningRate(2e-2).WithBatchSize(16).WithEpochs(epochs).WithSeed(seed)
            .Fit([.. data.Select(Tokenize)]);

    /// <summary>Class probabilities (softmax of the logits), one row per text.</summary>
    public static float[][] Probabilities(TinyClassifier model, IReadOnlyList<string> texts)
    {
        bool wasTraining = model.training;
        model.eval();
        var collator = new TokenCollator();
        var rows = new List<float[]>(texts.Count);
        using (torch.no_grad())
        {
            for (int start = 0; start < texts.Count; start += 64)
            {
                using var scope = torch.NewDisposeScope();
                List<TokenExample> batch = [.. texts.Skip(start).Take(64).Select(t => Tokenize(new LabeledText(t, Labels[0])))];
                using TokenBatch tokens = collator.Collate(batch);
                Tensor probabilities = nn.functional.softmax(model.forward(tokens.InputIds, tokens.AttentionMask), 1);
                float[] flat = probabilities.data<float>().ToArray();
                for (int r = 0; r < batch.Count; r++)
                {
                    rows.Add(flat[(r * Labels.Count)..((r + 1) * Labels.Count)]);
                }
            }
        }

        model.train(wasTraining);
        return [.. rows];
    }

    public static IReadOnlyList<string> Predict(TinyClassifier model, IReadOnlyList<string> texts)
        => [.. Probabilities(model, texts).Select(p => Labels[Array.IndexOf(p, p.Max())])];

    public static ClassificationReport Evaluate(TinyClassifier model, IReadOnlyList<LabeledText> test)
    {
        IReadOnlyList<string> predicted = Predict(model, [.. test.Select(t => t.Text)]);
        return ClassificationReport.FromLabels(
            [.. test.Select(t => IndexOf(t.Label))], [.. predicted.Select(IndexOf)], Labels.Count, Labels);
    }

    private static int IndexOf(string label) => Labels.ToList().IndexOf(label);

    private static TokenExample Tokenize(LabeledText e)
        => new(Tokenizer.Encode(e.Text.Length > 200 ? e.Text[..200] : e.Text), IndexOf(e.Label));
}
