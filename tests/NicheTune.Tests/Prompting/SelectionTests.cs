using FluentAssertions;
using NicheTune.Augmentation;
using NicheTune.Models;
using NicheTune.Text;
using TorchSharp;
using NicheTune.Prompting;
using NicheTune.Tests.Support;
using Xunit;

namespace NicheTune.Tests.Prompting;

[Collection(TorchCollection.Name)]
public sealed class SelectionTests
{
    private static readonly string[] Labels = [.. Enumerable.Repeat("a", 10).Concat(Enumerable.Repeat("b", 6)).Concat(Enumerable.Repeat("c", 2))];

    [Fact]
    public void RandomPerClass_TakesKPerClassOrAll_Deterministically()
    {
        IReadOnlyList<int> picked = FewShotSelection.RandomPerClass(Labels, 3, seed: 1);
        picked.GroupBy(i => Labels[i]).ToDictionary(g => g.Key, g => g.Count()).Should().BeEquivalentTo(new Dictionary<string, int> { ["a"] = 3, ["b"] = 3, ["c"] = 2 });
        picked.Should().Equal(FewShotSelection.RandomPerClass(Labels, 3, seed: 1));
        picked.Should().NotEqual(FewShotSelection.RandomPerClass(Labels, 3, seed: 2));
    }

    [Fact]
    public void RandomTotal_ProportionalWithEveryClass()
    {
        IReadOnlyList<int> picked = FewShotSelection.RandomTotal(Labels, 9, seed: 1);
        picked.Should().HaveCount(9).And.OnlyHaveUniqueItems();
        picked.GroupBy(i => Labels[i]).ToDictionary(g => g.Key, g => g.Count()).Should().BeEquivalentTo(new Dictionary<string, int> { ["a"] = 5, ["b"] = 3, ["c"] = 1 });
    }

    [Fact]
    public void KCenterGreedy_ThreeClusters_PicksOneFromEach()
    {
        var random = new Random(4);
        (float X, float Y)[] centres = [(0, 0), (10, 0), (0, 10)];
        float[][] points = [.. Enumerable.Range(0, 30).Select(i => new[] { centres[i % 3].X + (float)random.NextDouble(), centres[i % 3].Y + (float)random.NextDouble() })];

        IReadOnlyList<int> picked = FewShotSelection.KCenterGreedy(points, 3);

        picked.Select(i => i % 3).Should().BeEquivalentTo([0, 1, 2]);
        FewShotSelection.DiversePerClass([.. Enumerable.Range(0, 30).Select(i => i < 15 ? "x" : "y")], points, 3)
            .Should().HaveCount(6);
    }

    [Fact]
    public void KCenterGreedy_MismatchedVectors_ThrowsNamingTheItem()
    {
        var act = () => FewShotSelection.KCenterGreedy([[1f, 2f], [1f]], 2);
        act.Should().Throw<ArgumentException>().WithMessage("Embedding 1 has 1 values but the first has 2*");
    }

    [Fact]
    public void NearDuplicates_Remove_KeepsFirstOfEachGroup()
    {
        string[] texts =
        [
            "A router forwards packets between computer networks.",
            "A router forwards packets between computer networks!",
            "a  ROUTER forwards packets between computer networks.",
            "A disk stores data in fixed-size blocks.",
            "A router forwards frames between local networks.",
        ];
        NearDuplicates.Remove(texts, t => t, threshold: 0.8).Should().Equal(texts[0], texts[3], texts[4]);
        NearDuplicates.Similarity(texts[0], texts[4]).Should().BeInRange(0.2, 0.8);
    }

    [Fact]
    public void NearDuplicates_FoldocSubset_FindsNoDuplicatesAmongDistinctEntries()
    {
        string[] texts = [.. TestData.FoldocEntries.Take(300).Select(e => e.Text).Distinct()];
        NearDuplicates.Remove(texts, t => t, threshold: 0.9).Count.Should().BeGreaterThan(texts.Length - 5);
    }

    [Fact]
    public void Recipe_Prepare_StratifiedSplitAugmentsTrainOnly()
    {
        LabeledText[] data = [.. Enumerable.Range(0, 20).Select(i => new LabeledText($"The router number {i} forwards packets quickly between busy networks", i < 10 ? "networking" : "hardware"))];
        FewShotRecipe recipe = FewShot.Recipe() with { Eda = new EdaOptions { Copies = 2 } };

        (List<LabeledText> train, List<LabeledText> validation) = recipe.Prepare(data);

        validation.Should().HaveCount(4).And.OnlyContain(e => data.Contains(e));
        validation.Count(e => e.Label == "networking").Should().Be(2);
        train.Count(e => data.Contains(e)).Should().Be(16);
        train.Count.Should().BeGreaterThan(40);
        recipe.Prepare(data).Train.Should().Equal(train);
    }

    [Fact]
    public void Recipe_ApplyTo_SetsTheDefaultsOnTheBuilder()
    {
        using var model = new TinyCausalLm(16);
        var plan = FewShot.Recipe().ApplyTo(FineTuner.For(model).WithObjective(NicheTune.Training.Objectives.CausalLanguageModeling())).Build();
        plan.LearningRate.Should().Be(2e-5);
        plan.Epochs.Should().Be(4);
        plan.EarlyStopping!.Metric.Should().Be("validation.loss");
        plan.EarlyStopping.Patience.Should().Be(2);

        FineTuner.For(model).WithObjective(NicheTune.Training.Objectives.CausalLanguageModeling())
            .WithFewShotRecipe(FewShot.Recipe() with { Epochs = 2 }).WithBatchSize(4).Build()
            .Should().Match<FineTunePlan<NicheTune.Training.TokenBatch>>(p => p.Epochs == 2 && p.BatchSize == 4 && p.LearningRate == 2e-5);

        var invalid = () => (FewShot.Recipe() with { Epochs = 0, LearningRate = -1 }).ApplyTo(FineTuner.For(model).WithObjective(NicheTune.Training.Objectives.CausalLanguageModeling()));
        invalid.Should().Throw<ArgumentException>().WithMessage("*LearningRate is -1*Epochs is 0*");
    }

    [Fact]
    public void MeanPooled_Gpt2_IgnoresPaddingAndFeedsKCenter()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(2);
        var model = new Gpt2LMHeadModel(new Gpt2Config { VocabularySize = ByteTokenizer.VocabularySize, ContextLength = 64, EmbeddingSize = 16, HeadCount = 2, LayerCount = 1 });
        var tokenizer = new ByteTokenizer();
        int[][] ids = [tokenizer.Encode("router"), tokenizer.Encode("a much longer text about disks"), tokenizer.Encode("cpu")];

        float[][] batched = TextEmbeddings.MeanPooled(model, ids, batchSize: 3);
        float[][] single = TextEmbeddings.MeanPooled(model, ids, batchSize: 1);

        batched.Should().HaveCount(3).And.OnlyContain(v => v.Length == 16);
        for (int i = 0; i < 3; i++)
        {
            batched[i].Should().Equal(single[i], (a, b) => Math.Abs(a - b) < 1e-5);
        }

        FewShotSelection.KCenterGreedy(batched, 2).Should().HaveCount(2).And.OnlyHaveUniqueItems();
        model.training.Should().BeTrue();
    }
}
