using NicheTune.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune;

/// <summary>The entry point: <c>FineTuner.For(model).WithObjective(…)….Fit(train, validation)</c>.</summary>
public static class FineTuner
{
    /// <summary>Starts a fine-tuning plan for <paramref name="model"/> (any TorchSharp module).</summary>
    /// <param name="model">The model to train; it is trained in place.</param>
    /// <returns>A builder; pick the objective first with <see cref="FineTunerBuilder.WithObjective{TBatch}"/>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="model"/> is <see langword="null"/>.</exception>
    /// <exception cref="NativeBackendException">libtorch cannot be loaded on this machine.</exception>
    public static FineTunerBuilder For(nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        TorchBackend.EnsureAvailable();
        return new FineTunerBuilder(model, new PlanSettings());
    }
}

/// <summary>The first stage of the fluent builder: choose what the model is trained to do.</summary>
public sealed class FineTunerBuilder
{
    private readonly nn.Module _model;
    private readonly PlanSettings _settings;

    internal FineTunerBuilder(nn.Module model, PlanSettings settings)
    {
        _model = model;
        _settings = settings;
    }

    /// <summary>Sets the training objective; the batch type follows from it.</summary>
    /// <typeparam name="TBatch">The batch type the objective consumes.</typeparam>
    /// <param name="objective">A built-in from <see cref="Objectives"/> or your own implementation.</param>
    /// <returns>The builder for every other setting.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="objective"/> is <see langword="null"/>.</exception>
    public FineTunerBuilder<TBatch> WithObjective<TBatch>(ITrainingObjective<TBatch> objective)
        where TBatch : ITrainingBatch
    {
        ArgumentNullException.ThrowIfNull(objective);
        return new FineTunerBuilder<TBatch>(_model, objective, _settings);
    }
}
