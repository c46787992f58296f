namespace NicheTune.Scheduling;

/// <summary>
/// A learning-rate schedule as a pure function of the optimizer step: the multiplier applied to every parameter
/// group's base rate. Pure and allocation-free so the trainer can call it every step.
/// </summary>
/// <remarks>
/// Built-ins come from <see cref="Schedules"/> and compose (<c>Schedules.LinearWarmup(200).ThenCosine()</c>); a class of
/// your own plugs into the same composition. A schedule used as a phase of a <see cref="ScheduleSequence"/> sees the
/// phase's local step (0 at the phase's first step) and the phase's length as <c>totalSteps</c>.
/// </remarks>
public interface ILearningRateSchedule
{
    /// <summary>The multiplier (usually in [0, 1]) for optimizer step <paramref name="step"/> (0-based) of <paramref name="totalSteps"/>.</summary>
    /// <param name="step">The optimizer step about to be taken, from 0.</param>
    /// <param name="totalSteps">The planned number of optimizer steps of the run.</param>
    /// <returns>The multiplier of the base learning rate.</returns>
    double Multiplier(long step, long totalSteps);

    /// <summary>Checks the schedule against the run's length; returns one message per problem (e.g. a warm-up longer than the run).</summary>
    /// <param name="totalSteps">The planned number of optimizer steps, or <see langword="null"/> when not known before data is seen.</param>
    /// <returns>Problems, each saying what is wrong and what to do.</returns>
    IEnumerable<string> Validate(long? totalSteps) => [];
}
