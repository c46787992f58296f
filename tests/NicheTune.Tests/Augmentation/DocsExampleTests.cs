using FluentAssertions;
using NicheTune.Augmentation;
using Xunit;

namespace NicheTune.Tests.Augmentation;

/// <summary>The code of docs/augmentation.md, compiled and run.</summary>
public sealed class DocsExampleTests
{
    [Fact]
    public void AugmentationDoc_Example_Runs()
    {
        LabeledText[] train = [new("The scheduler gives each process a short slice of processor time", "operating system"), new("A router forwards packets between networks", "networking")];

        // --- docs/augmentation.md: begin
        ProtectedTerms terms = ProtectedTerms.Default                   // URLs, e-mails, paths, numbers, code, acronyms
            .WithGlossary("operating system", "time slice", "router")   // niche terms, multi-word too
            .WithPattern(@"\bRFC ?\d+\b");                              // your own patterns

        IAugmenter<LabeledText> augmenter = Augmenters.Sequence(
                Augmenters.SynonymReplacement(rate: 0.1, terms).WithProbability(0.8),
                Augmenters.OneOf(Augmenters.RandomSwap(0.1, terms), Augmenters.RandomDeletion(0.1, terms)).WithProbability(0.5))
            .Copies(4)
            .Filtered(new AugmentationFilter { MinSimilarity = 0.5 })
            .ForLabeled();

        List<LabeledText> augmented = train.AugmentAll(augmenter, seed: 42);   // originals first, then their variants
        // --- docs/augmentation.md: end

        augmented.Should().HaveCountGreaterThan(train.Length);
        augmented.Where(e => e.Label == "networking").Should().OnlyContain(e => e.Text.Contains("router", StringComparison.OrdinalIgnoreCase));
    }
}
