using FluentAssertions;
using NicheTune.Monitoring;
using Xunit;

namespace NicheTune.Tests.Monitoring;

public sealed class DivergenceTests
{
    // Hand values: PSI = 0.4·ln(0.9/0.5) + (−0.4)·ln(0.1/0.5); KL(q‖p) = 0.9·ln(1.8) + 0.1·ln(0.2);
    // JS with m = (0.7, 0.3): ½[0.5·log2(5/7) + 0.5·log2(5/3)] + ½[0.9·log2(9/7) + 0.1·log2(1/3)].
    [Fact]
    public void PopulationStabilityIndex_TwoBins_MatchesHandComputedValue()
        => Divergence.PopulationStabilityIndex([0.5, 0.5], [0.9, 0.1]).Should().BeApproximately(0.8788898309, 1e-9);

    [Fact]
    public void KullbackLeibler_TwoBins_MatchesHandComputedValue()
        => Divergence.KullbackLeibler([0.9, 0.1], [0.5, 0.5]).Should().BeApproximately(0.3680642072, 1e-9);

    [Fact]
    public void JensenShannon_TwoBins_MatchesHandComputedValueInBits()
        => Divergence.JensenShannon([0.5, 0.5], [0.9, 0.1]).Should().BeApproximately(0.1467931024, 1e-9);

    [Fact]
    public void JensenShannon_DisjointAndEqual_AreOneAndZero()
    {
        Divergence.JensenShannon([1, 0], [0, 1]).Should().BeApproximately(1, 1e-12);
        Divergence.JensenShannon([3, 1], [6, 2]).Should().BeApproximately(0, 1e-12);
    }

    [Fact]
    public void PopulationStabilityIndex_EmptyBin_UsesEpsilon()
    {
        // (0.5 − 1)·ln(0.5/1) + (0.5 − 1e-4)·ln(0.5/1e-4)
        Divergence.PopulationStabilityIndex([1, 0], [0.5, 0.5]).Should().BeApproximately(4.604318467, 1e-8);
        Divergence.KullbackLeibler([0.5, 0.5], [1, 0]).Should().BeApproximately(3.912023005, 1e-8);
    }

    [Fact]
    public void PopulationStabilityIndex_CountsOrProportions_Agree()
        => Divergence.PopulationStabilityIndex([10, 10, 20, 0], [20, 10, 10, 0])
            .Should().BeApproximately(Divergence.PopulationStabilityIndex([0.25, 0.25, 0.5, 0], [0.5, 0.25, 0.25, 0]), 1e-12)
            .And.BeApproximately(0.3465735903, 1e-9);

    [Fact]
    public void PopulationStabilityIndex_BadInput_NamesTheProblem()
    {
        FluentActions.Invoking(() => Divergence.PopulationStabilityIndex([1, 1], [1, 1, 1])).Should().Throw<ArgumentException>().WithMessage("*same, non-zero number of bins; got 2 and 3*");
        FluentActions.Invoking(() => Divergence.JensenShannon([1, -1], [1, 1])).Should().Throw<ArgumentException>().WithMessage("*Bin 1 holds -1*");
        FluentActions.Invoking(() => Divergence.KullbackLeibler([0, 0], [1, 1])).Should().Throw<ArgumentException>().WithMessage("*sums to 0*");
    }
}
