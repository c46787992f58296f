using FluentAssertions;
using NicheTune.Evaluation;
using NicheTune.Models;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace NicheTune.Tests.Training;

[Collection(TorchCollection.Name)]
public sealed class FineTunerTrainingTests
{
    [Fact]
    public void Fit_Gpt2OnFoldocText_LowersValidationPerplexity()
    {
        var (train, validation) = TestData.FoldocLanguageModeling(length: 64, trainEntries: 300, validationEntries: 40);
        torch.manual_seed(1);
        using var model = new Gpt2LMHeadModel(new Gpt2Config
        {
            VocabularySize = ByteTokenizer.VocabularySize, ContextLength = 64, EmbeddingSize = 64, LayerCount = 2, HeadCount = 4,
            ResidualDropout = 0, EmbeddingDropout = 0, AttentionDropout = 0,
        });

        FineTunePlan<TokenBatch> plan = FineTuner.For(model)
            .WithObjective(Objectives.CausalLanguageModeling())
            .WithLearningRate(3e-3)
            .WithBatchSize(16)
            .WithMaxSteps(300)
            .LogEvery(20)
            .Evaluate(Metrics.Perplexity(), Metrics.Accuracy())
            .Build();
        double before = plan.Evaluate(validation)["validation.perplexity"];

        FineTuneResult result = plan.Fit(train, validation);

        double after = result.FinalMetrics["validation.perplexity"];
        // Classical baseline on the same split: a smoothed unigram model. 300 steps are a smoke-sized run; the QuickStart's
        // longer run is where the model is compared with the bigram baseline.
        double unigram = new NGramLanguageModel(1, ByteTokenizer.VocabularySize).Fit(train.Select(e => e.InputIds)).Perplexity(validation.Select(e => e.InputIds));
        before.Should().BeGreaterThan(200, "an untrained byte model is near uniform over 258 ids");
        after.Should().BeLessThan(before / 10, "the model must learn FOLDOC's bytes in 300 steps");
        after.Should().BeLessThan(unigram, "after 300 steps the model must already use context, beating the unigram baseline on the same split");
        result.TrainingLoss.First().Loss.Should().BeGreaterThan(result.TrainingLoss.Last().Loss);
        double mostFrequentByte = validation.SelectMany(e => e.InputIds.Skip(1)).GroupBy(id => id).Max(g => g.Count())
            / (double)validation.Sum(e => e.InputIds.Length - 1);
        result.FinalMetrics["validation.accuracy"].Should().BeGreaterThan(mostFrequentByte, "it must beat always predicting the most frequent byte");
        result.Steps.Should().Be(300);
        result.TokensPerSecond.Should().BePositive();
    }

    [Fact]
    public void Fit_SameSeedTwice_ProducesIdenticalWeights()
    {
        var (train, _) = TestData.FoldocLanguageModeling(length: 32, trainEntries: 60, validationEntries: 0);
        Dictionary<string, Tensor> Run()
        {
            torch.manual_seed(7);
            using var model = new TinyCausalLm(ByteTokenizer.VocabularySize, dropoutRate: 0.2);
            FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling()).WithLearningRate(1e-2)
                .WithBatchSize(8).WithEpochs(2).WithSeed(11).Fit(train);
            return Weights.Snapshot(model);
        }

        var first = Run();
        var second = Run();

        Weights.Equal(first, second).Should().BeTrue("the seed fixes dropout masks and data order");
    }

    [Fact]
    public void Fit_DifferentSeed_ProducesDifferentWeights()
    {
        var (train, _) = TestData.FoldocLanguageModeling(length: 32, trainEntries: 40, validationEntries: 0);
        Dictionary<string, Tensor> Run(long seed)
        {
            torch.manual_seed(7);
            using var model = new TinyCausalLm(ByteTokenizer.VocabularySize, dropoutRate: 0.2);
            FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling()).WithLearningRate(1e-2)
                .WithBatchSize(8).WithEpochs(1).WithSeed(seed).Fit(train);
            return Weights.Snapshot(model);
        }

        Weights.Equal(Run(1), Run(2)).Should().BeFalse();
    }

    [Fact]
    public void Fit_GradientAccumulation_MatchesOneLargeBatch()
    {
        // Two half-batches of equal size averaged = one full batch (mean losses over equal token counts), so SGD
        // without momentum reaches the same weights up to float rounding.
        var (train, _) = TestData.FoldocLanguageModeling(length: 32, trainEntries: 40, validationEntries: 0);
        train = train.Take(32).ToList();
        Dictionary<string, Tensor> Run(int batch, int accumulate)
        {
            torch.manual_seed(3);
            using var model = new TinyCausalLm(ByteTokenizer.VocabularySize, dropoutRate: 0);
            FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling())
                .WithOptimizer(Optimizers.Sgd(momentum: 0)).WithLearningRate(0.5).ClipGradientNorm(null)
                .WithBatchSize(batch).WithGradientAccumulation(accumulate).WithEpochs(1).ShuffleTrainingData(false).Fit(train);
            return Weights.Snapshot(model);
        }

        var accumulated = Run(8, 2);
        var large = Run(16, 1);

        Weights.MaxDifference(accumulated, large).Should().BeLessThan(1e-5);
    }

    [Fact]
    public void Fit_ClippingEnabled_LimitsTheUpdateToTheMaximumNorm()
    {
        var examples = Enumerable.Range(0, 4).Select(i => new TokenExample([2 + i, 3 + i, 4 + i], Label: i % 2)).ToList();
        torch.manual_seed(5);
        using var model = new TinyClassifier(16, 2);
        var before = Weights.Snapshot(model);
        // SGD, lr 1, no momentum: the update equals the clipped gradient, whose global norm must be 0.01.
        var objective = Objectives.Custom<TokenBatch>((m, b) => Objectives.SequenceClassification().Loss(m, b) * 1000);
        FineTuner.For(model).WithObjective(objective).WithOptimizer(Optimizers.Sgd(momentum: 0)).WithLearningRate(1.0)
            .ClipGradientNorm(0.01).WithBatchSize(4).WithMaxSteps(1).Fit(examples, null, new TokenCollator());

        var after = Weights.Snapshot(model);
        double squared = before.Sum(kv => (after[kv.Key] - kv.Value).pow(2).sum().item<float>());
        Math.Sqrt(squared).Should().BeApproximately(0.01, 1e-4);
    }

    [Fact]
    public void Fit_SequenceClassificationOnFoldocCategories_LearnsAboveChance()
    {
        var tokenizer = new ByteTokenizer();
        string[] classes = ["language", "networking", "hardware"];
        var labelled = TestData.FoldocEntries
            .Where(e => e.Categories.Length > 0 && classes.Contains(e.Categories[0]))
            .Select(e => new TokenExample(tokenizer.Encode(e.Text.Length > 200 ? e.Text[..200] : e.Text), Array.IndexOf(classes, e.Categories[0])))
            .ToList();
        var train = labelled.Where((_, i) => i % 5 != 0).ToList();
        var validation = labelled.Where((_, i) => i % 5 == 0).ToList();
        torch.manual_seed(2);
        using var model = new TinyClassifier(ByteTokenizer.VocabularySize, classes.Length, width: 32);

        FineTuneResult result = FineTuner.For(model)
            .WithObjective(Objectives.SequenceClassification(labelSmoothing: 0.1))
            .WithLearningRate(2e-2).WithBatchSize(16).WithEpochs(8)
            .Evaluate(Metrics.Accuracy())
            .Fit(train, validation);

        double majority = validation.GroupBy(e => e.Label).Max(g => g.Count()) / (double)validation.Count;
        result.Epochs.Should().HaveCount(8);
        result.FinalMetrics["validation.accuracy"].Should().BeGreaterThan(majority + 0.05, $"majority class is {majority:P0}");
    }
}
