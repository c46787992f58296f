using FluentAssertions;
using NicheTune.Models;
using NicheTune.Prompting;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;
using TorchSharp;
using Xunit;

namespace NicheTune.Tests.Prompting;

[Collection(TorchCollection.Name)]
public sealed class InstructionTuningTrainingTests
{
    [Fact]
    public void Fit_ResponseOnlyLabels_ModelLearnsAnswersThatLabelScoringThenPicks()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(5);
        var tokenizer = new ByteTokenizer();
        using var model = new Gpt2LMHeadModel(new Gpt2Config
        {
            VocabularySize = ByteTokenizer.VocabularySize, ContextLength = 128, EmbeddingSize = 32, LayerCount = 1, HeadCount = 2,
            ResidualDropout = 0, EmbeddingDropout = 0, AttentionDropout = 0,
        });
        (string Text, string Label)[] facts = [("router", "net"), ("modem", "net"), ("disk", "hw"), ("fan", "hw")];
        IInstructionFormat format = InstructionFormats.ChatMl();
        List<TokenExample> train = InstructionTuning.Tokenize(
            Enumerable.Repeat(facts, 8).SelectMany(f => f).Select(f => new InstructionExample("Category?", f.Label, f.Text)), format, tokenizer.Encode);

        FineTuneResult result = FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling())
            .WithLearningRate(1e-2).WithBatchSize(8).WithMaxSteps(30).LogEvery(5).WithSeed(3).Fit(train);

        result.TrainingLoss.Last().Loss.Should().BeLessThan(result.TrainingLoss.First().Loss / 3);
        // The format's own prompt with a {text} slot where the input goes (the rest of a ChatML prompt has no braces).
        var prompt = new PromptTemplate(format.RenderPrompt(new InstructionExample("Category?", string.Empty, "{text}")));
        var classifier = new ZeroShotClassifier(new LabelScorer(model, tokenizer.Encode), prompt, ["net", "hw"],
            new LabelScoringOptions { Verbalizations = ["net<|im_end|>", "hw<|im_end|>"] });
        classifier.PredictAll([.. facts.Select(f => f.Text)]).Select(p => p.Label).Should().Equal(facts.Select(f => f.Label));
    }
}
