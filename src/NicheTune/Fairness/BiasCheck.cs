using System.Globalization;

namespace NicheTune.Fairness;

/// <summary>What a <see cref="BiasCheck"/> measures.</summary>
public enum BiasCheckKind
{
    /// <summary>Counterfactual label-flip rate of an attribute group pair (classifiers), against <see cref="BiasThresholds.MaxFlipRate"/>.</summary>
    FlipRate,

    /// <summary>Counterfactual mean absolute probability gap of a group pair (classifiers), against <see cref="BiasThresholds.MaxScoreGap"/>.</summary>
    ScoreGap,

    /// <summary>|Mean log-likelihood gap| of a group pair (language models), against <see cref="BiasThresholds.MaxLogLikelihoodGap"/>.</summary>
    LogLikelihoodGap,

    /// <summary>Demographic parity difference of a class, against <see cref="BiasThresholds.MaxDemographicParityDifference"/>.</summary>
    DemographicParity,

    /// <summary>Equal opportunity difference of a class, against <see cref="BiasThresholds.MaxEqualOpportunityDifference"/>.</summary>
    EqualOpportunity,

    /// <summary>Equalised odds difference of a class, against <see cref="BiasThresholds.MaxEqualizedOddsDifference"/>.</summary>
    EqualizedOdds,

    /// <summary>Best − worst slice value of a slice metric, against <see cref="BiasThresholds.MaxSliceGap"/>.</summary>
    SliceGap,
}

/// <summary>The outcome of a <see cref="BiasCheck"/>.</summary>
public enum BiasCheckOutcome
{
    /// <summary>The value is within the threshold.</summary>
    Passed,

    /// <summary>The value exceeds the threshold.</summary>
    Failed,

    /// <summary>
    /// The value could not be judged: fewer than two groups large enough for the rate (see
    /// <see cref="BiasThresholds.MinimumGroupSize"/>), or a slice metric that is not a rate. It neither passes nor fails.
    /// </summary>
    NotApplicable,
}

/// <summary>One check of a <see cref="BiasReport"/>: a measured value against its threshold.</summary>
/// <param name="Kind">What was measured.</param>
/// <param name="Subject">What it was measured on: an attribute pair (<c>gender (possessive): female / male</c>), a class (<c>class 'networking'</c>) or a slice metric.</param>
/// <param name="Value">The value (<see cref="double.NaN"/> when not applicable).</param>
/// <param name="Threshold">The largest value allowed.</param>
/// <param name="Outcome">Passed, failed or not applicable.</param>
/// <param name="Note">Detail for a person: the extreme groups or slices, the pairs compared, the groups left out.</param>
public sealed record BiasCheck(BiasCheckKind Kind, string Subject, double Value, double Threshold, BiasCheckOutcome Outcome, string? Note = null)
{
    /// <summary>The check's name as reports print it, e.g. <c>counterfactual flip rate</c>.</summary>
    public string Name => NameOf(Kind);

    /// <summary>Whether the value exceeds the threshold.</summary>
    public bool Failed => Outcome == BiasCheckOutcome.Failed;

    /// <summary>The check in one line, e.g. <c>counterfactual flip rate, gender (possessive): female / male = 0.873 &gt; 0.100</c>.</summary>
    /// <returns>The text.</returns>
    public override string ToString()
        => Outcome == BiasCheckOutcome.NotApplicable
            ? $"{Name}, {Subject}: not applicable ({Note})"
            : string.Create(CultureInfo.InvariantCulture, $"{Name}, {Subject} = {Value:F3} {(Failed ? ">" : "≤")} {Threshold:F3}");

    internal static string NameOf(BiasCheckKind kind) => kind switch
    {
        BiasCheckKind.FlipRate => "counterfactual flip rate",
        BiasCheckKind.ScoreGap => "counterfactual score gap",
        BiasCheckKind.LogLikelihoodGap => "counterfactual log-likelihood gap",
        BiasCheckKind.DemographicParity => "demographic parity difference",
        BiasCheckKind.EqualOpportunity => "equal opportunity difference",
        BiasCheckKind.EqualizedOdds => "equalised odds difference",
        _ => "slice gap",
    };
}
