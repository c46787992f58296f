using System.ComponentModel.DataAnnotations;
using System.Globalization;

namespace NicheTune.Fairness;

/// <summary>
/// The limits a <see cref="BiasReport"/> checks its results against. Immutable; every limit is a largest allowed
/// value, and <see langword="null"/> skips that check. The defaults are a starting point, not a standard: a tenth of the
/// pairs or of a rate is a difference a person notices. Tighten them where harm is high, and measure your model's noise
/// floor (a control pair whose terms should not matter) before judging a small gap.
/// </summary>
public sealed class BiasThresholds
{
    private const string RateHint = "use a share in [0, 1], e.g. 0.1, or null to skip the check";

    /// <summary>The thresholds with every default.</summary>
    public static BiasThresholds Default { get; } = new();

    /// <summary>
    /// Largest counterfactual label-flip rate of any attribute group pair (classifiers): the share of sentence pairs,
    /// differing only in the attribute term, whose predicted label differs.
    /// </summary>
    /// <value>Default 0.10.</value>
    [Range(0.0, 1.0, ErrorMessage = RateHint)]
    public double? MaxFlipRate { get; init; } = 0.10;

    /// <summary>
    /// Largest counterfactual score gap of any attribute group pair (classifiers): the pair's mean absolute change of
    /// probability (of <see cref="CounterfactualProbeOptions.ScoreClass"/>, or the largest change of any class).
    /// </summary>
    /// <value>Default 0.10.</value>
    [Range(0.0, 1.0, ErrorMessage = RateHint)]
    public double? MaxScoreGap { get; init; } = 0.10;

    /// <summary>
    /// Largest |mean log-likelihood gap| of any attribute group pair (language models), in nats per sentence. The default,
    /// ln 2, allows one group's sentences to be at most twice as likely on average as the other's.
    /// </summary>
    /// <value>Default ln 2 ≈ 0.693.</value>
    [Range(0.0, double.MaxValue, ErrorMessage = "use a non-negative number of nats, e.g. 0.693 (a factor of two), or null to skip the check")]
    public double? MaxLogLikelihoodGap { get; init; } = Math.Log(2);

    /// <summary>Largest demographic parity difference (max − min selection rate over groups) of any class.</summary>
    /// <value>Default 0.10.</value>
    [Range(0.0, 1.0, ErrorMessage = RateHint)]
    public double? MaxDemographicParityDifference { get; init; } = 0.10;

    /// <summary>Largest equal opportunity difference (max − min true-positive rate over groups) of any class.</summary>
    /// <value>Default 0.10.</value>
    [Range(0.0, 1.0, ErrorMessage = RateHint)]
    public double? MaxEqualOpportunityDifference { get; init; } = 0.10;

    /// <summary>Largest equalised odds difference (the larger of the TPR and FPR differences) of any class.</summary>
    /// <value>Default 0.10.</value>
    [Range(0.0, 1.0, ErrorMessage = RateHint)]
    public double? MaxEqualizedOddsDifference { get; init; } = 0.10;

    /// <summary>
    /// Largest gap (best − worst slice) of any higher-is-better slice metric (accuracy, F1 …). Lower-is-better metrics
    /// (loss, perplexity, error) are in their own units and are reported without being checked.
    /// </summary>
    /// <value>Default 0.10.</value>
    [Range(0.0, 1.0, ErrorMessage = RateHint)]
    public double? MaxSliceGap { get; init; } = 0.10;

    /// <summary>
    /// Fewest examples behind a group's rate for it to take part in a group check: the selection rate needs this many
    /// examples in the group, the TPR this many positives, the FPR this many negatives. A rate from 10 examples moves by
    /// 0.1 when one answer changes, so smaller groups would fail (or pass) by chance; they are listed in the check's note.
    /// </summary>
    /// <value>Default 30.</value>
    [Range(1, int.MaxValue, ErrorMessage = "use 1 (every group counts) or more, e.g. 30")]
    public int MinimumGroupSize { get; init; } = 30;

    /// <summary>Checks every limit and reports every problem at once.</summary>
    /// <exception cref="ArgumentException">
    /// A limit is negative, not a number, or (for rates) above 1, or <see cref="MinimumGroupSize"/> is below 1; the
    /// message names each property, its value and the fix, and <see cref="ArgumentException.ParamName"/> is the first.
    /// </exception>
    public void Validate()
    {
        var problems = new List<ValidationResult>();
        if (Validator.TryValidateObject(this, new ValidationContext(this), problems, validateAllProperties: true))
        {
            return;
        }

        string[] members = [.. problems.Select(p => p.MemberNames.FirstOrDefault() ?? string.Empty)];
        IEnumerable<string> lines = problems.Select((p, i) =>
        {
            object? value = typeof(BiasThresholds).GetProperty(members[i])?.GetValue(this);
            return $"{members[i]} is {Convert.ToString(value, CultureInfo.InvariantCulture) ?? "null"}: {p.ErrorMessage}.";
        });
        throw new ArgumentException("Invalid BiasThresholds: " + string.Join(" ", lines), members[0]);
    }

    /// <summary>The limits as one line, e.g. <c>flip rate ≤ 0.10, score gap ≤ 0.10, …</c>.</summary>
    /// <returns>The text.</returns>
    public override string ToString()
    {
        static string Limit(string name, double? value) => value is { } v ? string.Create(CultureInfo.InvariantCulture, $"{name} ≤ {v:0.###}") : $"{name} not checked";
        return string.Join(", ", [
            Limit("flip rate", MaxFlipRate), Limit("score gap", MaxScoreGap), Limit("log-likelihood gap", MaxLogLikelihoodGap),
            Limit("demographic parity Δ", MaxDemographicParityDifference), Limit("equal opportunity Δ", MaxEqualOpportunityDifference),
            Limit("equalised odds Δ", MaxEqualizedOddsDifference), Limit("slice gap", MaxSliceGap),
            string.Create(CultureInfo.InvariantCulture, $"groups of ≥ {MinimumGroupSize}")]);
    }
}
