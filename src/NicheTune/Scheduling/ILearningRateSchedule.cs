namespace NicheTune.Scheduling;

/// <summary>
/// A learning-rate schedule as a pure function of the optimizer step: the multiplier applied to every parameter
/// group's base rate. Pure and allocation-free so the trainer can call it every step.
/// </summary>
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

/// <summary>Factories for the built-in learning-rate schedules.</summary>
public static class Schedules
{
    /// <summary>The base rate throughout: multiplier 1 at every step.</summary>
    /// <returns>The schedule.</returns>
    public static ILearningRateSchedule Constant() => ConstantSchedule.Instance;
}

internal sealed class ConstantSchedule : ILearningRateSchedule
{
    public static readonly ConstantSchedule Instance = new();

    public double Multiplier(long step, long totalSteps) => 1.0;
}
