using FluentAssertions;
using NicheTune.Augmentation;
using NicheTune.Models;
using NicheTune.Prompting;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;
using TorchSharp;
using Xunit;

namespace NicheTune.Tests.Prompting;

/// <summary>The code of docs/prompting.md, compiled and run on a tiny random GPT-2.</summary>
[Collection(TorchCollection.Name)]
public sealed class DocsExampleTests
{
    [Fact]
    public void PromptingDoc_Example_Runs()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(1);
        var model = new Gpt2LMHeadModel(new Gpt2Config { VocabularySize = ByteTokenizer.VocabularySize, ContextLength = 1024, EmbeddingSize = 16, HeadCount = 2, LayerCount = 1 });
        var tokenizer = new ByteTokenizer();
        List<LabeledText> pool = [.. FoldocCategories.Split(train: 16, test: 4, validation: 4).Train];
        string[] labels = [.. FoldocCategories.Labels];

        // --- docs/prompting.md: begin
        var prompt = new PromptTemplate("As a {role}, name the category of this dictionary entry.\nEntry: {text}\nCategory:")
            .Fill("role", "computing lexicographer");

        var scorer = new LabelScorer(model, tokenizer.Encode, new LabelScorerOptions { LengthNormalize = true });
        var zeroShot = new ZeroShotClassifier(scorer, prompt, labels, new LabelScoringOptions { Calibrate = true });
        LabelPrediction guess = zeroShot.Predict("A protocol for sending mail between servers.");

        var inContext = new InContextClassifier(scorer, pool,
            new PromptTemplate("Entry: {text}\nCategory: {label}"), new PromptTemplate("Entry: {text}\nCategory:"), labels,
            new InContextOptions { K = 4, Selection = DemonstrationSelection.Similar });
        LabelPrediction fewShot = inContext.Predict("A protocol for sending mail between servers.");

        List<TokenExample> instructions = InstructionTuning.Tokenize(
            pool.Select(e => new InstructionExample("Name the category of this dictionary entry.", e.Label, e.Text)),
            InstructionFormats.Alpaca(), tokenizer.Encode, ByteTokenizer.EndOfTextId, maxLength: 512);
        // --- docs/prompting.md: end

        guess.Scores.Should().HaveCount(8);
        labels.Should().Contain(fewShot.Label);
        instructions.Should().HaveCount(16).And.OnlyContain(e => e.TokenLabels!.Count(l => l != TokenBatch.IgnoreIndex) > 1);
    }
}
