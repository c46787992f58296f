using FluentAssertions;
using NicheTune.Samples;
using NicheTune.Tests.Support;
using Xunit;

namespace NicheTune.Tests.Samples;

public class FewShotClassificationTests
{
    [Fact]
    public void Create_DifferentSeeds_TestSetFixedTrainingDrawChanges()
    {
        FewShotSplit first = FewShotSplit.Create(FoldocCategories.Entries, 100, 100, 800, seed: 42);
        FewShotSplit again = FewShotSplit.Create(FoldocCategories.Entries, 100, 100, 800, seed: 42);
        FewShotSplit other = FewShotSplit.Create(FoldocCategories.Entries, 100, 100, 800, seed: 43);

        other.Test.Should().Equal(first.Test);
        again.Train.Should().Equal(first.Train);
        again.Validation.Should().Equal(first.Validation);
        other.Train.Should().NotBeEquivalentTo(first.Train);
    }

    [Fact]
    public void Create_FoldocCategories_DisjointSizedAndStratified()
    {
        FewShotSplit split = FewShotSplit.Create(FoldocCategories.Entries, 100, 100, 800, seed: 44);

        split.Train.Should().HaveCount(100);
        split.Validation.Should().HaveCount(100);
        split.Test.Should().HaveCount(800);
        split.Train.Intersect(split.Test).Should().BeEmpty();
        split.Train.Intersect(split.Validation).Should().BeEmpty();
        split.Validation.Intersect(split.Test).Should().BeEmpty();
        split.Train.Select(t => t.Label).Distinct().Should().BeEquivalentTo(FoldocCategories.Labels);
        // Proportional allocation: the most frequent label (language, 403 of 1557) gets about a quarter of the 100.
        split.Train.Count(t => t.Label == "language").Should().BeInRange(22, 30);
    }

    [Fact]
    public void Create_PartsDoNotFit_ThrowsNamingTheSizes()
    {
        Action act = () => FewShotSplit.Create(FoldocCategories.Entries, 100, 100, 1400, seed: 1);

        act.Should().Throw<ArgumentException>().WithMessage("*1557 entries*1400 test*");
    }

    [Fact]
    public void NaiveBayesAndLogisticRegression_WordsThatSeparateClasses_PredictTheClass()
    {
        string[] texts = ["tcp packet router", "router ethernet packet", "compiler syntax parser", "parser grammar compiler"];
        int[] labels = [0, 0, 1, 1];

        var bayes = new NaiveBayes(texts, labels, 2);
        var logistic = new LogisticRegression(texts, labels, 2);

        bayes.Predict("a packet through the router").Should().Be(0);
        bayes.Predict("the Parser of a compiler").Should().Be(1);
        logistic.Predict("a packet through the router").Should().Be(0);
        logistic.Predict("the Parser of a compiler").Should().Be(1);
    }
}
