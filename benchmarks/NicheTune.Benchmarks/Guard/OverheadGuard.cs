using System.Diagnostics;
using System.Globalization;
using NicheTune.Benchmarks.Workload;
using NicheTune.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Benchmarks.Guard;

/// <summary>
/// Part a: the Trainer's per-step time over a hand-written TorchSharp step on the benchmark model, both on the same model
/// object reset to the same initial weights. Rounds alternate which side goes first (ABBA) so that drift in the machine's
/// speed lands on both sides alike. Steps during which other processes took a noticeable share of the CPUs are marked
/// and left out of the ratio when enough quiet steps remain; rounds are added (within a time budget) until they do.
/// </summary>
internal static class OverheadGuard
{
    // No extra round starts after this (from the start of part a), so that a busy machine costs minutes, not an hour.
    private static readonly TimeSpan ExtraRoundsDeadline = TimeSpan.FromMinutes(5);

    public static double Run(int rounds, int maxRounds, int steps, bool verbose, TextWriter output)
    {
        ModelShape shape = ModelShape.Benchmark;
        int minimumQuiet = 2 * steps;
        int wantedQuiet = 3 * steps;
        output.WriteLine($"== trainer overhead: {shape.Describe()}");
        output.WriteLine($"   rounds of (raw loop of {steps + 1} steps, Trainer Fit of {steps + 1} steps), sides alternating first; the first step of each run is not timed");
        output.WriteLine("   a step's time is the gap between consecutive step ends (raw: after the step's scope; Trainer: OnStepEnd)");
        output.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"   * = disturbed step: other processes used > {StepRecorder.DisturbedShare:P0} of the CPUs meanwhile; ratio from quiet steps when each side has >= {minimumQuiet}"));

        var clock = Stopwatch.StartNew();
        using TrainingWorkload workload = TrainingWorkload.Create(shape, steps + 1);
        using var recorder = new StepRecorder(steps + 1);

        // Warm-up: JIT of both paths and libtorch's first-touch allocations stay out of the measured rounds.
        workload.ResetWeights();
        RawTrainingLoop.Run(workload.Model, workload.Batches, 2, recorder);
        StepSample rawWarm = recorder.Samples()[0];
        recorder.Reset();
        workload.ResetWeights();
        workload.FitTrainer(2, recorder, optimizer: Optimizers.TorchSharpAdamW());
        StepSample trainerWarm = recorder.Samples()[0];
        output.WriteLine($"   warm-up: raw step {Format(rawWarm)} ms, Trainer step {Format(trainerWarm)} ms");

        var allRaw = new List<StepSample>();
        var allTrainer = new List<StepSample>();
        for (int round = 0; round < Math.Max(rounds, maxRounds); round++)
        {
            if (round >= rounds && (Quiet(allRaw).Count >= wantedQuiet && Quiet(allTrainer).Count >= wantedQuiet || clock.Elapsed > ExtraRoundsDeadline))
            {
                break;
            }

            if (round == rounds)
            {
                output.WriteLine($"   the machine was busy: adding rounds until each side has {wantedQuiet} quiet steps (at most {maxRounds} rounds, none started after {ExtraRoundsDeadline.TotalMinutes:F0} min)");
            }

            bool rawFirst = round % 2 == 0;
            StepSample[] raw = [];
            StepSample[] trainer = [];
            Dictionary<string, Tensor>? rawWeights = null;
            for (int turn = 0; turn < 2; turn++)
            {
                workload.ResetWeights();
                recorder.Reset();
                if ((turn == 0) == rawFirst)
                {
                    RawTrainingLoop.Run(workload.Model, workload.Batches, steps + 1, recorder);
                    raw = recorder.Samples();
                    if (round == 0)
                    {
                        rawWeights = workload.SnapshotWeights();
                    }
                }
                else
                {
                    workload.FitTrainer(steps + 1, recorder, optimizer: Optimizers.TorchSharpAdamW());
                    trainer = recorder.Samples();
                }
            }

            if (rawWeights is not null)
            {
                // Same weights, data and math on both sides: after the same steps the weights must agree to float rounding
                // (the clipping coefficient is a float tensor on the raw side, a double on the Trainer's).
                double difference = workload.MaxAbsoluteDifference(rawWeights);
                TrainingWorkload.Dispose(rawWeights);
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"   same math check: max |raw - Trainer| over all weights after {steps + 1} steps = {difference:E2} (learning rate {TrainingWorkload.LearningRate:E0})"));
            }

            allRaw.AddRange(raw);
            allTrainer.AddRange(trainer);
            double rawMedian = Median(raw);
            double trainerMedian = Median(trainer);
            if (verbose)
            {
                output.WriteLine($"     raw      ms/foreign CPU share/KiB: {Detail(raw)}");
                output.WriteLine($"     Trainer  ms/foreign CPU share/KiB: {Detail(trainer)}");
            }

            output.WriteLine(
                $"   round {round + 1} ({(rawFirst ? "raw first" : "Trainer first")}): raw median {rawMedian:F1} ms [{List(raw)}], " +
                $"Trainer median {trainerMedian:F1} ms [{List(trainer)}], ratio {trainerMedian / rawMedian:F3}");
        }

        List<StepSample> quietRaw = Quiet(allRaw);
        List<StepSample> quietTrainer = Quiet(allTrainer);
        double rawAll = Median(allRaw);
        double trainerAll = Median(allTrainer);
        output.WriteLine($"   all steps: raw median {rawAll:F1} ms (n = {allRaw.Count}), Trainer median {trainerAll:F1} ms (n = {allTrainer.Count}), ratio {trainerAll / rawAll:F3}");
        double ratio;
        if (quietRaw.Count >= minimumQuiet && quietTrainer.Count >= minimumQuiet)
        {
            double rawQuiet = Median(quietRaw);
            double trainerQuiet = Median(quietTrainer);
            ratio = trainerQuiet / rawQuiet;
            output.WriteLine($"   quiet steps: raw median {rawQuiet:F1} ms (n = {quietRaw.Count}), Trainer median {trainerQuiet:F1} ms (n = {quietTrainer.Count}), ratio {ratio:F3}  <- used");
        }
        else
        {
            ratio = trainerAll / rawAll;
            output.WriteLine(
                $"   WARNING: too few quiet steps (raw {quietRaw.Count}, Trainer {quietTrainer.Count}, need {minimumQuiet} each): the ratio uses all steps " +
                "and reflects the machine's other load as much as the Trainer; rerun on an idle machine");
        }

        output.WriteLine(
            $"   managed allocations per step (median, whole process): raw {Statistics.Median([.. allRaw.Select(s => s.AllocatedBytes / 1024.0)]):F1} KiB, " +
            $"Trainer {Statistics.Median([.. allTrainer.Select(s => s.AllocatedBytes / 1024.0)]):F1} KiB");
        output.WriteLine($"   {clock.Elapsed.TotalSeconds:F0} s");
        output.WriteLine($"trainer overhead ratio: {ratio:F3}");
        return ratio;
    }

    private static List<StepSample> Quiet(List<StepSample> samples) => samples.FindAll(s => !s.Disturbed);

    private static double Median(IEnumerable<StepSample> samples) => Statistics.Median([.. samples.Select(s => s.Milliseconds)]);

    private static string Format(StepSample sample) =>
        sample.Milliseconds.ToString("F0", CultureInfo.InvariantCulture) + (sample.Disturbed ? "*" : "");

    private static string Detail(StepSample[] samples) =>
        string.Join("  ", samples.Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.Milliseconds:F0}/{s.ForeignShare:P1}/{s.AllocatedBytes / 1024.0:F0}")));

    private static string List(StepSample[] samples) => string.Join(" ", samples.Select(Format));
}
