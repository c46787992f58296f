using System.Collections.Immutable;

namespace NicheTune.Scheduling;

/// <summary>
/// One optimizer parameter group: which parameters (by name) it holds and how its learning rate and weight decay
/// differ from the run's base settings. Per-layer learning rates and decay exclusions are expressed as groups.
/// </summary>
/// <param name="Name">A name for logs and reports, e.g. <c>layer 3</c>.</param>
/// <param name="ParameterNames">Names as <c>named_parameters()</c> reports them.</param>
/// <param name="LearningRateMultiplier">Factor on the base learning rate (before the schedule).</param>
/// <param name="WeightDecay">The group's weight decay, or <see langword="null"/> for the optimizer's.</param>
public sealed record ParameterGroupPlan(string Name, ImmutableArray<string> ParameterNames, double LearningRateMultiplier = 1.0, double? WeightDecay = null);

/// <summary>Splits the trainable parameters into optimizer groups. The default puts them all in one group.</summary>
public interface IParameterGrouping
{
    /// <summary>Groups <paramref name="trainableParameterNames"/>; every name must land in exactly one group.</summary>
    /// <param name="trainableParameterNames">Names of the parameters that will be trained, in model order.</param>
    /// <returns>The groups, in order.</returns>
    IReadOnlyList<ParameterGroupPlan> Group(IReadOnlyList<string> trainableParameterNames);
}

internal sealed class SingleGroup : IParameterGrouping
{
    public static readonly SingleGroup Instance = new();

    public IReadOnlyList<ParameterGroupPlan> Group(IReadOnlyList<string> trainableParameterNames)
        => [new ParameterGroupPlan("all", [.. trainableParameterNames])];
}
