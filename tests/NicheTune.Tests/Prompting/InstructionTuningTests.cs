using FluentAssertions;
using NicheTune.Models;
using NicheTune.Prompting;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace NicheTune.Tests.Prompting;

[Collection(TorchCollection.Name)]
public sealed class InstructionTuningTests
{
    private static readonly ByteTokenizer Tokenizer = new();

    private static readonly InstructionExample Example = new("Name the category.", "networking", "A router forwards packets.");

    [Fact]
    public void Tokenize_Alpaca_OnlyResponseTokensCarryLabels()
    {
        IInstructionFormat format = InstructionFormats.Alpaca();
        TokenExample example = InstructionTuning.Tokenize(Example, format, Tokenizer.Encode, ByteTokenizer.EndOfTextId);

        int promptLength = Tokenizer.Encode(format.RenderPrompt(Example)).Length;
        Tokenizer.Decode(example.InputIds).Should().Be(format.RenderPrompt(Example) + "networking");
        format.RenderPrompt(Example).Should().EndWith("### Input:\nA router forwards packets.\n\n### Response:\n");
        example.TokenLabels!.Take(promptLength).Should().OnlyContain(l => l == TokenBatch.IgnoreIndex);
        example.TokenLabels!.Skip(promptLength).Should().Equal(example.InputIds.Skip(promptLength));
        example.InputIds[^1].Should().Be(ByteTokenizer.EndOfTextId);
    }

    [Fact]
    public void Tokenize_ChatMl_RendersTurnsAndEndsResponseWithImEnd()
    {
        IInstructionFormat format = InstructionFormats.ChatMl("You are a FOLDOC editor.");
        format.RenderPrompt(Example).Should().Be("<|im_start|>system\nYou are a FOLDOC editor.<|im_end|>\n<|im_start|>user\nName the category.\n\nA router forwards packets.<|im_end|>\n<|im_start|>assistant\n");
        TokenExample example = InstructionTuning.Tokenize(Example, format, Tokenizer.Encode);
        Tokenizer.Decode(example.InputIds.Where((_, i) => example.TokenLabels![i] != TokenBatch.IgnoreIndex)).Should().Be("networking<|im_end|>");
    }

    [Fact]
    public void Tokenize_MaxLength_TruncatesPromptStartFirst()
    {
        TokenExample example = InstructionTuning.Tokenize(Example, InstructionFormats.Alpaca(), Tokenizer.Encode, maxLength: 30);
        example.InputIds.Should().HaveCount(30);
        Tokenizer.Decode(example.InputIds).Should().EndWith("### Response:\nnetworking");
        example.TokenLabels!.Count(l => l != TokenBatch.IgnoreIndex).Should().Be("networking".Length);
    }

    [Fact]
    public void Collate_TokenLabels_BecomeBatchLabelsAndTargetCount()
    {
        var collator = new TokenCollator();
        using TokenBatch batch = collator.Collate([new TokenExample([5, 6, 7]) { TokenLabels = [-100, -100, 7] }, new TokenExample([8, 9])]);
        batch.Labels.data<long>().ToArray().Should().Equal(-100, -100, 7, 8, 9, -100);
        batch.TargetCount.Should().Be(2);

        var mismatch = () => collator.Collate([new TokenExample([5, 6]) { TokenLabels = [5] }]);
        mismatch.Should().Throw<ArgumentException>().WithMessage("*1 TokenLabels for 2 input ids*");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void CausalLmLoss_MaskedPrompt_EqualsCrossEntropyOverResponseTokensOnly(bool fused)
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(1);
        var model = new Gpt2LMHeadModel(new Gpt2Config { VocabularySize = ByteTokenizer.VocabularySize, ContextLength = 512, EmbeddingSize = 16, HeadCount = 2, LayerCount = 1 });
        model.eval();
        List<TokenExample> examples = InstructionTuning.Tokenize([Example, Example with { Output = "hardware", Input = null }], InstructionFormats.Alpaca(), Tokenizer.Encode, ByteTokenizer.EndOfTextId);
        using TokenBatch batch = new TokenCollator().Collate(examples);

        double loss = Objectives.CausalLanguageModeling(fuseOutputLayer: fused).Loss(model, batch).item<float>();

        // Reference: mean over response positions of −log p(token t | tokens < t), computed row by row without the collator.
        double sum = 0;
        int count = 0;
        foreach (TokenExample example in examples)
        {
            Tensor logProbabilities = model.forward(torch.tensor(example.InputIds.Select(i => (long)i).ToArray(), [1, example.InputIds.Length])).log_softmax(-1);
            for (int t = 1; t < example.InputIds.Length; t++)
            {
                if (example.TokenLabels![t] != TokenBatch.IgnoreIndex)
                {
                    sum -= logProbabilities[0, t - 1, example.InputIds[t]].item<float>();
                    count++;
                }
            }
        }

        count.Should().Be("networking".Length + "hardware".Length + 2);
        batch.TargetCount.Should().Be(count);
        loss.Should().BeApproximately(sum / count, 1e-4);
    }
}
