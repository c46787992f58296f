namespace NicheTune.Scheduling;

/// <summary>
/// A schedule whose multiplier follows a validation metric rather than the step alone, such as
/// <see cref="Schedules.ReduceOnPlateau"/>. Choose one when you cannot know in advance how long the model keeps
/// improving at a given rate; prefer a pure schedule otherwise, because a pure schedule needs no state in checkpoints.
/// </summary>
/// <remarks>
/// The trainer calls <see cref="Reset"/> when a run starts fresh, <see cref="Observe"/> after each evaluation that
/// produced <see cref="Metric"/>, saves <see cref="SaveState"/> in every checkpoint and calls <see cref="LoadState"/>
/// when resuming. <see cref="ILearningRateSchedule.Multiplier"/> stays allocation-free and reads the state only.
/// Instances hold mutable state: use one instance per run, from one thread.
/// </remarks>
public interface IMetricDrivenSchedule : ILearningRateSchedule
{
    /// <summary>Gets the name of the metric the schedule follows, as the trainer reports it.</summary>
    /// <value>For example <c>validation.loss</c>.</value>
    string Metric { get; }

    /// <summary>Feeds one evaluation's value of <see cref="Metric"/>; the multiplier of later steps may change.</summary>
    /// <param name="step">Optimizer steps taken when the evaluation ran (the next step to be taken), counted as in <see cref="ILearningRateSchedule.Multiplier"/>.</param>
    /// <param name="totalSteps">The planned number of optimizer steps of the run, the same value given to <see cref="ILearningRateSchedule.Multiplier"/>.</param>
    /// <param name="value">The metric's value; NaN counts as no improvement.</param>
    void Observe(long step, long totalSteps, double value);

    /// <summary>Captures everything <see cref="Observe"/> has changed, so a resumed run continues exactly where it stopped.</summary>
    /// <returns>An opaque JSON text to store in the checkpoint and give back to <see cref="LoadState"/>.</returns>
    string SaveState();

    /// <summary>Restores the state captured by <see cref="SaveState"/>.</summary>
    /// <param name="state">Text returned by <see cref="SaveState"/> of a schedule configured the same way.</param>
    /// <exception cref="ArgumentException"><paramref name="state"/> is not such a text, or was saved for another metric or schedule.</exception>
    void LoadState(string state);

    /// <summary>Forgets every observation, as before the first one; call it when a run starts from scratch with the same instance.</summary>
    void Reset();
}

/// <summary>How <see cref="Schedules.ReduceOnPlateau"/> decides that a metric value is an improvement over the best so far.</summary>
public enum ThresholdMode
{
    /// <summary>
    /// Better by a fraction of the best: <c>value &lt; best · (1 − threshold)</c> when lower is better,
    /// <c>value &gt; best · (1 + threshold)</c> when higher is better (torch's <c>threshold_mode='rel'</c>). Suits metrics whose scale you do not know.
    /// </summary>
    Relative,

    /// <summary>
    /// Better by a fixed amount: <c>value &lt; best − threshold</c> or <c>value &gt; best + threshold</c>
    /// (torch's <c>threshold_mode='abs'</c>). Suits metrics on a known scale, such as accuracy.
    /// </summary>
    Absolute,
}
