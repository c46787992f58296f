using NicheTune.Freezing;
using NicheTune.Scheduling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NicheTune.Regularization;

/// <summary>
/// Something that keeps a fine-tuned model general: a penalty on the loss, a change to the model at the start, an
/// average of the weights after each step, a learning-rate schedule adjustment. Every hook has a default that does
/// nothing, so a regulariser implements only what it needs. Built-ins come from <see cref="RegularizationBuilder"/>
/// (<c>.Regularize(r =&gt; r.L2SP(0.01).Ema(0.999))</c>); a user's own implementation is added with <see cref="RegularizationBuilder.Add"/>.
/// </summary>
public interface IRegularizer
{
    /// <summary>A short name for logs, reports and checkpoint keys (unique within a plan).</summary>
    string Name { get; }

    /// <summary>Checks the regulariser against the model; returns one message per problem.</summary>
    /// <param name="map">The model's layer map.</param>
    /// <returns>Problems, each saying what is wrong and what to do.</returns>
    IEnumerable<string> Validate(LayerMap map) => [];

    /// <summary>Called once before the first step (after freezing is applied and before a resume loads state).</summary>
    /// <param name="context">The model and its trainable parameters.</param>
    void OnTrainingStart(RegularizationContext context)
    {
    }

    /// <summary>A penalty added to every micro-batch's loss, computed inside the step's dispose scope; <see langword="null"/> for none.</summary>
    /// <param name="context">The model and its trainable parameters.</param>
    /// <returns>A scalar tensor with a gradient, or <see langword="null"/>.</returns>
    Tensor? Penalty(RegularizationContext context) => null;

    /// <summary>Called after each applied optimizer step (averaging). Runs under <c>no_grad</c>.</summary>
    /// <param name="context">The model and its trainable parameters.</param>
    /// <param name="step">Optimizer steps taken, from 1.</param>
    /// <param name="totalSteps">Planned optimizer steps.</param>
    void OnOptimizerStep(RegularizationContext context, long step, long totalSteps)
    {
    }

    /// <summary>Wraps the run's learning-rate schedule (SWA anneals to a constant rate); returns it unchanged by default.</summary>
    /// <param name="schedule">The plan's schedule.</param>
    /// <returns>The schedule to use.</returns>
    ILearningRateSchedule AdjustSchedule(ILearningRateSchedule schedule) => schedule;

    /// <summary>Called once when training ends normally. Returns <see langword="true"/> when it replaced the model's weights (SWA, EMA), so the final evaluation runs on them.</summary>
    /// <param name="context">The model and its trainable parameters.</param>
    /// <returns>Whether the weights were replaced.</returns>
    bool OnTrainingEnd(RegularizationContext context) => false;

    /// <summary>Adds the regulariser's state to a checkpoint (tensors are copied by the caller before the next step).</summary>
    /// <param name="tensors">Tensor state, by key.</param>
    /// <param name="scalars">Scalar state, by key.</param>
    void SaveState(IDictionary<string, Tensor> tensors, IDictionary<string, double> scalars)
    {
    }

    /// <summary>Restores the state written by <see cref="SaveState"/>.</summary>
    /// <param name="tensors">Tensor state, by key.</param>
    /// <param name="scalars">Scalar state, by key.</param>
    void LoadState(IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, double> scalars)
    {
    }
}

/// <summary>What a regulariser sees of the run: the model, its layer map, the parameters trained now, the device.</summary>
public sealed class RegularizationContext
{
    private readonly Func<IReadOnlyList<(string Name, Parameter Parameter)>> _trainable;
    private readonly Action<int>? _forwardTrainingData;

    internal RegularizationContext(nn.Module model, LayerMap map, Device device, Func<IReadOnlyList<(string Name, Parameter Parameter)>> trainable, Action<int>? forwardTrainingData)
    {
        Model = model;
        Map = map;
        Device = device;
        _trainable = trainable;
        _forwardTrainingData = forwardTrainingData;
    }

    /// <summary>The model being trained.</summary>
    public nn.Module Model { get; }

    /// <summary>The model's layer map.</summary>
    public LayerMap Map { get; }

    /// <summary>The device the model is on.</summary>
    public Device Device { get; }

    /// <summary>Optimizer steps per epoch of the run (to turn an epoch into a step).</summary>
    public long StepsPerEpoch { get; internal init; }

    /// <summary>The parameters being trained now, by name (changes with gradual unfreezing).</summary>
    public IReadOnlyList<(string Name, Parameter Parameter)> TrainableParameters => _trainable();

    /// <summary>
    /// Runs the model in training mode, without gradients, over up to <paramref name="maxBatches"/> training batches —
    /// what recomputing batch-norm statistics after weight averaging needs. A no-op outside training.
    /// </summary>
    /// <param name="maxBatches">Batches to run; 0 or less means one full epoch.</param>
    public void ForwardTrainingData(int maxBatches) => _forwardTrainingData?.Invoke(maxBatches);
}
