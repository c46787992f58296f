using System.Diagnostics;
using System.Globalization;
using NicheTune.Benchmarks.Workload;
using NicheTune.Reporting;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NicheTune.Benchmarks.Guard;

/// <summary>
/// Where a training step's time goes (<c>guard --only anatomy</c>): the raw TorchSharp step split into body forward,
/// output layer + loss, backward, clipping, optimizer update and zeroing, for the whole model trainable, the embeddings
/// and bottom half frozen, and only <c>lm_head</c> trainable. It reports; it has no limit. The numbers guide the
/// speed work (docs/performance.md) and explain the freezing ratios.
/// </summary>
internal static class StepAnatomy
{
    private static readonly string[] Phases = ["body forward", "head + loss", "backward", "clip", "optimizer", "zero grad", "total"];

    private static long[] ChunkSizes => (Environment.GetEnvironmentVariable("NICHETUNE_ANATOMY_CHUNKS") ?? "8")
        .Split(',', StringSplitOptions.RemoveEmptyEntries).Select(c => long.Parse(c, CultureInfo.InvariantCulture) << 20).ToArray();

    public static void Run(int steps, TextWriter output)
    {
        // NICHETUNE_ANATOMY_HEAD=1: the output layer + loss alone; NICHETUNE_ANATOMY_CHUNKS=2,4,8 (MiB elements) picks the chunk sizes.
        if (Environment.GetEnvironmentVariable("NICHETUNE_ANATOMY_LEAK") is { } leak)
        {
            Leak(leak, output);
            return;
        }

        if (Environment.GetEnvironmentVariable("NICHETUNE_ANATOMY_LAYOUT") == "1")
        {
            Layouts(steps, output);
            return;
        }

        if (Environment.GetEnvironmentVariable("NICHETUNE_ANATOMY_HEAD") == "1")
        {
            Head(steps, output);
            return;
        }

        output.WriteLine($"== step anatomy: raw TorchSharp step by phase (median of {steps} steps after one warm-up)");
        if (Environment.GetEnvironmentVariable("NICHETUNE_ANATOMY_COMPARE") is { } svg)
        {
            Compare(steps, output, svg);
            return;
        }

        foreach (ModelShape shape in new[] { ModelShape.Benchmark, FreezeGuard.Wide })
        {
            output.WriteLine($"   {shape.Describe()}");
            using var workload = TrainingWorkload.Create(shape, steps + 1);
            int half = shape.LayerCount / 2;
            Measure(workload, "full", _ => true, steps, output);
            foreach (long chunk in ChunkSizes)
            {
                Measure(workload, $"full fused {chunk >> 20}M", _ => true, steps, output, chunk);
            }

            Measure(workload, $"full fused {ChunkSizes[^1] >> 20}M blockwise", _ => true, steps, output, ChunkSizes[^1], AnatomyOptimizer.Blockwise);
            Func<string, bool> frozenBottom = name => !name.StartsWith("transformer.w", StringComparison.Ordinal) && !Enumerable.Range(0, half).Any(i => name.StartsWith($"transformer.h.{i}.", StringComparison.Ordinal));
            Func<string, bool> headOnly = name => name.StartsWith("lm_head", StringComparison.Ordinal);
            Measure(workload, $"frozen emb+{half}", frozenBottom, steps, output);
            Measure(workload, "lm_head only", headOnly, steps, output);
            // The library's own step (fused output layer, blockwise AdamW) with the same freezing: what the Trainer's
            // freezing ratios should come to without the Trainer.
            Measure(workload, $"frozen emb+{half} fused blockwise", frozenBottom, steps, output, FusedDefault, AnatomyOptimizer.Blockwise);
            Measure(workload, "lm_head only fused blockwise", headOnly, steps, output, FusedDefault, AnatomyOptimizer.Blockwise);
        }
    }

    private static Dictionary<string, double> Measure(TrainingWorkload workload, string label, Func<string, bool> trainable, int steps, TextWriter output, long fusedChunk = 0, AnatomyOptimizer optimizerKind = AnatomyOptimizer.TorchSharp, ScalarType? matmul = null, bool lowBlocks = true)
    {
        workload.ResetWeights();
        var model = workload.Model;
        var train = new List<Parameter>();
        foreach ((string name, Parameter p) in model.named_parameters())
        {
            bool on = trainable(name);
            p.requires_grad = on;
            if (on)
            {
                train.Add(p);
            }
        }

        long vocabulary = model.Config.VocabularySize;
        AdamW.ParamGroup[] groups = [new AdamW.ParamGroup(train, TrainingWorkload.LearningRate, 0.9, 0.999, 1e-8, 0.0)];
        using OptimizerHelper optimizer = optimizerKind switch
        {
            AnatomyOptimizer.Flat => new NicheTune.Training.FlatAdamW(groups, TrainingWorkload.LearningRate, 0.9, 0.999, 1e-8, 0.0),
            AnatomyOptimizer.Blockwise => new NicheTune.Training.Blockwise.AdamW(groups, TrainingWorkload.LearningRate, 0.9, 0.999, 1e-8, 0.0),
            _ => torch.optim.AdamW(groups, TrainingWorkload.LearningRate, 0.9, 0.999, 1e-8, 0.0),
        };
        var times = Phases.ToDictionary(p => p, _ => new List<double>());
        var clock = new Stopwatch();
        for (int i = 0; i <= steps; i++)
        {
            RawBatch batch = workload.Batches[i % workload.Batches.Length];
            double[] t = new double[Phases.Length];
            using (var scope = torch.NewDisposeScope())
            {
                clock.Restart();
                Tensor hidden;
                Tensor loss;
                using (NicheTune.Training.MixedPrecision.Enter(lowBlocks ? matmul : null))
                {
                    hidden = model.HiddenStates(batch.InputIds);
                    t[0] = clock.Elapsed.TotalMilliseconds;
                    loss = fusedChunk > 0
                        ? NicheTune.Training.FusedLinearCrossEntropy.Compute(hidden.reshape(-1, hidden.shape[^1]), model.OutputWeight, null, batch.Targets.view(-1), 0.0, chunkElements: fusedChunk, matmulType: matmul)
                        : nn.functional.cross_entropy(nn.functional.linear(hidden, model.OutputWeight).view(-1, vocabulary), batch.Targets.view(-1), ignore_index: -100);
                }

                t[1] = clock.Elapsed.TotalMilliseconds;
                loss.backward();
                t[2] = clock.Elapsed.TotalMilliseconds;
                torch.nn.utils.clip_grad_norm_(train, TrainingWorkload.MaxGradientNorm);
                t[3] = clock.Elapsed.TotalMilliseconds;
                optimizer.step();
                t[4] = clock.Elapsed.TotalMilliseconds;
                optimizer.zero_grad();
                t[5] = clock.Elapsed.TotalMilliseconds;
            }

            t[6] = clock.Elapsed.TotalMilliseconds;
            if (i == 0)
            {
                continue;
            }

            for (int k = Phases.Length - 1; k > 0; k--)
            {
                times[Phases[k]].Add(k == Phases.Length - 1 ? t[k] : t[k] - t[k - 1]);
            }

            times[Phases[0]].Add(t[0]);
        }

        foreach (var p in model.parameters())
        {
            p.requires_grad = true;
        }

        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"   {label,-24} {string.Join("  ", Phases.Select(p => $"{p} {Statistics.Median([.. times[p]]),6:F0}"))} ms"));
        return Phases.ToDictionary(p => p, p => Statistics.Median([.. times[p]]));
    }

    // NICHETUNE_ANATOMY_COMPARE=FILE.svg: the benchmark model's step by phase before (the naive step: plain output layer,
    // TorchSharp's AdamW) and after (fused output layer with TorchSharp's AdamW, then with the blockwise AdamW that is
    // the default; bf16 products), interleaved over rounds,
    // written as a stacked-bar chart for docs/performance.md.
    private static void Compare(int steps, TextWriter output, string svgPath)
    {
        var arms = new (string Label, long Chunk, AnatomyOptimizer Optimizer, ScalarType? Matmul, bool LowBlocks)[]
        {
            ("naive", 0, AnatomyOptimizer.TorchSharp, null, false),
            ("fp32, TorchSharp AdamW", FusedDefault, AnatomyOptimizer.TorchSharp, null, false),
            ("NicheTune fp32", FusedDefault, AnatomyOptimizer.Blockwise, null, false),
            ("bf16 head only", FusedDefault, AnatomyOptimizer.Blockwise, ScalarType.BFloat16, false),
            ("NicheTune bf16", FusedDefault, AnatomyOptimizer.Blockwise, ScalarType.BFloat16, true),
        };
        output.WriteLine($"   {ModelShape.Benchmark.Describe()}");
        using var workload = TrainingWorkload.Create(ModelShape.Benchmark, steps + 1);
        var results = arms.ToDictionary(a => a.Label, _ => new List<Dictionary<string, double>>());
        // The naive arm runs first, before the allocator tuning that the trainer applies (it is process-wide and cannot be
        // undone); the other arms then alternate over rounds with it in effect, as in a NicheTune run.
        for (int round = 0; round < 2; round++)
        {
            results["naive"].Add(Measure(workload, "naive", _ => true, steps, output));
        }

        output.WriteLine($"   allocator tuning: {(NicheTune.Training.NativeAllocator.RetainFreedMemory() ? "on" : "off")}");
        for (int round = 0; round < 2; round++)
        {
            foreach (var arm in (round % 2 == 0 ? arms : arms.Reverse()).Where(a => a.Label != "naive"))
            {
                results[arm.Label].Add(Measure(workload, arm.Label, _ => true, steps, output, arm.Chunk, arm.Optimizer, arm.Matmul, arm.LowBlocks));
            }
        }

        var bars = arms.Select(a => (a.Label, Phases.SkipLast(1).Select(p => (p, results[a.Label].Average(r => r[p]))).ToArray())).ToArray();
        File.WriteAllText(svgPath, SvgChart.StackedBars("Where a training step's time goes (benchmark model, ms)", bars));
        output.WriteLine($"   wrote {svgPath}");
    }

    // NICHETUNE_ANATOMY_LAYOUT=1: the fused loss's three products for one 333-row chunk of the benchmark head, in the
    // layouts libtorch can be asked for (transposed views vs contiguous copies), fp32 and bf16, interleaved over rounds.
    private static void Layouts(int rounds, TextWriter output)
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(5);
        const long rows = 333, width = 256, vocabulary = 50257;
        var arms = new List<(string Name, Action Run)>();
        foreach (ScalarType type in new[] { ScalarType.Float32, ScalarType.BFloat16 })
        {
            string t = type == ScalarType.Float32 ? "fp32" : "bf16";
            Tensor h = torch.randn(rows, width).to(type);
            Tensor w = (torch.randn(vocabulary, width) * 0.02).to(type);
            Tensor wT = w.t().contiguous();
            Tensor g = (torch.randn(rows, vocabulary) * 1e-4).to(type);
            Tensor gT = g.t().contiguous();
            Tensor z = torch.empty(rows, vocabulary, dtype: type);
            Tensor dw = torch.empty(vocabulary, width, dtype: type);
            Tensor dwT = torch.empty(width, vocabulary, dtype: type);
            Tensor dh = torch.empty(rows, width, dtype: type);
            arms.Add(($"{t} logits  h·(W view)ᵀ", () => z.addmm_(h, w.t(), beta: 0, alpha: 1)));
            arms.Add(($"{t} logits  h·Wᵀ contiguous", () => z.addmm_(h, wT, beta: 0, alpha: 1)));
            arms.Add(($"{t} ∂h      G·W", () => dh.addmm_(g, w, beta: 0, alpha: 1)));
            arms.Add(($"{t} ∂h      G·(Wᵀ)ᵀ view", () => dh.addmm_(g, wT.t(), beta: 0, alpha: 1)));
            arms.Add(($"{t} ∂W      (G view)ᵀ·h", () => dw.addmm_(g.t(), h, beta: 0, alpha: 1)));
            arms.Add(($"{t} ∂Wᵀ     hᵀ·G", () => dwT.addmm_(h.t(), g, beta: 0, alpha: 1)));
            arms.Add(($"{t} ∂W      Gᵀ contiguous·h", () => dw.addmm_(gT, h, beta: 0, alpha: 1)));
            // Rows padded to a multiple of 64 elements (50,257 → 50,304): every row of the logits starts 256-byte aligned.
            Tensor zPadded = torch.empty(rows, 50304, dtype: type).narrow(1, 0, vocabulary);
            Tensor gPadded = torch.empty(rows, 50304, dtype: type).narrow(1, 0, vocabulary);
            gPadded.copy_(g);
            arms.Add(($"{t} logits  h·(W view)ᵀ, ld 50304", () => zPadded.addmm_(h, w.t(), beta: 0, alpha: 1)));
            arms.Add(($"{t} ∂h      G·W, ld 50304", () => dh.addmm_(gPadded, w, beta: 0, alpha: 1)));
            arms.Add(($"{t} ∂W      (G view)ᵀ·h, ld 50304", () => dw.addmm_(gPadded.t(), h, beta: 0, alpha: 1)));
            // The vocabulary-major layout: the chunk's logits stored transposed, [V, rows].
            Tensor zT = torch.empty(vocabulary, rows, dtype: type);
            arms.Add(($"{t} logitsᵀ W·(h view)ᵀ", () => zT.addmm_(w, h.t(), beta: 0, alpha: 1)));
            arms.Add(($"{t} ∂h      (Gᵀ view)ᵀ·W", () => dh.addmm_(gT.t(), w, beta: 0, alpha: 1)));
            if (type == ScalarType.Float32)
            {
                arms.Add(($"{t} softmax rows [rows, V]", () => z.copy_(g).sub_(z.amax([1], keepdim: true)).exp_().div_(z.sum([1], keepdim: true))));
                arms.Add(($"{t} softmax cols [V, rows]", () => zT.copy_(gT).sub_(zT.amax([0], keepdim: true)).exp_().div_(zT.sum([0], keepdim: true))));
            }
        }

        var times = arms.ToDictionary(a => a.Name, _ => new List<double>());
        var clock = new Stopwatch();
        for (int round = 0; round <= rounds; round++)
        {
            foreach (var (name, run) in arms)
            {
                clock.Restart();
                run();
                if (round > 0)
                {
                    times[name].Add(clock.Elapsed.TotalMilliseconds);
                }
            }
        }

        foreach (var (name, _) in arms)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"   {name,-28} median {Statistics.Median([.. times[name]]),7:F1} ms  [{string.Join(" ", times[name].Select(x => x.ToString("F1", CultureInfo.InvariantCulture)))}]"));
        }
    }

    private const long FusedDefault = NicheTune.Training.FusedLinearCrossEntropy.DefaultChunkElements;

    // The output layer + loss alone (forward and backward) on the benchmark model's shapes: unfused against the fused
    // variants, interleaved in rounds.
    private static void Head(int rounds, TextWriter output)
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(5);
        Tensor hidden = torch.randn(2048, 256).requires_grad_(true);
        Tensor weight = (torch.randn(50257, 256) * 0.02).requires_grad_(true);
        Tensor targets = torch.randint(0, 50257, 2048, dtype: ScalarType.Int64);
        var arms = new List<(string Name, Action Run)>
        {
            ("unfused", () => nn.functional.cross_entropy(nn.functional.linear(hidden, weight), targets).backward()),
        };
        foreach (long chunk in ChunkSizes)
        {
            arms.Add(($"fused {chunk >> 20}M", () =>
                NicheTune.Training.FusedLinearCrossEntropy.Compute(hidden, weight, null, targets, 0.0, chunkElements: chunk).backward()));
        }

        var times = arms.ToDictionary(a => a.Name, _ => new List<double>());
        var clock = new Stopwatch();
        for (int round = 0; round <= rounds; round++)
        {
            foreach (var (name, run) in arms)
            {
                using var step = torch.NewDisposeScope();
                hidden.grad = null;
                weight.grad = null;
                clock.Restart();
                run();
                if (round > 0)
                {
                    times[name].Add(clock.Elapsed.TotalMilliseconds);
                }
            }
        }

        foreach (var (name, _) in arms)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"   head {name,-28} median {Statistics.Median([.. times[name]]),7:F0} ms  [{string.Join(" ", times[name].Select(t => t.ToString("F0", CultureInfo.InvariantCulture)))}]"));
        }
    }

    // NICHETUNE_ANATOMY_LEAK=fused|plain|forward|nograd|nohidden|noweight: RSS over 60 iterations of the output layer +
    // loss alone (NICHETUNE_ANATOMY_GC=1 collects after each): how the allocator-driven growth of docs/performance.md was found.
    private static void Leak(string mode, TextWriter output)
    {
        using var outer = torch.NewDisposeScope();
        torch.manual_seed(5);
        Tensor hidden = torch.randn(2048, 256).requires_grad_(mode != "nohidden");
        Tensor weight = (torch.randn(50257, 256) * 0.02).requires_grad_(mode != "noweight");
        Tensor targets = torch.randint(0, 50257, 2048, dtype: ScalarType.Int64);
        for (int i = 1; i <= 60; i++)
        {
            using (var step = torch.NewDisposeScope())
            using (var grad = mode == "nograd" ? torch.no_grad() : null)
            {
                Tensor loss = mode == "plain"
                    ? nn.functional.cross_entropy(nn.functional.linear(hidden, weight), targets)
                    : NicheTune.Training.FusedLinearCrossEntropy.Compute(hidden, weight, null, targets, 0.0);
                if (mode is "fused" or "plain")
                {
                    loss.backward();
                }
            }

            hidden.grad = null;
            weight.grad = null;
            if (Environment.GetEnvironmentVariable("NICHETUNE_ANATOMY_GC") == "1")
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }

            if (i % 10 == 0)
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"   {mode} iteration {i}: RSS {ProcessMemory.Mebibytes(ProcessMemory.Resident().Total):F0} MiB (anon {ProcessMemory.Mebibytes(ProcessMemory.Resident().Anonymous):F0}), managed heap {GC.GetTotalMemory(false) / 1048576.0:F1} MiB, allocated {GC.GetTotalAllocatedBytes() / 1048576.0:F1} MiB, gen0 GCs {GC.CollectionCount(0)}, live tensors {torch.Tensor.TotalCount}"));
            }
        }
    }
}

/// <summary>Which AdamW implementation an anatomy arm steps with.</summary>
internal enum AnatomyOptimizer
{
    /// <summary>TorchSharp's own loop (two full-size temporaries per parameter).</summary>
    TorchSharp,

    /// <summary>The internal flat-buffer AdamW.</summary>
    Flat,

    /// <summary>NicheTune's default, the blockwise <c>NicheTune.Training.Blockwise.AdamW</c>.</summary>
    Blockwise,
}
