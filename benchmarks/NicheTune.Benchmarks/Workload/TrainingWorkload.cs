using NicheTune.Models;
using NicheTune.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Benchmarks.Workload;

/// <summary>
/// One model, its initial weights and fixed random data, shared by the raw TorchSharp loop and the Trainer so that both
/// start every measurement from the same weights and see the same batches.
/// </summary>
internal sealed class TrainingWorkload : IDisposable
{
    public const double LearningRate = 1e-4;
    public const double MaxGradientNorm = 1.0;

    // LogEvery's interval: far beyond any measured run, so no step of the timed part reads the loss on the host.
    public const int NoLogging = 1_000_000;

    private readonly Dictionary<string, Tensor> _initial;

    private TrainingWorkload(ModelShape shape, Gpt2LMHeadModel model, Dictionary<string, Tensor> initial, TokenExample[] examples, RawBatch[] batches)
    {
        Shape = shape;
        Model = model;
        _initial = initial;
        Examples = examples;
        Batches = batches;
    }

    public ModelShape Shape { get; }

    public Gpt2LMHeadModel Model { get; }

    /// <summary>Batches × batch size examples of <see cref="ModelShape.ContextLength"/> tokens each, in batch order.</summary>
    public TokenExample[] Examples { get; }

    /// <summary>The same examples as hand-made tensors for the raw loop.</summary>
    public RawBatch[] Batches { get; }

    public static TrainingWorkload Create(ModelShape shape, int batches, int seed = 1234)
    {
        torch.manual_seed(seed);
        var model = new Gpt2LMHeadModel(shape.ToConfig());
        model.train();
        var initial = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using (torch.no_grad())
        {
            foreach ((string name, Tensor tensor) in model.state_dict())
            {
                initial[name] = tensor.detach().clone();
            }
        }

        TokenExample[] examples = RandomExamples(shape, batches * shape.BatchSize, seed);
        var raw = new RawBatch[batches];
        for (int b = 0; b < batches; b++)
        {
            raw[b] = RawBatch.Create(examples.AsSpan(b * shape.BatchSize, shape.BatchSize));
        }

        return new TrainingWorkload(shape, model, initial, examples, raw);
    }

    public static TokenExample[] RandomExamples(ModelShape shape, int count, int seed)
    {
        var random = new Random(seed);
        var examples = new TokenExample[count];
        for (int i = 0; i < count; i++)
        {
            var ids = new int[shape.TokensPerExample];
            for (int t = 0; t < ids.Length; t++)
            {
                ids[t] = random.Next(shape.VocabularySize);
            }

            examples[i] = new TokenExample(ids);
        }

        return examples;
    }

    /// <summary>Puts the initial weights back (parameters and buffers), so every measurement starts from the same point.</summary>
    public void ResetWeights()
    {
        using (torch.no_grad())
        {
            Model.load_state_dict(_initial);
        }

        Model.train();
    }

    /// <summary>
    /// The Trainer configured like the raw loop: causal LM, AdamW (weight decay 0), lr 1e-4, clipping at 1.0, no shuffle.
    /// <paramref name="fused"/> false computes the loss as the raw loop does (full logits), which isolates the library's
    /// own overhead; true is the library's default (fused, chunked output layer + loss). <paramref name="optimizer"/> null is
    /// the library's default AdamW (blockwise); the overhead guard passes TorchSharp's own loop to compare like with like.
    /// </summary>
    public FineTuneResult FitTrainer(int steps, ITrainingCallback? callback, bool fused = false, int logEvery = NoLogging, Precision precision = Precision.Float32, OptimizerSpec? optimizer = null)
    {
        var builder = Plan(Model, Shape.BatchSize, fused, optimizer)
            .WithPrecision(precision)
            .WithMaxSteps(steps)
            .ShuffleTrainingData(false)
            .LogEvery(logEvery);
        if (callback is not null)
        {
            builder.WithCallback(callback);
        }

        return builder.Fit(Examples, null, new TokenCollator());
    }

    /// <summary>The benchmarks' training plan: next-token loss, the benchmark optimizer, its learning rate and clipping.</summary>
    public static FineTunerBuilder<TokenBatch> Plan(nn.Module model, int batchSize, bool fuseOutputLayer = true, OptimizerSpec? optimizer = null) =>
        FineTuner.For(model)
            .WithObjective(Objectives.CausalLanguageModeling(fuseOutputLayer: fuseOutputLayer))
            .WithOptimizer(optimizer ?? BenchmarkOptimizer())
            .WithLearningRate(LearningRate)
            .WithBatchSize(batchSize)
            .ClipGradientNorm(MaxGradientNorm);

    /// <summary>
    /// The optimizer the benchmarks train with: <c>NICHETUNE_BENCH_OPTIMIZER=flat</c> the flat-buffer AdamW (internal: its
    /// peak memory grows), <c>=torchsharp</c> TorchSharp's own AdamW loop, <c>=blockwise</c> the blockwise AdamW; unset, the library's default
    /// (the blockwise AdamW; docs/performance.md).
    /// </summary>
    public static OptimizerSpec BenchmarkOptimizer() => Environment.GetEnvironmentVariable("NICHETUNE_BENCH_OPTIMIZER") switch
    {
        "flat" => Optimizers.FlatAdamW(),
        "torchsharp" => Optimizers.TorchSharpAdamW(),
        "blockwise" => Optimizers.BlockwiseAdamW(),
        null or "" or "default" => Optimizers.AdamW(),
        string other => throw new ArgumentException($"NICHETUNE_BENCH_OPTIMIZER='{other}' is not an optimizer the benchmarks know; use flat, torchsharp, blockwise or default."),
    };

    /// <summary>The largest absolute difference between the model's parameters and <paramref name="snapshot"/>.</summary>
    public double MaxAbsoluteDifference(Dictionary<string, Tensor> snapshot)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        double max = 0;
        foreach ((string name, Tensor tensor) in Model.state_dict())
        {
            max = Math.Max(max, (tensor - snapshot[name]).abs().max().item<float>());
        }

        return max;
    }

    public Dictionary<string, Tensor> SnapshotWeights()
    {
        var copy = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using var noGrad = torch.no_grad();
        foreach ((string name, Tensor tensor) in Model.state_dict())
        {
            copy[name] = tensor.detach().clone();
        }

        return copy;
    }

    public static void Dispose(Dictionary<string, Tensor> tensors)
    {
        foreach (Tensor tensor in tensors.Values)
        {
            tensor.Dispose();
        }
    }

    public void Dispose()
    {
        foreach (RawBatch batch in Batches)
        {
            batch.Dispose();
        }

        Dispose(_initial);
        Model.Dispose();
    }
}
