using FluentAssertions;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;
using Xunit;

namespace NicheTune.Tests.Text;

[Collection(TorchCollection.Name)]
public sealed class TextTests
{
    [Fact]
    public void ByteTokenizer_RoundTripsUnicodeFoldocText()
    {
        var tokenizer = new ByteTokenizer();
        string text = TestData.FoldocEntries[3].Text + " — naïve café λ";
        int[] ids = tokenizer.Encode(text);
        ids.Should().OnlyContain(id => id >= 2 && id < ByteTokenizer.VocabularySize);
        tokenizer.Decode(ids).Should().Be(text);
    }

    [Fact]
    public void Pack_DocumentsWithSeparator_FillsWindowsInOrder()
    {
        var examples = SequencePacking.Pack([[10, 11, 12], [20, 21], [30, 31, 32, 33]], length: 4, separatorId: 1, keepRemainder: true);
        examples.Select(e => e.InputIds).Should().BeEquivalentTo(new[] { new[] { 10, 11, 12, 1 }, new[] { 20, 21, 1, 30 }, new[] { 31, 32, 33, 1 } }, o => o.WithStrictOrdering());
    }

    [Fact]
    public void Collate_LanguageModelling_PadsRightAndIgnoresPaddingInLabels()
    {
        using var batch = new TokenCollator(paddingId: 0).Collate([new TokenExample([5, 6, 7]), new TokenExample([8])]);
        batch.InputIds.data<long>().ToArray().Should().Equal(5, 6, 7, 8, 0, 0);
        batch.AttentionMask.data<long>().ToArray().Should().Equal(1, 1, 1, 1, 0, 0);
        batch.Labels.data<long>().ToArray().Should().Equal(5, 6, 7, 8, -100, -100);
        batch.TokenCount.Should().Be(4);
        batch.ExampleCount.Should().Be(2);
    }

    [Fact]
    public void Collate_Classification_UsesOneLabelPerExample()
    {
        using var batch = new TokenCollator().Collate([new TokenExample([5, 6], 2), new TokenExample([8], 0)]);
        batch.Labels.shape.Should().Equal(2);
        batch.Labels.data<long>().ToArray().Should().Equal(2, 0);
    }

    [Fact]
    public void Collate_MixedLabelledAndUnlabelled_Throws()
    {
        var collate = () => new TokenCollator().Collate([new TokenExample([5], 1), new TokenExample([6])]);
        collate.Should().Throw<ArgumentException>().WithMessage("*mixes labelled and unlabelled*");
    }

    [Fact]
    public void CausalLanguageModeling_Loss_EqualsHandComputedNextTokenCrossEntropy()
    {
        // Logits that ignore the input: uniform over the 258 byte ids → loss ln 258 for every next-token target.
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);
        using (TorchSharp.torch.no_grad())
        {
            foreach (var p in model.parameters())
            {
                p.zero_();
            }
        }

        using var batch = new TokenCollator().Collate([new TokenExample([5, 6, 7]), new TokenExample([8, 9])]);
        using var loss = Objectives.CausalLanguageModeling().Loss(model, batch);
        loss.item<float>().Should().BeApproximately((float)Math.Log(ByteTokenizer.VocabularySize), 1e-5f);
        var metrics = Objectives.CausalLanguageModeling().Evaluate(model, batch);
        metrics.Count.Should().Be(3, "two targets in the first row, one in the second");
    }
}
