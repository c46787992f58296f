using FluentAssertions;
using NicheTune.Evaluation;
using NicheTune.Models;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;
using TorchSharp;
using Xunit;

namespace NicheTune.Tests.Models;

[Collection(TorchCollection.Name)]
public sealed class LlamaTrainingTests
{
    [Fact]
    public void Fit_LlamaOnFoldocText_LowersValidationPerplexityAndThenGenerates()
    {
        var (train, validation) = TestData.FoldocLanguageModeling(length: 32, trainEntries: 60, validationEntries: 10);
        torch.manual_seed(2);
        using var model = new LlamaForCausalLM(new LlamaConfig
        {
            VocabularySize = ByteTokenizer.VocabularySize, HiddenSize = 64, IntermediateSize = 128, LayerCount = 2,
            HeadCount = 4, KeyValueHeadCount = 2, ContextLength = 64, TieWordEmbeddings = true,
            BosTokenId = null, EosTokenIds = [ByteTokenizer.EndOfTextId],
        });

        var plan = FineTuner.For(model)
            .WithObjective(Objectives.CausalLanguageModeling())
            .WithLearningRate(3e-3)
            .WithBatchSize(8)
            .WithMaxSteps(30)
            .Evaluate(Metrics.Perplexity())
            .Build();
        var before = plan.Evaluate(validation)["validation.perplexity"];

        var result = plan.Fit(train, validation);

        var after = result.FinalMetrics["validation.perplexity"];
        before.Should().BeGreaterThan(150, "a randomly initialized byte model is near uniform over 258 ids");
        after.Should().BeLessThan(before / 3, "30 steps must teach the model FOLDOC's byte statistics");

        var continuation = TextGenerator.Generate(model, validation[0].InputIds.Take(8).ToArray(), new GenerationOptions { MaxNewTokens = 16 });
        continuation.Tokens.Should().HaveCountGreaterThan(0).And.OnlyContain(t => t >= 0 && t < ByteTokenizer.VocabularySize);
    }
}
