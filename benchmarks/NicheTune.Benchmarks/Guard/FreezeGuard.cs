using System.Globalization;
using NicheTune.Benchmarks.Workload;
using NicheTune.Freezing;
using NicheTune.Training;

namespace NicheTune.Benchmarks.Guard;

/// <summary>
/// What freezing buys per step (issue "Layer freezing…"): the Trainer's median step with part of the model frozen over its
/// median step with everything trainable, on the same model, data and weights, interleaved in rounds to cancel drift,
/// after one untimed run of every arm.
/// Bounds: benchmark model, embeddings + blocks 0–1 frozen ≤ 0.85, head only ≤ 0.70; the block-dominated "wide" model,
/// embeddings + bottom 4 blocks frozen ≤ 0.70.
/// </summary>
internal static class FreezeGuard
{
    public const double FrozenBottomLimit = 0.85;
    public const double HeadOnlyLimit = 0.70;
    public const double WideFrozenBottomLimit = 0.70;

    /// <summary>The block-dominated model of the issue: 8 blocks, d 512, 8 heads, FFN 2,048, context 256, vocabulary 8,192, batch 8.</summary>
    public static ModelShape Wide { get; } = new("wide", 8192, 256, 512, 8, 8, 8);

    public static (double FrozenBottom, double HeadOnly, double WideFrozenBottom) Run(int rounds, int steps, TextWriter output)
    {
        output.WriteLine($"== freezing: Trainer step with frozen layers / Trainer step with everything trainable ({rounds} rounds of {steps} timed steps per arm, arms rotating)");
        var benchmark = Ratios(ModelShape.Benchmark, rounds, steps, output,
            ("full", null),
            ("frozen-bottom", Freeze.Embeddings().And(Freeze.BottomLayers(2))),
            ("head-only", Freeze.AllBut("head")));
        var wide = Ratios(Wide, rounds, steps, output,
            ("full", null),
            ("frozen-bottom", Freeze.Embeddings().And(Freeze.BottomLayers(4))));
        return (benchmark["frozen-bottom"], benchmark["head-only"], wide["frozen-bottom"]);
    }

    private static Dictionary<string, double> Ratios(ModelShape shape, int rounds, int steps, TextWriter output, params (string Name, IFreezeStrategy? Strategy)[] arms)
    {
        output.WriteLine($"   {shape.Describe()}");
        using var workload = TrainingWorkload.Create(shape, steps + 1);
        var times = arms.ToDictionary(a => a.Name, _ => new List<double>());
        var faults = arms.ToDictionary(a => a.Name, _ => new List<double>());
        var roundMedians = arms.ToDictionary(a => a.Name, _ => new List<double>());
        using var recorder = new StepRecorder(steps + 2);
        // One untimed run of every arm first: the process's first steps on a new shape also settle glibc's dynamic mmap
        // threshold and libtorch's thread pools, and whichever arm ran first would carry that cost.
        foreach (var (_, strategy) in arms)
        {
            Fit(workload, shape, strategy, 2, recorder);
        }

        for (int round = 0; round < rounds; round++)
        {
            for (int k = 0; k < arms.Length; k++)
            {
                var (name, strategy) = arms[(k + round) % arms.Length];
                Fit(workload, shape, strategy, steps + 1, recorder);
                StepSample[] samples = recorder.Samples();
                double[] ms = [.. samples.Select(s => s.Milliseconds)];
                times[name].AddRange(ms);
                double roundMedian = Statistics.Median(ms);
                roundMedians[name].Add(roundMedian);
                faults[name].AddRange(samples.Select(s => (double)s.PageFaults));
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"   round {round + 1} {name,-14} median {roundMedian,8:F1} ms, {Statistics.Median([.. samples.Select(s => (double)s.PageFaults)]),7:F0} page faults [{string.Join(" ", ms.Select(m => m.ToString("F0", CultureInfo.InvariantCulture)))}]"));
            }
        }

        double full = Statistics.Median([.. times["full"]]);
        var ratios = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (name, _) in arms.Skip(1))
        {
            double median = Statistics.Median([.. times[name]]);
            ratios[name] = median / full;
            // Each round's own ratio shows how far the machine's drift moves the result within one run.
            IEnumerable<double> perRound = roundMedians[name].Zip(roundMedians["full"], (arm, whole) => arm / whole);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"   {shape.Name}: {name} median {median:F1} ms / full median {full:F1} ms = {ratios[name]:F3} (rounds {string.Join(" ", perRound.Select(r => r.ToString("F3", CultureInfo.InvariantCulture)))}; page faults a step {Statistics.Median([.. faults[name]]):F0} / {Statistics.Median([.. faults["full"]]):F0})"));
        }

        return ratios;
    }

    private static void Fit(TrainingWorkload workload, ModelShape shape, IFreezeStrategy? strategy, int steps, StepRecorder recorder)
    {
        workload.ResetWeights();
        recorder.Reset();
        var builder = TrainingWorkload.Plan(workload.Model, shape.BatchSize)
            .WithMaxSteps(steps)
            .ShuffleTrainingData(false)
            .LogEvery(TrainingWorkload.NoLogging)
            .WithCallback(recorder);
        if (strategy is not null)
        {
            builder.Freeze(strategy);
        }

        builder.Fit(workload.Examples, null, new TokenCollator());
    }
}
