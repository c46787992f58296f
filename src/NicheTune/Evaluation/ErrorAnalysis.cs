using NicheTune.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Evaluation;

/// <summary>
/// Error analysis of a model on a curated evaluation set: the loss of every example (to read the worst ones), the
/// confusion matrix with per-class support / precision / recall / F1 and the most confused pairs, and metrics per
/// user-defined slice with the gap to the whole set: the basis for bias checks.
/// </summary>
/// <remarks>
/// Per-example losses are the plain cross-entropy of the objective's outputs (no label smoothing). The objective's rows
/// are grouped back to examples by position: a batch of B examples must yield a multiple of B rows, each example
/// owning an equal, consecutive share, as both built-in objectives do: one row per example for sequence classification
/// (predicted and target class are reported), T next-token rows per example for causal language modelling (the
/// example's loss is its mean over real tokens; predicted/target are <see langword="null"/>). Unlike the trainer's
/// evaluation, slice metrics read the batch's targets on the host once per batch: this is an offline tool.
/// </remarks>
public static class ErrorAnalysis
{
    /// <summary>Runs the model over <paramref name="data"/> once and collects the error report.</summary>
    /// <typeparam name="TExample">The example type.</typeparam>
    /// <typeparam name="TBatch">The batch type of the objective.</typeparam>
    /// <param name="model">The model; batches are moved to the device of its first parameter.</param>
    /// <param name="objective">An objective that reports outputs and targets (the built-ins do; <see cref="Objectives.Custom{TBatch}"/> does not).</param>
    /// <param name="data">The examples (at least one); indices in the report refer to this list.</param>
    /// <param name="collator">Turns lists of examples into batches.</param>
    /// <param name="options">Batch size, class names and slices; <see langword="null"/> for the defaults.</param>
    /// <param name="cancellationToken">Stops within one batch.</param>
    /// <returns>The report.</returns>
    /// <exception cref="ArgumentException">The data are empty, the options are invalid, or the slice function returned <see langword="null"/>.</exception>
    /// <exception cref="InvalidOperationException">The objective reports no outputs, or its rows cannot be grouped into examples.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static ErrorReport Run<TExample, TBatch>(
        nn.Module model,
        ITrainingObjective<TBatch> objective,
        IReadOnlyList<TExample> data,
        ICollator<TExample, TBatch> collator,
        ErrorAnalysisOptions? options = null,
        CancellationToken cancellationToken = default)
        where TBatch : ITrainingBatch
    {
        options ??= new ErrorAnalysisOptions();
        EvaluationArguments.Check(model, objective, data, collator, options.BatchSize);
        TorchBackend.EnsureAvailable();
        using var run = new ErrorAnalysisRun(data.Count, options);
        Device device = EvaluationArguments.DeviceOf(model);
        bool wasTraining = model.training;
        model.eval();
        try
        {
            var order = new int[data.Count];
            for (int i = 0; i < order.Length; i++)
            {
                order[i] = i;
            }

            int first = 0;
            using (torch.no_grad())
            using (var batches = new BatchPrefetcher<TExample, TBatch>(data, order, options.BatchSize, 0, collator, device, 2, cancellationToken))
            {
                while (batches.TryTake(out TBatch batch))
                {
                    try
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        using var scope = torch.NewDisposeScope();
                        MetricBatch output = objective.Evaluate(model, batch);
                        run.Add(output, checked((int)batch.ExampleCount), first, objective.Name);
                        first += checked((int)batch.ExampleCount);
                    }
                    finally
                    {
                        batch.Dispose();
                    }
                }
            }

            return run.Finish();
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    /// <summary>Runs the model over tokenised examples, batched by a default <see cref="TokenCollator"/>.</summary>
    /// <param name="model">The model.</param>
    /// <param name="objective">A token objective, e.g. <see cref="Objectives.SequenceClassification"/>.</param>
    /// <param name="data">The examples (at least one).</param>
    /// <param name="options">Batch size, class names and slices; <see langword="null"/> for the defaults.</param>
    /// <param name="cancellationToken">Stops within one batch.</param>
    /// <returns>The report.</returns>
    /// <exception cref="ArgumentException">The data are empty, the options are invalid, or the slice function returned <see langword="null"/>.</exception>
    /// <exception cref="InvalidOperationException">The objective reports no outputs, or its rows cannot be grouped into examples.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static ErrorReport Run(
        nn.Module model,
        ITrainingObjective<TokenBatch> objective,
        IReadOnlyList<TokenExample> data,
        ErrorAnalysisOptions? options = null,
        CancellationToken cancellationToken = default)
        => Run(model, objective, data, new TokenCollator(), options, cancellationToken);
}

/// <summary>The state of one error-analysis pass: per-example tensors, the confusion counts and the slice metrics.</summary>
internal sealed class ErrorAnalysisRun : IDisposable
{
    private readonly ErrorAnalysisOptions _options;
    private readonly string[] _sliceNames;
    private readonly int[]? _sliceOfExample;
    private readonly string[]? _sliceLabelOfExample;
    private readonly IMetric[] _overall;
    private readonly IMetric[][] _perSlice;
    private readonly List<Tensor> _lossSums = [];
    private readonly List<Tensor> _targetCounts = [];
    private readonly List<Tensor> _correctCounts = [];
    private readonly List<Tensor> _predicted = [];
    private readonly List<Tensor> _targets = [];
    private readonly ConfusionAccumulator _confusion = new(fullMatrix: true, "error analysis");
    private readonly HashSet<IMetric> _created = new(ReferenceEqualityComparer.Instance);
    private bool _oneRowPerExample = true;
    private int _classes;

    public ErrorAnalysisRun(int exampleCount, ErrorAnalysisOptions options)
    {
        _options = options;
        if (options.SliceMetrics is null)
        {
            throw new ArgumentException("ErrorAnalysisOptions.SliceMetrics is null; pass an empty list for no slice metrics.", nameof(options));
        }

        _overall = CreateMetrics(options.SliceMetrics);
        if (options.SliceOf is { } sliceOf)
        {
            _sliceLabelOfExample = new string[exampleCount];
            for (int i = 0; i < exampleCount; i++)
            {
                _sliceLabelOfExample[i] = sliceOf(i) ?? throw new ArgumentException(
                    $"ErrorAnalysisOptions.SliceOf returned null for example {i}; return a label for every example (e.g. \"unknown\").", nameof(options));
            }

            _sliceNames = [.. _sliceLabelOfExample.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
            var id = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int s = 0; s < _sliceNames.Length; s++)
            {
                id[_sliceNames[s]] = s;
            }

            _sliceOfExample = [.. _sliceLabelOfExample.Select(label => id[label])];
        }
        else
        {
            _sliceNames = [];
        }

        _perSlice = [.. _sliceNames.Select(_ => CreateMetrics(options.SliceMetrics))];
    }

    public void Add(in MetricBatch batch, int exampleCount, int firstExample, string objective)
    {
        if (batch.Outputs is not { } outputs || batch.Targets is not { } targets)
        {
            throw new InvalidOperationException(
                $"Error analysis needs the objective's outputs and targets; objective '{objective}' reports only a loss. Use a built-in objective or return outputs from Evaluate.");
        }

        long rows = outputs.shape[0];
        if (outputs.dim() != 2 || targets.dim() != 1 || targets.shape[0] != rows || rows % exampleCount != 0)
        {
            throw new InvalidOperationException(
                $"Error analysis groups the objective's output rows into examples, but objective '{objective}' returned outputs [{string.Join(", ", outputs.shape)}] " +
                $"and targets [{string.Join(", ", targets.shape)}] for {exampleCount} examples; it needs outputs [N, C] and targets [N] with N a multiple of the example count, example by example.");
        }

        int rowsPerExample = (int)(rows / exampleCount);
        CheckClasses(checked((int)outputs.shape[1]));

        Tensor rowLoss = nn.functional.cross_entropy(outputs.to(ScalarType.Float32), targets, ignore_index: batch.IgnoreIndex, reduction: nn.Reduction.None);
        Tensor valid = Scalars.NotEqual(targets, batch.IgnoreIndex);
        Tensor predicted = outputs.argmax(-1);
        Tensor correct = predicted.eq(targets).logical_and(valid);
        _lossSums.Add(rowLoss.to(ScalarType.Float64).view(exampleCount, rowsPerExample).sum(1).DetachFromDisposeScope());
        _targetCounts.Add(valid.to(ScalarType.Int64).view(exampleCount, rowsPerExample).sum(1).DetachFromDisposeScope());
        _correctCounts.Add(correct.to(ScalarType.Int64).view(exampleCount, rowsPerExample).sum(1).DetachFromDisposeScope());
        if (rowsPerExample == 1)
        {
            _predicted.Add(predicted.DetachFromDisposeScope());
            _targets.Add(targets.clone().DetachFromDisposeScope());
        }
        else
        {
            _oneRowPerExample = false;
        }

        if (_classes <= ConfusionAccumulator.MaxMatrixClasses)
        {
            _confusion.Update(outputs, targets, batch.IgnoreIndex);
        }

        if (_overall.Length > 0)
        {
            UpdateSliceMetrics(batch.IgnoreIndex, outputs, targets, rowLoss, exampleCount, rowsPerExample, firstExample);
        }
    }

    public ErrorReport Finish()
    {
        using var scope = torch.NewDisposeScope();
        double[] lossSums = ReadDouble(_lossSums);
        long[] targetCounts = ReadLong(_targetCounts);
        long[] correctCounts = ReadLong(_correctCounts);
        long[]? predicted = _oneRowPerExample ? ReadLong(_predicted) : null;
        long[]? targets = _oneRowPerExample ? ReadLong(_targets) : null;

        var examples = new ExampleResult[lossSums.Length];
        double lossTotal = 0;
        long targetTotal = 0, correctTotal = 0;
        for (int i = 0; i < examples.Length; i++)
        {
            bool counted = targetCounts[i] > 0;
            examples[i] = new ExampleResult(
                i,
                counted ? lossSums[i] / targetCounts[i] : double.NaN,
                targetCounts[i],
                correctCounts[i],
                predicted is null ? null : (int)predicted[i],
                targets is null || !counted ? null : (int)targets[i],
                _sliceLabelOfExample?[i]);
            lossTotal += lossSums[i];
            targetTotal += targetCounts[i];
            correctTotal += correctCounts[i];
        }

        ClassificationReport? classes = _confusion.IsEmpty ? null : new ClassificationReport(_confusion.ReadMatrix(), _classes, _options.ClassNames);
        Dictionary<string, double> overall = Compute(_overall);
        var slices = new SliceResult[_sliceNames.Length];
        for (int s = 0; s < slices.Length; s++)
        {
            Dictionary<string, double> values = Compute(_perSlice[s]);
            var gaps = values.ToDictionary(kv => kv.Key, kv => kv.Value - overall[kv.Key], StringComparer.Ordinal);
            slices[s] = new SliceResult(_sliceNames[s], _sliceOfExample!.Count(x => x == s), values, gaps);
        }

        return new ErrorReport(
            examples,
            targetTotal == 0 ? double.NaN : lossTotal / targetTotal,
            targetTotal == 0 ? double.NaN : correctTotal / (double)targetTotal,
            classes,
            overall,
            slices);
    }

    public void Dispose()
    {
        foreach (List<Tensor> list in (List<Tensor>[])[_lossSums, _targetCounts, _correctCounts, _predicted, _targets])
        {
            list.ForEach(static t => t.Dispose());
            list.Clear();
        }

        _confusion.Dispose();
    }

    private IMetric[] CreateMetrics(IReadOnlyList<Func<IMetric>> factories)
    {
        var metrics = new IMetric[factories.Count];
        for (int i = 0; i < metrics.Length; i++)
        {
            Func<IMetric> factory = factories[i] ?? throw new ArgumentException($"ErrorAnalysisOptions.SliceMetrics[{i}] is null; pass a factory such as Metrics.Accuracy.", "options");
            metrics[i] = factory() ?? throw new ArgumentException($"ErrorAnalysisOptions.SliceMetrics[{i}] returned null; each factory must create a new metric.", "options");
            if (!_created.Add(metrics[i]))
            {
                throw new ArgumentException(
                    $"ErrorAnalysisOptions.SliceMetrics[{i}] returned the same metric instance twice; the whole set and every slice need their own, so each call must create a new metric (e.g. Metrics.Accuracy, not () => shared).", "options");
            }

            metrics[i].Reset();
        }

        EvaluationArguments.CheckNames(metrics, "options");
        return metrics;
    }

    private static Dictionary<string, double> Compute(IMetric[] metrics)
    {
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (IMetric metric in metrics)
        {
            values[metric.Name] = metric.Compute();
        }

        return values;
    }

    private static double[] ReadDouble(List<Tensor> parts) => parts.Count == 0 ? [] : torch.cat(parts).cpu().data<double>().ToArray();

    private static long[] ReadLong(List<Tensor> parts) => parts.Count == 0 ? [] : torch.cat(parts).cpu().data<long>().ToArray();

    private void CheckClasses(int classes)
    {
        if (_classes == 0)
        {
            _classes = classes;
            if (_options.ClassNames is { } names && names.Count != classes)
            {
                throw new ArgumentException(
                    $"ErrorAnalysisOptions.ClassNames has {names.Count} names but the model scores {classes} classes; pass one name per output column.", "options");
            }
        }
    }

    private void UpdateSliceMetrics(long ignoreIndex, Tensor outputs, Tensor targets, Tensor rowLoss, int exampleCount, int rowsPerExample, int firstExample)
    {
        // Metrics weight batches by a host-side count, so the targets come to the host once per batch (the copy is
        // freed with the batch's dispose scope; disposing it here could free the batch's own tensor on the CPU).
        long[] hostTargets = targets.cpu().contiguous().data<long>().ToArray();

        long valid = hostTargets.LongCount(t => t != ignoreIndex);
        if (valid > 0)
        {
            var whole = new MetricBatch(Scalars.DividedBy(rowLoss.sum(), valid), valid, outputs, targets, ignoreIndex);
            foreach (IMetric metric in _overall)
            {
                metric.Update(whole);
            }
        }

        if (_sliceOfExample is null)
        {
            return;
        }

        var rowsBySlice = new Dictionary<int, List<long>>();
        for (int e = 0; e < exampleCount; e++)
        {
            int slice = _sliceOfExample[firstExample + e];
            if (!rowsBySlice.TryGetValue(slice, out List<long>? rows))
            {
                rowsBySlice[slice] = rows = [];
            }

            for (int r = 0; r < rowsPerExample; r++)
            {
                rows.Add(((long)e * rowsPerExample) + r);
            }
        }

        foreach ((int slice, List<long> rows) in rowsBySlice)
        {
            long sliceValid = rows.LongCount(r => hostTargets[r] != ignoreIndex);
            if (sliceValid == 0)
            {
                continue;
            }

            Tensor index = torch.tensor(rows.ToArray(), device: outputs.device);
            var part = new MetricBatch(
                Scalars.DividedBy(rowLoss.index_select(0, index).sum(), sliceValid),
                sliceValid,
                outputs.index_select(0, index),
                targets.index_select(0, index),
                ignoreIndex);
            foreach (IMetric metric in _perSlice[slice])
            {
                metric.Update(part);
            }
        }
    }
}
