using NicheTune.Evaluation;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Training;

/// <summary>
/// What the model is trained to do: the loss of a batch, and what evaluation metrics see. Built-ins come from
/// <see cref="Objectives"/>; a user's own implementation plugs in the same way.
/// </summary>
/// <typeparam name="TBatch">The batch type the objective consumes.</typeparam>
public interface ITrainingObjective<in TBatch>
    where TBatch : ITrainingBatch
{
    /// <summary>A short name for logs and reports, e.g. <c>causal-lm</c>.</summary>
    string Name { get; }

    /// <summary>Checks that the objective can drive <paramref name="model"/>; returns one message per problem (none when fine).</summary>
    /// <param name="model">The model the plan trains.</param>
    /// <returns>Problems, each saying what is wrong and what to do.</returns>
    IEnumerable<string> Validate(nn.Module model);

    /// <summary>The scalar loss to minimise for <paramref name="batch"/>; runs inside the trainer's dispose scope.</summary>
    /// <param name="model">The model, in training mode.</param>
    /// <param name="batch">The batch, already on the model's device.</param>
    /// <returns>A scalar tensor with a gradient.</returns>
    Tensor Loss(nn.Module model, TBatch batch);

    /// <summary>Runs the model on <paramref name="batch"/> for evaluation (under <c>no_grad</c>, eval mode) and returns what metrics consume.</summary>
    /// <param name="model">The model, in evaluation mode.</param>
    /// <param name="batch">The batch, already on the model's device.</param>
    /// <returns>The batch's loss, element count and, where defined, outputs and targets.</returns>
    MetricBatch Evaluate(nn.Module model, TBatch batch);
}
