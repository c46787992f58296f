using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NicheTune.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.DependencyInjection;

/// <summary>Creates fine-tuners that start from the host's <see cref="NicheTuneOptions"/> and log through its logging.</summary>
public interface IFineTunerFactory
{
    /// <summary>Starts a plan for <paramref name="model"/> with the configured defaults and logging.</summary>
    /// <param name="model">The model to train in place.</param>
    /// <returns>The first stage of the builder.</returns>
    FineTunerBuilder For(nn.Module model);
}

internal sealed class FineTunerFactory(IOptions<NicheTuneOptions> options, ILoggerFactory? loggerFactory = null) : IFineTunerFactory
{
    public FineTunerBuilder For(nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        TorchBackend.EnsureAvailable();
        NicheTuneOptions o = options.Value;
        var settings = new PlanSettings
        {
            LearningRate = o.LearningRate,
            BatchSize = o.BatchSize,
            Epochs = o.Epochs,
            GradientAccumulationSteps = o.GradientAccumulationSteps,
            MaxGradientNorm = o.MaxGradientNorm > 0 ? o.MaxGradientNorm : null,
            Optimizer = Optimizers.AdamW(weightDecay: o.WeightDecay),
            Seed = o.Seed,
            LogEverySteps = o.LogEverySteps,
            EvaluateEverySteps = o.EvaluateEverySteps,
            Device = torch.device(o.Device),
            Checkpoints = o.CheckpointDirectory is { Length: > 0 } dir ? new CheckpointPlan(dir, o.CheckpointEverySteps, 2) : null,
            LoggerFactory = loggerFactory,
        };
        return new FineTunerBuilder(model, settings);
    }
}
