using System.Collections.Immutable;

namespace NicheTune.Deployment;

/// <summary>
/// What <c>model-card.md</c> tells the people who deploy or audit a model: the data it learned from, how it was trained,
/// how well it does on each slice of the data, what the bias checks found, and what it is (and is not) for.
/// </summary>
public sealed record ModelCard
{
    /// <summary>A one-paragraph description of the model.</summary>
    /// <value>Default <see langword="null"/> (omitted).</value>
    public string? Description { get; init; }

    /// <summary>The training data: source, size, licence, how labels were made, known gaps.</summary>
    /// <value>Default <see langword="null"/> (the card says it was not described).</value>
    public string? TrainingData { get; init; }

    /// <summary>Hyper-parameters by name (learning rate, epochs, batch size, LoRA rank…), as they should be printed.</summary>
    /// <value>Default empty.</value>
    public ImmutableSortedDictionary<string, string> HyperParameters { get; init; } = ImmutableSortedDictionary<string, string>.Empty;

    /// <summary>Metrics per slice of the evaluation data: slice name → (metric name → value), e.g. <c>"overall" → {"accuracy": 0.81}</c>.</summary>
    /// <value>Default empty.</value>
    public ImmutableSortedDictionary<string, ImmutableSortedDictionary<string, double>> SliceMetrics { get; init; } =
        ImmutableSortedDictionary<string, ImmutableSortedDictionary<string, double>>.Empty;

    /// <summary>The bias checks that were run and what they found, one finding per item (Markdown allowed).</summary>
    /// <value>Default empty (the card says none were run).</value>
    public ImmutableArray<string> BiasChecks { get; init; } = [];

    /// <summary>What the model is meant for.</summary>
    /// <value>Default <see langword="null"/>.</value>
    public string? IntendedUse { get; init; }

    /// <summary>Where it must not be used and how it is known to fail.</summary>
    /// <value>Default <see langword="null"/>.</value>
    public string? Limitations { get; init; }
}
