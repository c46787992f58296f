using FluentAssertions;
using NicheTune.Augmentation;
using NicheTune.Tests.Support;
using Xunit;

namespace NicheTune.Tests.Prompting;

public sealed class FoldocCategoryTaskTests
{
    [Fact]
    public void Split_Default_Disjoint100Train800TestWithEveryLabel()
    {
        FoldocCategories.Entries.Should().HaveCount(1557);
        FoldocCategories.Entries.Select(e => e.Label).Distinct().Should().BeEquivalentTo(FoldocCategories.Labels);

        (List<LabeledText> train, List<LabeledText> validation, List<LabeledText> test) = FoldocCategories.Split();

        train.Should().HaveCount(100);
        validation.Should().HaveCount(100);
        test.Should().HaveCount(800);
        train.Select(e => e.Label).Distinct().Should().HaveCount(8);
        train.Concat(validation).Concat(test).Should().OnlyHaveUniqueItems();
        FoldocCategories.Split().Train.Should().Equal(train);
    }

    [Fact]
    public void Eda_OnFoldocTexts_KeepsLabelsAndGlossaryTerms()
    {
        (List<LabeledText> train, _, _) = FoldocCategories.Split(train: 40, test: 10, validation: 10);
        string[] glossary = ["operating system", "programming language", "Unix"];
        IAugmenter<LabeledText> eda = Augmenters.Eda(new EdaOptions { ProtectedTerms = ProtectedTerms.Default.WithGlossary(glossary) }).ForLabeled();
        var random = new Random(1);
        int variants = 0;
        foreach (LabeledText original in train)
        {
            foreach (LabeledText variant in eda.Augment(original, random))
            {
                variants++;
                variant.Label.Should().Be(original.Label);
                foreach (string term in glossary.Where(t => original.Text.Contains(t, StringComparison.OrdinalIgnoreCase)))
                {
                    variant.Text.Should().ContainEquivalentOf(term);
                }
            }
        }

        variants.Should().BeGreaterThan(train.Count * 3);
    }
}
