using System.Collections.Immutable;
using System.Globalization;
using NicheTune.Freezing;

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

/// <summary>
/// Splits the trainable parameters into optimizer groups. Built-ins come from <see cref="ParameterGroupings"/>; every
/// built-in puts biases and normalisation weights (1-D parameters) in a separate group without weight decay, as
/// Hugging Face's Trainer does, unless asked not to.
/// </summary>
public interface IParameterGrouping
{
    /// <summary>Groups <paramref name="trainableParameterNames"/>; every name must land in exactly one group.</summary>
    /// <param name="map">The model's layer map (groups, parameter shapes).</param>
    /// <param name="trainableParameterNames">Names of the parameters to be trained now, in model order.</param>
    /// <returns>The groups, in order (empty groups are allowed and dropped).</returns>
    IReadOnlyList<ParameterGroupPlan> Group(LayerMap map, IReadOnlyList<string> trainableParameterNames);
}

/// <summary>Factories for the built-in parameter groupings.</summary>
public static class ParameterGroupings
{
    /// <summary>
    /// One learning rate for every parameter; biases and normalisation weights without weight decay. Groups still follow
    /// the layer map (one per layer group, named after it), so logs and recorded rates read per layer.
    /// </summary>
    /// <param name="excludeBiasAndNormFromWeightDecay">Put 1-D parameters (biases, norm weights) in a group with no weight decay.</param>
    /// <returns>The grouping.</returns>
    public static IParameterGrouping Uniform(bool excludeBiasAndNormFromWeightDecay = true)
        => new LayerGrouping(static (_, _) => 1.0, excludeBiasAndNormFromWeightDecay, perLayer: true);

    /// <summary>
    /// Layer-wise learning-rate decay (ULMFiT's discriminative rates, ELECTRA/BEiT's LLRD): the head trains at the base
    /// rate and each group below at <paramref name="decay"/> times the one above — group at depth d from the top gets
    /// base × decay^d, so the general bottom layers move least.
    /// </summary>
    /// <param name="decay">Factor per layer going down, in (0, 1]; 0.8–0.95 is usual.</param>
    /// <param name="headMultiplier">Multiplier of the head group (and unplaced parameters) instead of 1, e.g. 10 for a fresh classifier.</param>
    /// <param name="excludeBiasAndNormFromWeightDecay">Put 1-D parameters in groups with no weight decay.</param>
    /// <returns>The grouping.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range.</exception>
    public static IParameterGrouping LayerwiseDecay(double decay, double headMultiplier = 1.0, bool excludeBiasAndNormFromWeightDecay = true)
    {
        if (!(decay > 0 && decay <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(decay), decay, "Layer-wise decay must be in (0, 1]; 0.8–0.95 is usual.");
        }

        CheckMultiplier(headMultiplier, nameof(headMultiplier));
        return new LayerGrouping(
            (map, group) => group.DepthFromTop(map.LayerCount) == 0 ? headMultiplier : Math.Pow(decay, group.DepthFromTop(map.LayerCount)),
            excludeBiasAndNormFromWeightDecay,
            perLayer: true);
    }

    /// <summary>
    /// An explicit multiplier of the base rate per layer group — e.g. 1e-6 / 5e-5 for the sensitive bottom, 1 for the top.
    /// </summary>
    /// <param name="multiplier">Multiplier of the base rate for a group; must be finite and ≥ 0.</param>
    /// <param name="excludeBiasAndNormFromWeightDecay">Put 1-D parameters in groups with no weight decay.</param>
    /// <returns>The grouping.</returns>
    public static IParameterGrouping PerGroup(Func<LayerGroup, double> multiplier, bool excludeBiasAndNormFromWeightDecay = true)
    {
        ArgumentNullException.ThrowIfNull(multiplier);
        return new LayerGrouping((_, group) => CheckMultiplier(multiplier(group), $"multiplier of '{group.Name}'"), excludeBiasAndNormFromWeightDecay, perLayer: true);
    }

    internal static double CheckMultiplier(double value, string name)
    {
        if (!(value >= 0) || double.IsInfinity(value))
        {
            throw new ArgumentOutOfRangeException(name, value, $"The learning-rate {name} must be finite and ≥ 0.");
        }

        return value;
    }
}

internal sealed class LayerGrouping(Func<LayerMap, LayerGroup, double> multiplier, bool excludeFromDecay, bool perLayer) : IParameterGrouping
{
    public IReadOnlyList<ParameterGroupPlan> Group(LayerMap map, IReadOnlyList<string> trainableParameterNames)
    {
        var result = new List<ParameterGroupPlan>();
        var byGroup = trainableParameterNames.GroupBy(n => perLayer ? map.GroupOf(n).Name : "all");
        foreach (var members in byGroup)
        {
            double factor = perLayer ? multiplier(map, map.GroupOf(members.First())) : 1.0;
            var decayed = ImmutableArray.CreateBuilder<string>();
            var undecayed = ImmutableArray.CreateBuilder<string>();
            foreach (string name in members)
            {
                (excludeFromDecay && map.GetParameter(name).dim() < 2 ? undecayed : decayed).Add(name);
            }

            if (decayed.Count > 0)
            {
                result.Add(new ParameterGroupPlan(members.Key, decayed.ToImmutable(), factor));
            }

            if (undecayed.Count > 0)
            {
                result.Add(new ParameterGroupPlan(members.Key + " (no decay)", undecayed.ToImmutable(), factor, WeightDecay: 0.0));
            }
        }

        return result;
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{(perLayer ? "per layer" : "uniform")}{(excludeFromDecay ? ", no decay on biases and norms" : "")}");
}
