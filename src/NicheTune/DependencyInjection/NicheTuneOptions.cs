using System.ComponentModel.DataAnnotations;

namespace NicheTune.DependencyInjection;

/// <summary>
/// Defaults for every fine-tuner a host creates through <see cref="IFineTunerFactory"/>, bound from the
/// configuration section <c>NicheTune</c> and validated at start-up. Each builder can still override them.
/// </summary>
public sealed class NicheTuneOptions
{
    /// <summary>The configuration section the options bind from.</summary>
    public const string SectionName = "NicheTune";

    /// <summary>Base learning rate.</summary>
    /// <value>Default 5e-5.</value>
    [Range(1e-12, 10.0)]
    public double LearningRate { get; set; } = 5e-5;

    /// <summary>Examples per batch.</summary>
    /// <value>Default 8.</value>
    [Range(1, 1_000_000)]
    public int BatchSize { get; set; } = 8;

    /// <summary>Passes over the training data.</summary>
    /// <value>Default 3.</value>
    [Range(1, 1_000_000)]
    public int Epochs { get; set; } = 3;

    /// <summary>Batches per optimizer step.</summary>
    /// <value>Default 1.</value>
    [Range(1, 100_000)]
    public int GradientAccumulationSteps { get; set; } = 1;

    /// <summary>Global gradient-norm limit; 0 turns clipping off.</summary>
    /// <value>Default 1.0.</value>
    [Range(0.0, 1e9)]
    public double MaxGradientNorm { get; set; } = 1.0;

    /// <summary>Decoupled weight decay of AdamW.</summary>
    /// <value>Default 0.</value>
    [Range(0.0, 10.0)]
    public double WeightDecay { get; set; }

    /// <summary>Seed of torch's generator and of the data order.</summary>
    /// <value>Default 42.</value>
    public long Seed { get; set; } = 42;

    /// <summary>Optimizer steps between training-loss log lines.</summary>
    /// <value>Default 50.</value>
    [Range(1, int.MaxValue)]
    public int LogEverySteps { get; set; } = 50;

    /// <summary>Optimizer steps between evaluations; 0 evaluates at epoch ends only.</summary>
    /// <value>Default 0.</value>
    [Range(0, int.MaxValue)]
    public int EvaluateEverySteps { get; set; }

    /// <summary>Device to train on, as torch names it (<c>cpu</c>, <c>cuda</c>, <c>cuda:1</c>).</summary>
    /// <value>Default <c>cpu</c>.</value>
    [Required]
    [RegularExpression(@"^(cpu|cuda(:\d+)?|mps)$", ErrorMessage = "Device must be 'cpu', 'cuda', 'cuda:N' or 'mps'.")]
    public string Device { get; set; } = "cpu";

    /// <summary>Folder for checkpoints, or <see langword="null"/> for none.</summary>
    /// <value>Default <see langword="null"/>.</value>
    public string? CheckpointDirectory { get; set; }

    /// <summary>Optimizer steps between checkpoints when <see cref="CheckpointDirectory"/> is set.</summary>
    /// <value>Default 500.</value>
    [Range(1, int.MaxValue)]
    public int CheckpointEverySteps { get; set; } = 500;
}
