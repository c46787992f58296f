using System.Collections.Immutable;
using NicheTune.Evaluation;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Training;

/// <summary>
/// One pass of metrics over a data set: eval mode and <c>no_grad</c>, batches prefetched in order, one dispose scope per
/// batch, metrics reset before and computed after. Shared by the trainer's evaluations and by evaluation outside training.
/// </summary>
internal static class EvaluationLoop
{
    public static ImmutableDictionary<string, double> Run<TExample, TBatch>(
        nn.Module model,
        ITrainingObjective<TBatch> objective,
        IReadOnlyList<TExample> data,
        ICollator<TExample, TBatch> collator,
        IReadOnlyList<IMetric> metrics,
        string prefix,
        int batchSize,
        torch.Device device,
        int prefetch,
        CancellationToken cancellationToken)
        where TBatch : ITrainingBatch
    {
        bool wasTraining = model.training;
        model.eval();
        try
        {
            for (int i = 0; i < metrics.Count; i++)
            {
                metrics[i].Reset();
            }

            var order = new int[data.Count];
            for (int i = 0; i < order.Length; i++)
            {
                order[i] = i;
            }

            using (torch.no_grad())
            using (var batches = new BatchPrefetcher<TExample, TBatch>(data, order, batchSize, 0, collator, device, prefetch, cancellationToken))
            {
                while (batches.TryTake(out TBatch batch))
                {
                    try
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        using var scope = torch.NewDisposeScope();
                        MetricBatch output = objective.Evaluate(model, batch);
                        for (int i = 0; i < metrics.Count; i++)
                        {
                            metrics[i].Update(output);
                        }
                    }
                    finally
                    {
                        batch.Dispose();
                    }
                }
            }

            var result = ImmutableDictionary.CreateBuilder<string, double>(StringComparer.Ordinal);
            for (int i = 0; i < metrics.Count; i++)
            {
                result[prefix + metrics[i].Name] = metrics[i].Compute();
            }

            return result.ToImmutable();
        }
        finally
        {
            model.train(wasTraining);
        }
    }
}
