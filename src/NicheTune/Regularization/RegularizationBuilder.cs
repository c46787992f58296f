using System.Collections.Immutable;

namespace NicheTune.Regularization;

/// <summary>
/// Collects the regularisers of a plan: <c>.Regularize(r =&gt; r.WeightDecay(0.01).Dropout(0.1).LabelSmoothing(0.1).L2SP(0.01))</c>.
/// Each method checks its arguments at once and throws <see cref="ArgumentOutOfRangeException"/> naming the value and the fix.
/// </summary>
public sealed class RegularizationBuilder
{
    private readonly ImmutableArray<IRegularizer>.Builder _regularizers = ImmutableArray.CreateBuilder<IRegularizer>();

    internal RegularizationBuilder()
    {
    }

    internal double? WeightDecayValue { get; private set; }

    internal double? LabelSmoothingValue { get; private set; }

    internal ImmutableArray<IRegularizer> Regularizers => _regularizers.ToImmutable();

    /// <summary>
    /// Decoupled weight decay (AdamW's, Loshchilov &amp; Hutter 2019): every step shrinks the decayed weights by
    /// learning rate × <paramref name="rate"/>. Biases and normalisation weights are not decayed (their own parameter group).
    /// </summary>
    /// <param name="rate">Decay, ≥ 0; 0.01–0.1 is usual for fine-tuning.</param>
    /// <returns>This builder.</returns>
    public RegularizationBuilder WeightDecay(double rate)
    {
        if (!(rate >= 0) || double.IsInfinity(rate))
        {
            throw new ArgumentOutOfRangeException(nameof(rate), rate, "Weight decay must be finite and ≥ 0; 0.01–0.1 is usual.");
        }

        WeightDecayValue = rate;
        return this;
    }

    /// <summary>
    /// Sets the rate of the model's dropout modules (all of them, or those whose module name matches a glob) when
    /// training starts — raise it to fight overfitting on a small niche set. The model keeps the new rate afterwards.
    /// </summary>
    /// <param name="rate">Probability of zeroing an activation, in [0, 1).</param>
    /// <param name="modulePatterns">Globs over module names (e.g. <c>"transformer.h.*"</c>); none means every dropout module.</param>
    /// <returns>This builder.</returns>
    public RegularizationBuilder Dropout(double rate, params string[] modulePatterns)
    {
        if (!(rate >= 0 && rate < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(rate), rate, "Dropout must be in [0, 1); 0.1 is usual.");
        }

        return Add(new DropoutOverride(rate, modulePatterns ?? []));
    }

    /// <summary>
    /// Label smoothing (Szegedy et al. 2016) on the objective's cross-entropy: the target puts 1 − ε on the true class
    /// and spreads ε uniformly, which discourages over-confident predictions on small data.
    /// </summary>
    /// <param name="epsilon">ε in [0, 1); 0.1 is usual.</param>
    /// <returns>This builder.</returns>
    public RegularizationBuilder LabelSmoothing(double epsilon)
    {
        if (!(epsilon >= 0 && epsilon < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "Label smoothing must be in [0, 1); 0.1 is usual.");
        }

        LabelSmoothingValue = epsilon;
        return this;
    }

    /// <summary>
    /// L2-SP (Li, Grandvalet &amp; Davoine 2018): adds α/2 · Σ‖w − w₀‖² over the trainable weights, pulling them toward
    /// their pretrained values w₀ (captured when training starts) instead of toward zero — the regulariser made for
    /// fine-tuning: it limits forgetting of the general domain.
    /// </summary>
    /// <param name="alpha">Strength α &gt; 0; 0.001–0.1 is usual.</param>
    /// <param name="exceptPatterns">Globs of parameters left out (e.g. a freshly initialised head: <c>"classifier.*"</c>).</param>
    /// <returns>This builder.</returns>
    public RegularizationBuilder L2SP(double alpha, params string[] exceptPatterns)
    {
        if (!(alpha > 0) || double.IsInfinity(alpha))
        {
            throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "L2-SP strength must be positive and finite; 0.001–0.1 is usual.");
        }

        return Add(new L2SPRegularizer(alpha, exceptPatterns ?? []));
    }

    /// <summary>
    /// Exponential moving average of the weights (Polyak averaging): after each step, avg ← decay · avg + (1 − decay) · w;
    /// the averaged weights replace the model's at the end and are what the final evaluation sees.
    /// </summary>
    /// <param name="decay">In (0, 1); 0.99–0.9999, closer to 1 for longer runs.</param>
    /// <param name="everySteps">Update the average every this many steps, at least 1.</param>
    /// <returns>This builder.</returns>
    public RegularizationBuilder Ema(double decay = 0.999, int everySteps = 1)
    {
        if (!(decay > 0 && decay < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(decay), decay, "EMA decay must be in (0, 1); 0.999 is usual.");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(everySteps, 1);
        return Add(new EmaRegularizer(decay, everySteps));
    }

    /// <summary>
    /// Stochastic weight averaging (Izmailov et al. 2018): from <paramref name="startFraction"/> of the run, the
    /// weights are averaged (equal weights) every <paramref name="everySteps"/> steps while the learning rate anneals to a
    /// constant SWA rate; at the end the average replaces the weights, batch-norm statistics are recomputed over the
    /// training data if the model has batch norm, and the final evaluation uses the average. Wider optima generalise better.
    /// </summary>
    /// <param name="startFraction">When averaging starts, as a fraction of the run in [0, 1).</param>
    /// <param name="everySteps">Steps between snapshots, at least 1.</param>
    /// <param name="learningRateFactor">The constant SWA rate as a factor of the base rate, or <see langword="null"/> to keep the plan's schedule.</param>
    /// <param name="annealSteps">Steps of cosine annealing from the schedule's rate to the SWA rate, ≥ 0.</param>
    /// <returns>This builder.</returns>
    public RegularizationBuilder Swa(double startFraction = 0.75, int everySteps = 1, double? learningRateFactor = null, int annealSteps = 0)
    {
        if (!(startFraction >= 0 && startFraction < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(startFraction), startFraction, "SWA start must be a fraction of the run in [0, 1), e.g. 0.75.");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(everySteps, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(annealSteps);
        if (learningRateFactor is { } f && (!(f > 0) || double.IsInfinity(f)))
        {
            throw new ArgumentOutOfRangeException(nameof(learningRateFactor), learningRateFactor, "The SWA learning-rate factor must be positive and finite, e.g. 0.5.");
        }

        return Add(new SwaRegularizer(startFraction, null, everySteps, learningRateFactor, annealSteps));
    }

    /// <summary>Stochastic weight averaging from the start of epoch <paramref name="startEpoch"/> (from 0); otherwise as <see cref="Swa(double, int, double?, int)"/>.</summary>
    /// <param name="startEpoch">The epoch whose first step starts the averaging, at least 1.</param>
    /// <param name="everySteps">Steps between snapshots, at least 1.</param>
    /// <param name="learningRateFactor">The constant SWA rate as a factor of the base rate, or <see langword="null"/> to keep the plan's schedule.</param>
    /// <param name="annealSteps">Steps of cosine annealing from the schedule's rate to the SWA rate, ≥ 0.</param>
    /// <returns>This builder.</returns>
    public RegularizationBuilder SwaFromEpoch(int startEpoch, int everySteps = 1, double? learningRateFactor = null, int annealSteps = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(startEpoch, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(everySteps, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(annealSteps);
        if (learningRateFactor is { } f && (!(f > 0) || double.IsInfinity(f)))
        {
            throw new ArgumentOutOfRangeException(nameof(learningRateFactor), learningRateFactor, "The SWA learning-rate factor must be positive and finite, e.g. 0.5.");
        }

        return Add(new SwaRegularizer(0, startEpoch, everySteps, learningRateFactor, annealSteps));
    }

    /// <summary>
    /// Early stopping, here beside the other defences against over-fitting: the same as the builder's
    /// <c>EarlyStopping(...)</c> (stop after <paramref name="patience"/> evaluations without improvement, restore the best weights).
    /// </summary>
    /// <param name="metric">A validation metric, e.g. <c>validation.loss</c>.</param>
    /// <param name="patience">Evaluations without improvement to tolerate, at least 1.</param>
    /// <param name="minDelta">The smallest change that counts as improvement, ≥ 0.</param>
    /// <param name="mode">Lower or higher is better; <see cref="Training.MetricMode.Auto"/> asks the metric.</param>
    /// <param name="restoreBestWeights">Restore the best evaluation's weights at the end.</param>
    /// <returns>This builder.</returns>
    public RegularizationBuilder EarlyStopping(string metric, int patience = 3, double minDelta = 0.0, Training.MetricMode mode = Training.MetricMode.Auto, bool restoreBestWeights = true)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(metric);
        EarlyStoppingValue = new Training.EarlyStoppingPlan(metric, patience, minDelta, mode, restoreBestWeights);
        return this;
    }

    internal Training.EarlyStoppingPlan? EarlyStoppingValue { get; private set; }

    /// <summary>Adds a user-written regulariser; it runs exactly like the built-ins.</summary>
    /// <param name="regularizer">The regulariser.</param>
    /// <returns>This builder.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="regularizer"/> is <see langword="null"/>.</exception>
    public RegularizationBuilder Add(IRegularizer regularizer)
    {
        ArgumentNullException.ThrowIfNull(regularizer);
        _regularizers.Add(regularizer);
        return this;
    }
}
