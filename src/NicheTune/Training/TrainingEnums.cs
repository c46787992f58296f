namespace NicheTune.Training;

/// <summary>What the trainer does when the loss or the gradient is NaN or infinite.</summary>
public enum NonFiniteLossPolicy
{
    /// <summary>Stop with <see cref="NonFiniteLossException"/>; the weights keep the values of the last good step.</summary>
    Stop,

    /// <summary>Skip the update (gradients are discarded, weights and optimizer state untouched) and go on; stops after too many in a row.</summary>
    SkipStep,
}

/// <summary>Whether a monitored metric improves by going down or up.</summary>
public enum MetricMode
{
    /// <summary>Taken from the metric: loss and perplexity go down, the rest go up.</summary>
    Auto,

    /// <summary>Lower is better.</summary>
    Min,

    /// <summary>Higher is better.</summary>
    Max,
}

/// <summary>Why a run ended.</summary>
public enum StopReason
{
    /// <summary>All epochs (or the step budget) completed.</summary>
    Completed,

    /// <summary>The monitored metric stopped improving for the configured patience.</summary>
    EarlyStopped,

    /// <summary>A callback asked to stop.</summary>
    StoppedByCallback,
}

/// <summary>Thrown when the loss or gradient is not finite and the policy says stop (or too many steps were skipped in a row).</summary>
public sealed class NonFiniteLossException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What happened and what to try.</param>
    /// <param name="step">The optimizer step at which it happened.</param>
    public NonFiniteLossException(string message, long step)
        : base(message)
    {
        Step = step;
    }

    /// <summary>The optimizer step at which the non-finite value appeared.</summary>
    public long Step { get; }
}
