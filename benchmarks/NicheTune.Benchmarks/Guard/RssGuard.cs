using System.Diagnostics;
using NicheTune.Benchmarks.Workload;
using NicheTune.Models;
using NicheTune.Training;
using TorchSharp;

namespace NicheTune.Benchmarks.Guard;

/// <summary>
/// Part b: native memory must stay flat over thousands of Trainer steps. The benchmark model takes seconds per step, so
/// this runs the same architecture at <see cref="ModelShape.Small"/>, through one Fit that spans many epochs (the data
/// pipeline restarts each epoch), shuffles, logs every 50 steps and evaluates every 250 steps and at every epoch end.
/// </summary>
internal static class RssGuard
{
    private const int SampleEvery = 50;
    private const int BatchesPerEpoch = 40;
    private const int ValidationExamples = 32;

    public static double Run(int steps, bool everySample, TextWriter output)
    {
        ModelShape shape = ModelShape.Small;
        int early = steps / 10;
        int middle = steps / 2;
        output.WriteLine($"== RSS flatness: {shape.Describe()}");
        output.WriteLine($"   (a smaller size of the benchmark architecture: {steps} steps of the benchmark model would take over an hour here)");
        output.WriteLine(
            $"   one Fit of {steps} steps over {BatchesPerEpoch * shape.BatchSize} examples ({BatchesPerEpoch} steps/epoch, shuffled), " +
            $"evaluating {ValidationExamples} examples every 250 steps and at epoch ends; memory sampled every {SampleEvery} steps");

        torch.manual_seed(99);
        using var model = new Gpt2LMHeadModel(shape.ToConfig());
        TokenExample[] train = TrainingWorkload.RandomExamples(shape, BatchesPerEpoch * shape.BatchSize, seed: 5);
        TokenExample[] validation = TrainingWorkload.RandomExamples(shape, ValidationExamples, seed: 6);
        var sampler = new MemorySampler(SampleEvery, steps / SampleEvery + 1);

        var clock = Stopwatch.StartNew();
        FineTuneResult result = TrainingWorkload.Plan(model, shape.BatchSize)
            .WithMaxSteps(steps)
            .EvaluateEvery(250)
            .WithCallback(sampler)
            .Fit(train, validation, new TokenCollator());
        clock.Stop();

        output.WriteLine(
            $"   {result.Steps} steps in {clock.Elapsed.TotalSeconds:F1} s ({clock.Elapsed.TotalMilliseconds / Math.Max(1, result.Steps):F1} ms/step, Fit set-up included), " +
            $"{result.Epochs.Length} epochs, {result.Evaluations.Length} evaluations, final training loss {result.TrainingLoss[^1].Loss:F3}");
        output.WriteLine("    step   VmRSS MiB   RssAnon MiB   RssFile MiB   managed heap MiB (after last GC)");
        for (int i = 0; i < sampler.Count; i++)
        {
            long step = sampler.Steps[i];
            if (everySample || step % 250 == 0 || step == early)
            {
                output.WriteLine(
                    $"   {step,5}   {Mib(sampler.Total[i]),9:F1}   {Mib(sampler.Anonymous[i]),11:F1}   {Mib(sampler.File[i]),11:F1}   {Mib(sampler.Managed[i]),16:F1}");
            }
        }

        int first = sampler.IndexAt(early);
        int half = sampler.IndexAt(middle);
        int last = sampler.IndexAt(steps);
        // The baseline is the first sample after the runtime's first gen0 collection (and not before step `early`): until
        // then the managed heap is still filling its gen0 budget (64 MiB under build.sh's DOTNET_GCgen0size, about 900
        // steps here), memory the runtime commits once and reuses after. Growth from there on is what a leak would show.
        int settled = first;
        while (settled < last && sampler.Gen0[settled] == 0)
        {
            settled++;
        }

        if (sampler.Gen0[settled] == 0 || sampler.Steps[settled] > steps * 3 / 5)
        {
            output.WriteLine($"   the managed heap had not collected by step {sampler.Steps[settled]}: the growth below includes its gen0 budget");
            settled = first;
        }

        double growth = Growth(sampler.Total, settled, last);
        output.WriteLine($"   rss at step {early}: {Mib(sampler.Total[first]):F1} MiB (anonymous {Mib(sampler.Anonymous[first]):F1} MiB)");
        output.WriteLine($"   rss at step {sampler.Steps[settled]} (first sample after the first gen0 collection): {Mib(sampler.Total[settled]):F1} MiB (anonymous {Mib(sampler.Anonymous[settled]):F1} MiB)");
        output.WriteLine($"   rss at step {middle}: {Mib(sampler.Total[half]):F1} MiB (anonymous {Mib(sampler.Anonymous[half]):F1} MiB)");
        output.WriteLine($"   rss at step {steps}: {Mib(sampler.Total[last]):F1} MiB (anonymous {Mib(sampler.Anonymous[last]):F1} MiB); gen0 collections {sampler.Gen0[last]}");
        output.WriteLine($"   growth from step {early}: {Growth(sampler.Total, first, last):F1}% (includes the managed heap filling its gen0 budget)");
        output.WriteLine($"   anonymous (heap) growth from step {sampler.Steps[settled]}: {Growth(sampler.Anonymous, settled, last):F1}%; trend from step {sampler.Steps[settled]} on: {Trend(sampler, sampler.Steps[settled]):+0.0;-0.0} MiB per 1000 steps");
        double allocatedPerStep = (sampler.Allocated[last] - sampler.Allocated[first]) / (double)(sampler.Steps[last] - sampler.Steps[first]);
        output.WriteLine($"   managed allocations: {allocatedPerStep / 1024:F1} KiB per step (whole process, evaluations included), collected by the GC");
        output.WriteLine($"rss growth: {growth:F1}% (from step {sampler.Steps[settled]})");
        return growth;
    }

    // Least-squares slope of VmRSS against the step, from a step where the allocator has settled: a leak shows here even
    // when the early baseline is high.
    private static double Trend(MemorySampler sampler, long fromStep)
    {
        double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
        for (int i = 0; i < sampler.Count; i++)
        {
            if (sampler.Steps[i] < fromStep)
            {
                continue;
            }

            double x = sampler.Steps[i] / 1000.0;
            double y = Mib(sampler.Total[i]);
            n++;
            sx += x;
            sy += y;
            sxx += x * x;
            sxy += x * y;
        }

        return n < 2 ? double.NaN : (n * sxy - sx * sy) / (n * sxx - sx * sx);
    }

    private static double Mib(long bytes) => ProcessMemory.Mebibytes(bytes);

    private static double Growth(long[] values, int from, int to) => (values[to] - values[from]) * 100.0 / values[from];

    /// <summary>Samples resident memory and the managed heap every n steps; allocation-free between samples.</summary>
    private sealed class MemorySampler(int every, int capacity) : ITrainingCallback
    {
        public long[] Steps { get; } = new long[capacity];

        public long[] Total { get; } = new long[capacity];

        public long[] Anonymous { get; } = new long[capacity];

        public long[] File { get; } = new long[capacity];

        public long[] Managed { get; } = new long[capacity];

        public long[] Allocated { get; } = new long[capacity];

        public int[] Gen0 { get; } = new int[capacity];

        public int Count { get; private set; }

        public void OnStepEnd(in StepEndArguments args)
        {
            if (args.Step % every != 0 || Count == Steps.Length)
            {
                return;
            }

            Steps[Count] = args.Step;
            (Total[Count], Anonymous[Count], File[Count]) = ProcessMemory.Resident();
            Managed[Count] = GC.GetGCMemoryInfo().HeapSizeBytes;
            Allocated[Count] = GC.GetTotalAllocatedBytes(precise: false);
            Gen0[Count] = GC.CollectionCount(0);
            Count++;
        }

        /// <summary>The sample at <paramref name="step"/>, or the last one before it when the step is not a multiple of the interval.</summary>
        public int IndexAt(long step)
        {
            int index = 0;
            for (int i = 0; i < Count && Steps[i] <= step; i++)
            {
                index = i;
            }

            return index;
        }
    }
}
