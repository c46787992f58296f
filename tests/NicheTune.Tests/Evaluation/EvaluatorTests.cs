using FluentAssertions;
using NicheTune.Evaluation;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace NicheTune.Tests.Evaluation;

[Collection(TorchCollection.Name)]
public sealed class EvaluatorTests
{
    private static readonly string[] Classes = ["language", "networking", "hardware"];

    [Fact]
    public void Evaluate_TrainedClassifierOnFoldocCategories_AgreesWithTrainerAndHostDefinitions()
    {
        var (train, validation) = FoldocCategories();
        torch.manual_seed(2);
        using var model = new TinyClassifier(ByteTokenizer.VocabularySize, Classes.Length, width: 32);
        var objective = Objectives.SequenceClassification(labelSmoothing: 0.1);
        FineTuneResult fit = FineTuner.For(model).WithObjective(objective)
            .WithLearningRate(2e-2).WithBatchSize(16).WithEpochs(4)
            .Evaluate(Metrics.Accuracy(), Metrics.MacroF1())
            .Fit(train, validation);
        model.train();

        var confusion = Metrics.ConfusionMatrix(Classes);
        var calibration = Metrics.ExpectedCalibrationError(10);
        var counter = new ExampleCounter();
        IReadOnlyDictionary<string, double> results = Evaluator.Evaluate(
            model,
            objective,
            validation,
            [Metrics.Loss(), Metrics.Accuracy(), Metrics.MacroF1(), Metrics.F1(Average.Micro), confusion, calibration, Metrics.TopKAccuracy(3), counter],
            batchSize: 7);

        results.Keys.Should().BeEquivalentTo("loss", "accuracy", "f1.macro", "f1.micro", "confusion_matrix.accuracy", "ece", "accuracy.top3", "examples");
        model.training.Should().BeTrue("the evaluator restores the caller's mode");

        // Same numbers as the trainer's validation pass, whatever the batch size (counts, not batch means).
        results["accuracy"].Should().BeApproximately(fit.FinalMetrics["validation.accuracy"], 1e-12);
        results["f1.macro"].Should().BeApproximately(fit.FinalMetrics["validation.f1.macro"], 1e-12);
        results["loss"].Should().BeApproximately(fit.FinalMetrics["validation.loss"], 1e-5);
        results["examples"].Should().Be(validation.Count, "a user's own IMetric plugs in like a built-in");

        // Consistent among themselves: micro F1 is accuracy for single-label data; top-3 of 3 classes always hits.
        results["f1.micro"].Should().BeApproximately(results["accuracy"], 1e-12);
        results["confusion_matrix.accuracy"].Should().BeApproximately(results["accuracy"], 1e-12);
        results["accuracy.top3"].Should().Be(1.0);
        results["ece"].Should().BeInRange(0, 1).And.Be(calibration.Report().ExpectedCalibrationError);

        // And equal to scikit-learn's definitions applied on the host to the model's own arg-max predictions.
        int[] predicted = Predict(model, validation);
        int[] targets = [.. validation.Select(e => e.Label!.Value)];
        var host = ClassificationReport.FromLabels(targets, predicted, Classes.Length, Classes);
        ClassificationReport report = confusion.Report();
        report.ToMatrix().Should().BeEquivalentTo(host.ToMatrix());
        results["f1.macro"].Should().BeApproximately(host.F1(Average.Macro), 1e-12);
        results["accuracy"].Should().BeApproximately(predicted.Zip(targets).Count(p => p.First == p.Second) / (double)targets.Length, 1e-12);
        report.Total.Should().Be(validation.Count);
        report.Classes.Sum(c => c.Support).Should().Be(validation.Count);

        double majority = validation.GroupBy(e => e.Label).Max(g => g.Count()) / (double)validation.Count;
        results["accuracy"].Should().BeGreaterThan(majority, "the trained classifier beats the majority class");
        report.ToMarkdown().Should().Contain("| language |").And.Contain("**macro avg**").And.Contain("target \\ predicted");
    }

    [Fact]
    public void Evaluate_CausalLm_ReportsUnprefixedTokenWeightedMetrics()
    {
        var (_, validation) = TestData.FoldocLanguageModeling(length: 48, trainEntries: 0, validationEntries: 6);
        torch.manual_seed(3);
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);

        var one = Evaluator.Evaluate(model, Objectives.CausalLanguageModeling(), validation, [Metrics.Loss(), Metrics.Perplexity(), Metrics.TopKAccuracy(5)], batchSize: 64);
        var many = Evaluator.Evaluate(model, Objectives.CausalLanguageModeling(), validation, [Metrics.Loss(), Metrics.Perplexity(), Metrics.TopKAccuracy(5)], batchSize: 3);

        one["perplexity"].Should().BeApproximately(Math.Exp(one["loss"]), 1e-4 * one["perplexity"]);
        many["loss"].Should().BeApproximately(one["loss"], 1e-5, "the loss is token-weighted over the whole set, not a mean of batches");
        many["accuracy.top5"].Should().BeApproximately(one["accuracy.top5"], 1e-12);
    }

    [Fact]
    public void Evaluate_InvalidArguments_ThrowWithTheFix()
    {
        using var model = new TinyClassifier(16, 2);
        var objective = Objectives.SequenceClassification();
        List<TokenExample> data = [new([1, 2], 0)];

        var empty = () => Evaluator.Evaluate(model, objective, [], [Metrics.Accuracy()]);
        empty.Should().Throw<ArgumentException>().WithParameterName("data").WithMessage("*at least one*");
        var noMetrics = () => Evaluator.Evaluate(model, objective, data, []);
        noMetrics.Should().Throw<ArgumentException>().WithParameterName("metrics");
        var duplicate = () => Evaluator.Evaluate(model, objective, data, [Metrics.MacroF1(), Metrics.F1(Average.Macro)]);
        duplicate.Should().Throw<ArgumentException>().WithMessage("Two metrics are named 'f1.macro'*");
        var batch = () => Evaluator.Evaluate(model, objective, data, [Metrics.Accuracy()], batchSize: 0);
        batch.Should().Throw<ArgumentOutOfRangeException>().WithParameterName("batchSize");
        using var wrong = new NamedTreeLike();
        var unsupported = () => Evaluator.Evaluate(wrong, objective, data, [Metrics.Accuracy()]);
        unsupported.Should().Throw<ArgumentException>().WithParameterName("model").WithMessage("*Module<Tensor, Tensor>*");
    }

    internal static (List<TokenExample> Train, List<TokenExample> Validation) FoldocCategories()
    {
        var tokenizer = new ByteTokenizer();
        var labelled = TestData.FoldocEntries
            .Where(e => e.Categories.Length > 0 && Classes.Contains(e.Categories[0]))
            .Select(e => new TokenExample(tokenizer.Encode(e.Text.Length > 200 ? e.Text[..200] : e.Text), Array.IndexOf(Classes, e.Categories[0])))
            .ToList();
        return (labelled.Where((_, i) => i % 5 != 0).ToList(), labelled.Where((_, i) => i % 5 == 0).ToList());
    }

    private static int[] Predict(TinyClassifier model, List<TokenExample> data)
    {
        model.eval();
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var predictions = new List<int>();
        foreach (TokenExample example in data)
        {
            using TokenBatch batch = new TokenCollator().Collate([example]);
            predictions.Add((int)model.forward(batch.InputIds, batch.AttentionMask).argmax(-1).item<long>());
        }

        model.train();
        return [.. predictions];
    }

    /// <summary>A user's own metric: counts evaluated examples from the batch's host-side count.</summary>
    private sealed class ExampleCounter : IMetric
    {
        private long _count;

        public string Name => "examples";

        public bool HigherIsBetter => true;

        public void Reset() => _count = 0;

        public void Update(in MetricBatch batch) => _count += batch.Count;

        public double Compute() => _count;
    }

    /// <summary>A module neither objective can call (three inputs).</summary>
    private sealed class NamedTreeLike : nn.Module<Tensor, Tensor, Tensor, Tensor>
    {
        public NamedTreeLike() : base(nameof(NamedTreeLike))
        {
        }

        public override Tensor forward(Tensor a, Tensor b, Tensor c) => a;
    }
}
