using FluentAssertions;
using NicheTune.Freezing;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;
using Xunit;

namespace NicheTune.Tests.Freezing;

[Collection(TorchCollection.Name)]
public sealed class FreezeStrategyTests
{
    private static readonly string[] Names =
    [
        "model.embed_tokens.weight",
        "model.layers.0.attn.weight", "model.layers.0.norm.weight",
        "model.layers.1.attn.weight", "model.layers.1.norm.weight",
        "model.layers.2.attn.weight", "model.layers.2.norm.weight",
        "model.layers.3.attn.weight", "model.layers.3.norm.weight",
        "model.norm.weight", "lm_head.weight",
    ];

    private static (NamedTree Model, LayerMap Map) Model()
    {
        var model = NamedTree.Build(Names);
        return (model, LayerMap.For(model));
    }

    private static string[] Frozen(IFreezeStrategy strategy, int epoch = 0, long step = 0)
    {
        var (model, map) = Model();
        using (model)
        {
            return [.. strategy.Frozen(map, new FreezePosition(epoch, step)).OrderBy(n => Array.IndexOf(Names, n))];
        }
    }

    [Fact]
    public void Embeddings_FreezesOnlyTheEmbeddingGroup() =>
        Frozen(Freeze.Embeddings()).Should().Equal("model.embed_tokens.weight");

    [Fact]
    public void BottomLayers_Count_FreezesLayersFromZero() =>
        Frozen(Freeze.BottomLayers(2)).Should().Equal("model.layers.0.attn.weight", "model.layers.0.norm.weight", "model.layers.1.attn.weight", "model.layers.1.norm.weight");

    [Fact]
    public void BottomLayers_Fraction_RoundsToLayers() =>
        Frozen(Freeze.BottomLayers(0.25)).Should().Equal("model.layers.0.attn.weight", "model.layers.0.norm.weight");

    [Fact]
    public void EmbeddingsAndBottomLayers_IsTheUnion() =>
        Frozen(Freeze.Embeddings().And(Freeze.BottomLayers(1))).Should().Equal("model.embed_tokens.weight", "model.layers.0.attn.weight", "model.layers.0.norm.weight");

    [Fact]
    public void Except_KeepsTheSecondStrategysParametersTrainable() =>
        Frozen(Freeze.BottomLayers(2).Except(Freeze.Matching("*.norm.weight"))).Should().Equal("model.layers.0.attn.weight", "model.layers.1.attn.weight");

    [Fact]
    public void Matching_GlobsAndRegex_SelectByName()
    {
        Frozen(Freeze.Matching("model.layers.?.attn.*")).Should().HaveCount(4);
        Frozen(Freeze.MatchingRegex(@"^model\.layers\.[23]\.")).Should().HaveCount(4);
    }

    [Fact]
    public void AllBut_Head_IsLinearProbing() =>
        Frozen(Freeze.AllBut("head")).Should().HaveCount(Names.Length - 1).And.Contain("model.norm.weight").And.NotContain("lm_head.weight");

    [Fact]
    public void Nothing_FreezesNothing() => Frozen(Freeze.Nothing()).Should().BeEmpty();

    [Fact]
    public void UnfreezeGradually_EveryEpoch_AddsOneGroupFromTheTop()
    {
        var strategy = Freeze.UnfreezeGradually(everyEpochs: 1);
        int Trainable(int epoch) => Names.Length - Frozen(strategy, epoch).Length;
        // epoch 0: head (2); 1: + layer 3 (4); 2: + layer 2 (6); 3: + layer 1; 4: + layer 0; 5: + embeddings (all 11).
        Enumerable.Range(0, 7).Select(Trainable).Should().Equal(1, 4, 6, 8, 10, 11, 11);
        strategy.ChangesAt(new FreezePosition(1, 40, AtEpochStart: true)).Should().BeTrue();
        strategy.ChangesAt(new FreezePosition(1, 41)).Should().BeFalse("epoch-based unfreezing happens at epoch starts only");
    }

    [Fact]
    public void Backbone_UnfreezesEverythingAtItsEpochWithALowerRate()
    {
        var strategy = Freeze.Backbone(unfreezeAtEpoch: 2, learningRateFactor: 0.1);
        Frozen(strategy, epoch: 1).Should().HaveCount(Names.Length - 1);
        Frozen(strategy, epoch: 2).Should().BeEmpty();
        strategy.UnfrozenLearningRateFactor.Should().Be(0.1);
    }

    [Fact]
    public void Build_PatternMatchingNothing_NamesThePatternAndTheClosestNames()
    {
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);
        var build = () => FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling())
            .Freeze(Freeze.Matching("hiden.*").And(Freeze.Groups("layer 7")).And(Freeze.BottomLayers(3))).Build();

        var problems = build.Should().Throw<FineTunePlanException>().Which.Problems;
        problems.Should().Contain(p => p.Contains("'hiden.*'") && p.Contains("closest names") && p.Contains("'hidden.weight'"));
        problems.Should().Contain(p => p.Contains("'layer 7'") && p.Contains("groups:"));
        problems.Should().Contain(p => p.Contains("found no layers"));
    }
}
