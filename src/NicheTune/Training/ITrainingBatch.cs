using TorchSharp;

namespace NicheTune.Training;

/// <summary>
/// A batch the trainer can step on: owns its tensors (disposed by the trainer once the step is done) and
/// says how many examples and tokens it holds, counted on the host when it was collated so that
/// throughput needs no device synchronisation.
/// </summary>
public interface ITrainingBatch : IDisposable
{
    /// <summary>Number of examples (rows) in the batch.</summary>
    long ExampleCount { get; }

    /// <summary>Number of real (non-padding) tokens, or <see cref="ExampleCount"/> where tokens do not apply.</summary>
    long TokenCount { get; }

    /// <summary>Moves the batch's tensors to <paramref name="device"/>; called by the trainer before the step (no-op when already there).</summary>
    /// <param name="device">The device the model lives on.</param>
    void MoveTo(torch.Device device);
}

/// <summary>Turns a list of examples into one batch of tensors; runs on the background prefetch thread.</summary>
/// <typeparam name="TExample">The example type.</typeparam>
/// <typeparam name="TBatch">The batch type the objective consumes.</typeparam>
public interface ICollator<TExample, out TBatch>
    where TBatch : ITrainingBatch
{
    /// <summary>Builds one batch from <paramref name="examples"/> (never empty).</summary>
    /// <param name="examples">The examples of the batch, in order.</param>
    /// <returns>A new batch the caller owns and disposes.</returns>
    TBatch Collate(IReadOnlyList<TExample> examples);
}
