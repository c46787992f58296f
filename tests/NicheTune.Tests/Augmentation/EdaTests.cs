using FluentAssertions;
using NicheTune.Augmentation;
using Xunit;

namespace NicheTune.Tests.Augmentation;

public sealed class EdaTests
{
    private const string Sentence = "the kernel schedules every process on a free processor and the scheduler keeps a queue of waiting tasks for later";

    [Fact]
    public void RandomDeletion_ManyRuns_DeletesAboutTheProbability()
    {
        IAugmenter<string> augmenter = Augmenters.RandomDeletion(0.2, ProtectedTerms.None);
        int words = Sentence.Split(' ').Length;
        long deleted = 0;
        const int runs = 2000;
        var random = new Random(42);
        for (int i = 0; i < runs; i++)
        {
            string result = augmenter.Augment(Sentence, random).DefaultIfEmpty(Sentence).Single();
            deleted += words - result.Split(' ').Length;
        }

        // Binomial(2000 × 20, 0.2): standard deviation of the rate ≈ 0.002, so ±0.01 is five sigma.
        ((double)deleted / (runs * words)).Should().BeApproximately(0.2, 0.01);
    }

    [Fact]
    public void RandomSwap_Rate_SwapsThatManyPairsAndKeepsTheWords()
    {
        IAugmenter<string> augmenter = Augmenters.RandomSwap(0.1, ProtectedTerms.None);
        string[] original = Sentence.Split(' ');
        var random = new Random(1);
        int changedMax = 0;
        for (int i = 0; i < 500; i++)
        {
            string[] result = augmenter.Augment(Sentence, random).DefaultIfEmpty(Sentence).Single().Split(' ');
            result.Order().Should().Equal(original.Order());
            changedMax = Math.Max(changedMax, original.Zip(result).Count(p => p.First != p.Second));
        }

        // ⌊0.1 × 20⌋ = 2 swaps move at most 4 positions (fewer when they cancel or swap equal words).
        changedMax.Should().BeInRange(3, 4);
    }

    [Fact]
    public void RandomInsertion_Rate_InsertsThatManyWords()
    {
        IAugmenter<string> augmenter = Augmenters.RandomInsertion(0.1, ProtectedTerms.None);
        int words = Sentence.Split(' ').Length;
        var random = new Random(2);
        for (int i = 0; i < 200; i++)
        {
            augmenter.Augment(Sentence, random).Single().Split(' ').Length.Should().Be(words + 2);
        }
    }

    [Fact]
    public void RandomDeletionAndSwap_ProtectedTerms_StayInPlace()
    {
        ProtectedTerms terms = ProtectedTerms.Default.WithGlossary("kernel", "free processor");
        IAugmenter<string> delete = Augmenters.RandomDeletion(0.9, terms);
        IAugmenter<string> swap = Augmenters.RandomSwap(0.5, terms);
        int free = Array.IndexOf(Sentence.Split(' '), "free");
        var random = new Random(3);
        for (int i = 0; i < 100; i++)
        {
            delete.Augment(Sentence, random).Single().Should().Contain("kernel").And.Contain("free processor");
            string[] swapped = swap.Augment(Sentence, random).Single().Split(' ');
            swapped[1].Should().Be("kernel");
            swapped[free].Should().Be("free");
            swapped[free + 1].Should().Be("processor");
        }
    }

    [Fact]
    public void RandomDeletion_SentenceFinalWord_KeepsTheFullStop()
    {
        var augmenter = Augmenters.RandomDeletion(1.0, ProtectedTerms.None.WithGlossary("Kernel"));
        augmenter.Augment("Kernel schedules tasks.", new Random(4)).Single().Should().Be("Kernel.");
    }

    [Fact]
    public void Eda_Defaults_YieldsFourDistinctVariantsDeterministically()
    {
        IAugmenter<string> eda = Augmenters.Eda();
        string[] first = [.. eda.Augment(Sentence, new Random(9))];
        string[] again = [.. eda.Augment(Sentence, new Random(9))];
        first.Should().HaveCount(4).And.Equal(again);
        first.Should().NotContain(Sentence);
    }

    [Fact]
    public void Eda_InvalidOptions_ReportsEveryProblem()
    {
        var act = () => Augmenters.Eda(new EdaOptions { RandomSwapRate = 2, Copies = 0 });
        act.Should().Throw<ArgumentException>().WithMessage("*RandomSwapRate is 2*Copies is 0*");
    }
}
