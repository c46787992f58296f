namespace NicheTune.Freezing;

/// <summary>Where training is when a freezing decision is made.</summary>
/// <param name="Epoch">Current epoch, from 0.</param>
/// <param name="Step">Optimizer steps taken so far.</param>
/// <param name="AtEpochStart">Whether this is the start of <paramref name="Epoch"/> (before its first batch) rather than the end of a step.</param>
public readonly record struct FreezePosition(int Epoch, long Step, bool AtEpochStart = false);

/// <summary>
/// Decides which parameters are frozen (<c>requires_grad = false</c>, kept out of the optimizer, no backward below the
/// lowest trainable layer). Built-ins come from <see cref="Freeze"/> and compose with
/// <see cref="FreezeComposition.And"/> and <see cref="FreezeComposition.Except"/>; a user's own implementation plugs in the same way.
/// </summary>
public interface IFreezeStrategy
{
    /// <summary>The names of the parameters to freeze at <paramref name="position"/>.</summary>
    /// <param name="map">The model's layer map.</param>
    /// <param name="position">Where training is.</param>
    /// <returns>Parameter names (a subset of <see cref="LayerMap.ParameterNames"/>).</returns>
    IReadOnlySet<string> Frozen(LayerMap map, FreezePosition position);

    /// <summary>Checks the strategy against the model: e.g. a pattern that matches no parameter, or more layers than the model has.</summary>
    /// <param name="map">The model's layer map.</param>
    /// <returns>Problems, each naming what is wrong and what to do.</returns>
    IEnumerable<string> Validate(LayerMap map) => [];

    /// <summary>
    /// Whether the decision may change at <paramref name="position"/> (checked at every epoch start and after every step;
    /// must be cheap). Static strategies return <see langword="false"/>: they are applied once, at the start.
    /// </summary>
    /// <param name="position">Where training is.</param>
    /// <returns><see langword="true"/> to have <see cref="Frozen"/> asked again.</returns>
    bool ChangesAt(FreezePosition position) => false;

    /// <summary>Factor on the learning rate of parameters this strategy unfreezes during training (e.g. a lower rate for a backbone).</summary>
    /// <value>Default 1.</value>
    double UnfrozenLearningRateFactor => 1.0;
}
