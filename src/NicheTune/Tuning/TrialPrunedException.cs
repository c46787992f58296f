namespace NicheTune.Tuning;

/// <summary>
/// Thrown by an objective to say that its trial was pruned (<c>if (trial.ShouldPrune()) throw new TrialPrunedException();</c>);
/// the study records the trial as <see cref="TrialState.Pruned"/> rather than failed.
/// </summary>
public sealed class TrialPrunedException : Exception
{
    /// <summary>Creates the exception with a default message.</summary>
    public TrialPrunedException()
        : base("The trial was pruned.")
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">Why the trial was pruned.</param>
    public TrialPrunedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">Why the trial was pruned.</param>
    /// <param name="innerException">The cause.</param>
    public TrialPrunedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
