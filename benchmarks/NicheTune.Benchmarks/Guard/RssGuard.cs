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

    public static double Run(int steps, TextWriter output)
    {
        ModelShape shape = ModelShape.Small;
        int early = steps / 10;
        int middle = steps / 2;
        output.WriteLine($"== RSS flatness: {shape.Describe()}");
        output.WriteLine(
            $"   (a smaller size of the benchmark architecture: {steps} steps of the benchmark model would take over an hour here)");
        output.WriteLine(
            $"   one Fit of {steps} steps over {BatchesPerEpoch * shape.BatchSize} examples ({BatchesPerEpoch} steps/epoch, shuffled), " +
            $"evaluating {ValidationExamples} examples every 250 steps and at epoch ends; VmRSS sampled every {SampleEvery} steps");

        torch.manual_seed(99);
        using var model = new Gpt2LMHeadModel(shape.ToConfig());
        TokenExample[] train = TrainingWorkload.RandomExamples(shape, BatchesPerEpoch * shape.BatchSize, seed: 5);
        TokenExample[] validation = TrainingWorkload.RandomExamples(shape, ValidationExamples, seed: 6);
        var sampler = new MemorySampler(SampleEvery, steps / SampleEvery + 1);

        var clock = Stopwatch.StartNew();
        FineTuneResult result = FineTuner.For(model)
            .WithObjective(Objectives.CausalLanguageModeling())
            .WithOptimizer(Optimizers.AdamW())
            .WithLearningRate(TrainingWorkload.LearningRate)
            .WithBatchSize(shape.BatchSize)
            .ClipGradientNorm(TrainingWorkload.MaxGradientNorm)
            .WithMaxSteps(steps)
            .EvaluateEvery(250)
            .WithCallback(sampler)
            .Fit(train, validation, new TokenCollator());
        clock.Stop();

        output.WriteLine(
            $"   {result.Steps} steps in {clock.Elapsed.TotalSeconds:F1} s ({clock.Elapsed.TotalMilliseconds / Math.Max(1, result.Steps):F1} ms/step, Fit set-up included), " +
            $"{result.Epochs.Length} epochs, {result.Evaluations.Length} evaluations, final training loss {result.TrainingLoss[^1].Loss:F3}");
        output.WriteLine("   step    RSS MiB   managed heap MiB");
        for (int i = 0; i < sampler.Count; i++)
        {
            if (sampler.Steps[i] % 250 == 0 || sampler.Steps[i] == early)
            {
                output.WriteLine($"   {sampler.Steps[i],5}   {ProcessMemory.Mebibytes(sampler.Rss[i]),7:F1}   {ProcessMemory.Mebibytes(sampler.Managed[i]),7:F1}");
            }
        }

        long rssEarly = sampler.RssAt(early);
        long rssMiddle = sampler.RssAt(middle);
        long rssEnd = sampler.RssAt(steps);
        double growth = (rssEnd - rssEarly) * 100.0 / rssEarly;
        output.WriteLine($"   rss at step {early}: {ProcessMemory.Mebibytes(rssEarly):F1} MiB");
        output.WriteLine($"   rss at step {middle}: {ProcessMemory.Mebibytes(rssMiddle):F1} MiB");
        output.WriteLine($"   rss at step {steps}: {ProcessMemory.Mebibytes(rssEnd):F1} MiB");
        output.WriteLine($"rss growth: {growth:F1}%");
        return growth;
    }

    /// <summary>Samples VmRSS and the managed heap every n steps; allocation-free between samples.</summary>
    private sealed class MemorySampler(int every, int capacity) : ITrainingCallback
    {
        public long[] Steps { get; } = new long[capacity];

        public long[] Rss { get; } = new long[capacity];

        public long[] Managed { get; } = new long[capacity];

        public int Count { get; private set; }

        public void OnStepEnd(in StepEndArguments args)
        {
            if (args.Step % every != 0 || Count == Steps.Length)
            {
                return;
            }

            Steps[Count] = args.Step;
            Rss[Count] = ProcessMemory.ResidentBytes();
            Managed[Count] = GC.GetTotalMemory(false);
            Count++;
        }

        public long RssAt(long step)
        {
            // The sample at the step, or the last one before it when the step is not a multiple of the interval.
            long value = -1;
            for (int i = 0; i < Count && Steps[i] <= step; i++)
            {
                value = Rss[i];
            }

            return value;
        }
    }
}
