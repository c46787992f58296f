using System.Collections.Immutable;

namespace NicheTune.Tuning;

/// <summary>
/// Chooses a value for each parameter a trial asks for (define-by-run: parameters are sampled one at a time, when the
/// objective asks, so conditional parameters need nothing special). Built-ins: <see cref="Samplers"/>.
/// </summary>
public interface ISampler
{
    /// <summary>
    /// The most trials this sampler can give a study (a grid's size), or <see langword="null"/> for no limit. The
    /// storage refuses to number more trials than this, so every worker together runs each grid point once.
    /// </summary>
    int? MaxTrials => null;

    /// <summary>Samples one parameter.</summary>
    /// <param name="args">The study's history, the trial and the parameter.</param>
    /// <returns>A value in internal form that <see cref="ParameterDistribution.Contains"/> accepts.</returns>
    double Sample(in SamplerArguments args);
}

/// <summary>What a sampler sees when it samples one parameter.</summary>
/// <param name="Directions">The study's directions.</param>
/// <param name="Trials">The study's other trials as they were when this trial started (finished ones are the evidence).</param>
/// <param name="TrialNumber">The number of the trial being sampled.</param>
/// <param name="ParameterName">The parameter.</param>
/// <param name="Distribution">Its distribution.</param>
public readonly record struct SamplerArguments(
    ImmutableArray<StudyDirection> Directions,
    IReadOnlyList<FrozenTrial> Trials,
    int TrialNumber,
    string ParameterName,
    ParameterDistribution Distribution);

/// <summary>Decides whether a running trial should stop early, from its intermediate values and those of other trials. Built-ins: <see cref="Pruners"/>.</summary>
public interface IPruner
{
    /// <summary>Whether to prune the trial now.</summary>
    /// <param name="args">The trial, the study's trials and the direction.</param>
    /// <returns><see langword="true"/> to prune.</returns>
    bool ShouldPrune(in PrunerArguments args);
}

/// <summary>What a pruner sees.</summary>
/// <param name="Direction">The study's direction (pruning needs a single objective).</param>
/// <param name="Trials">Every trial of the study, fresh from the storage.</param>
/// <param name="Trial">The trial being judged, with its intermediate values so far.</param>
/// <param name="SetAttribute">Stores an attribute on the judged trial (pruners that keep state, like successive halving's rungs).</param>
public readonly record struct PrunerArguments(
    StudyDirection Direction,
    IReadOnlyList<FrozenTrial> Trials,
    FrozenTrial Trial,
    Action<string, string> SetAttribute);
