using FluentAssertions;
using NicheTune.Augmentation;
using Xunit;

namespace NicheTune.Tests.Augmentation;

public sealed class GenerationAugmenterTests
{
    [Fact]
    public void Paraphrase_RendersPromptKeepsFirstLineAndDropsAnswersThatLoseProtectedTerms()
    {
        var prompts = new List<string>();
        string[] answers = ["  The TCP stack resends lost segments.\nExtra line", "The stack resends lost segments.", "TCP resends segments that were lost."];
        int call = 0;
        ITextGenerator generator = TextGenerators.FromDelegate(prompt =>
        {
            prompts.Add(prompt);
            return answers[call++];
        });

        string[] result = [.. Augmenters.Paraphrase(generator, count: 3).Augment("TCP retransmits lost segments.", new Random(1))];

        prompts.Should().HaveCount(3).And.OnlyContain(p => p.Contains("Text: TCP retransmits lost segments.\nRewritten:"));
        result.Should().Equal("The TCP stack resends lost segments.", "TCP resends segments that were lost.");
    }

    [Fact]
    public void Paraphrase_SeedComesFromTheRandomSource()
    {
        ITextGenerator generator = TextGenerators.FromDelegate((prompt, seed) => "variant " + seed);
        IAugmenter<string> augmenter = Augmenters.Paraphrase(generator, count: 2);
        augmenter.Augment("x", new Random(4)).Should().Equal(augmenter.Augment("x", new Random(4)));
    }

    [Fact]
    public void BackTranslation_ProtectedTermsTravelAsPlaceholdersAndComeBackVerbatim()
    {
        var seen = new List<string>();
        ITranslator translator = Translators.FromDelegate((text, from, to) =>
        {
            seen.Add($"{from}>{to}: {text}");
            // A toy round trip that rewrites the ordinary words (as a real one would) but keeps placeholders.
            return to == "en" ? text.Replace("uebertraegt", "sends again", StringComparison.Ordinal) : to == "de" ? text.Replace("retransmits", "uebertraegt", StringComparison.Ordinal) : text;
        });
        ProtectedTerms terms = ProtectedTerms.Default.WithGlossary("sliding window");

        string[] result = [.. Augmenters.BackTranslation(translator, "en", ["de", "fr"], terms).Augment("TCP retransmits with a sliding window.", new Random(1))];

        seen[0].Should().Be("en>de: ⟦0⟧ retransmits with a ⟦1⟧.");
        result.Should().Equal("TCP sends again with a sliding window.", "TCP retransmits with a sliding window.");
    }

    [Fact]
    public void BackTranslation_LostPlaceholder_DropsTheVariant()
    {
        ITranslator lossy = Translators.FromDelegate((text, _, _) => "something else entirely");
        Augmenters.BackTranslation(lossy, "en", ["de"]).Augment("TCP works", new Random(1)).Should().BeEmpty();
    }

    [Fact]
    public void Paraphrase_PromptWithoutTextSlot_Throws()
    {
        var act = () => Augmenters.Paraphrase(TextGenerators.FromDelegate(p => p), prompt: new NicheTune.Prompting.PromptTemplate("Say {thing}"));
        act.Should().Throw<ArgumentException>().WithMessage("*{text}*thing*");
    }
}
