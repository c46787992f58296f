using NicheTune.Benchmarks.Workload;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Benchmarks.Guard;

/// <summary>
/// Part a: the Trainer's per-step time over a hand-written TorchSharp step on the benchmark model, both on the same model
/// object reset to the same initial weights. Rounds alternate which side goes first (ABBA) so that drift in the machine's
/// speed (thermal, neighbours, allocator state) lands on both sides alike.
/// </summary>
internal static class OverheadGuard
{
    public static double Run(int rounds, int steps, TextWriter output)
    {
        ModelShape shape = ModelShape.Benchmark;
        output.WriteLine($"== trainer overhead: {shape.Describe()}");
        output.WriteLine($"   {rounds} rounds x (raw loop of {steps + 1} steps, Trainer Fit of {steps + 1} steps); the first step of each run is not timed");
        output.WriteLine($"   a step's time is the gap between consecutive step ends (raw: after the step's scope; Trainer: OnStepEnd)");

        using TrainingWorkload workload = TrainingWorkload.Create(shape, steps + 1);
        var timer = new StepTimer(steps + 1);
        var rawEnds = new long[steps + 1];

        // Warm-up: JIT of both paths and libtorch's first-touch allocations stay out of the measured rounds.
        workload.ResetWeights();
        RawTrainingLoop.Run(workload.Model, workload.Batches, 2, rawEnds);
        double rawWarm = StepTimer.Gaps(rawEnds, 2)[0];
        workload.ResetWeights();
        timer.Reset();
        workload.FitTrainer(2, timer);
        double trainerWarm = timer.StepMilliseconds()[0];
        output.WriteLine($"   warm-up: raw step {rawWarm:F0} ms, Trainer step {trainerWarm:F0} ms");

        var allRaw = new List<double>();
        var allTrainer = new List<double>();
        Dictionary<string, Tensor>? rawWeights = null;
        for (int round = 0; round < rounds; round++)
        {
            bool rawFirst = round % 2 == 0;
            double[] raw = [];
            double[] trainer = [];
            for (int turn = 0; turn < 2; turn++)
            {
                workload.ResetWeights();
                if ((turn == 0) == rawFirst)
                {
                    RawTrainingLoop.Run(workload.Model, workload.Batches, steps + 1, rawEnds);
                    raw = StepTimer.Gaps(rawEnds, steps + 1);
                    if (round == 0)
                    {
                        rawWeights = workload.SnapshotWeights();
                    }
                }
                else
                {
                    timer.Reset();
                    workload.FitTrainer(steps + 1, timer);
                    trainer = timer.StepMilliseconds();
                }
            }

            if (round == 0 && rawWeights is not null)
            {
                // Same weights, data and math on both sides: after the same steps the weights must agree to float rounding.
                double difference = workload.MaxAbsoluteDifference(rawWeights);
                TrainingWorkload.Dispose(rawWeights);
                output.WriteLine($"   same math check: max |raw - Trainer| over all weights after {steps + 1} steps = {difference:E2}");
            }

            allRaw.AddRange(raw);
            allTrainer.AddRange(trainer);
            double rawMedian = Statistics.Median(raw);
            double trainerMedian = Statistics.Median(trainer);
            output.WriteLine(
                $"   round {round + 1} ({(rawFirst ? "raw first" : "Trainer first")}): raw median {rawMedian:F1} ms [{Statistics.Milliseconds(raw)}], " +
                $"Trainer median {trainerMedian:F1} ms [{Statistics.Milliseconds(trainer)}], ratio {trainerMedian / rawMedian:F3}");
        }

        double rawAll = Statistics.Median(allRaw);
        double trainerAll = Statistics.Median(allTrainer);
        double ratio = trainerAll / rawAll;
        output.WriteLine($"   all rounds: raw median {rawAll:F1} ms (n = {allRaw.Count}), Trainer median {trainerAll:F1} ms (n = {allTrainer.Count})");
        output.WriteLine($"trainer overhead ratio: {ratio:F3}");
        return ratio;
    }
}
