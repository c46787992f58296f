using System.ComponentModel.DataAnnotations;
using NicheTune.Models;

namespace NicheTune.Deployment;

/// <summary>How <see cref="NicheModel"/> serves a package: micro-batching, precision, device and who observes the answers.</summary>
public sealed class NicheModelOptions
{
    /// <summary>The most requests run as one batch (one forward pass). 1 answers requests one by one.</summary>
    /// <value>Default 32.</value>
    [Range(1, 4096)]
    public int MaxBatchSize { get; set; } = 32;

    /// <summary>
    /// How long the batcher waits, after the first request of a batch arrives, for more to join it (unless the batch
    /// fills first). A short window (a few milliseconds) trades a little latency for much higher throughput under load.
    /// </summary>
    /// <value>Default 2 ms.</value>
    public TimeSpan BatchWindow { get; set; } = TimeSpan.FromMilliseconds(2);

    /// <summary>Whether to hold the weights in bfloat16 (half the memory; answers differ from float32 within bf16 rounding). Outputs are still float32.</summary>
    /// <value>Default <see langword="false"/>.</value>
    public bool UseBFloat16 { get; set; }

    /// <summary>The device to serve on, as torch names it (<c>cpu</c>, <c>cuda</c>, <c>cuda:1</c>).</summary>
    /// <value>Default <c>cpu</c>.</value>
    [Required]
    public string Device { get; set; } = "cpu";

    /// <summary>Whether to check every file's SHA-256 against <c>package.json</c> before loading (a damaged or modified package is refused).</summary>
    /// <value>Default <see langword="true"/>.</value>
    public bool VerifyContentHash { get; set; } = true;

    /// <summary>How <c>Generate</c> picks tokens when the caller passes no options.</summary>
    /// <value>Default greedy decoding of at most 32 new tokens.</value>
    public GenerationOptions Generation { get; set; } = new();

    /// <summary>
    /// Observers that receive one <see cref="PredictionRecord"/> per answered request (a monitor, a feedback store).
    /// More can be added later with <see cref="NicheModel.AddObserver"/>.
    /// </summary>
    /// <value>Default empty.</value>
    public IList<IPredictionObserver> Observers { get; } = [];
}
