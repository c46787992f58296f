using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using NicheTune.Benchmarks.Workload;

namespace NicheTune.Benchmarks.Guard;

/// <summary>
/// NicheTune's default training step against the naive TorchSharp step (issue "Faster than PyTorch…"): each side runs
/// in its own process — so that its peak resident memory (VmHWM) is its own — for the same steps from the same weights
/// and data; sides alternate over rounds. Reports the median step's tokens/s ratio (<c>speedup vs naive</c>), the
/// peak-RSS ratio (<c>peak memory vs naive</c>) and the largest relative loss difference over the steps.
/// Targets: speedup ≥ 1.30, peak memory ≤ 0.60, every loss within 1e-3 relative. A third side runs the same step with
/// <c>WithPrecision(Precision.BFloat16)</c>: <c>bf16 speedup vs naive</c>, target ≥ 1.80 (its losses differ by design; the
/// quality check is the FOLDOC run of <see cref="Bf16QualityGuard"/>).
/// </summary>
internal static class SpeedGuard
{
    public const double MinSpeedup = 1.30;
    public const double MaxPeakRatio = 0.60;
    public const double MaxLossDifference = 1e-3;
    public const double MinBf16Speedup = 1.80;

    public static (double Speedup, double PeakRatio, double LossDifference, double? Bf16Speedup) Run(int rounds, int steps, TextWriter output, bool bf16)
    {
        output.WriteLine($"== speed: NicheTune's default step vs the naive TorchSharp step, one process per run, {rounds} round(s) of {steps} steps per side, sides alternating");
        output.WriteLine($"   {ModelShape.Benchmark.Describe()}");
        var naive = new List<ChildResult>();
        var nicheTune = new List<ChildResult>();
        var lowPrecision = new List<ChildResult>();
        string[] sides = bf16 ? ["naive", "nichetune", "nichetune-bf16"] : ["naive", "nichetune"];
        for (int round = 0; round < rounds; round++)
        {
            foreach (string side in round % 2 == 0 ? sides : sides.Reverse())
            {
                ChildResult result = RunChild(side, steps);
                (side == "naive" ? naive : side == "nichetune" ? nicheTune : lowPrecision).Add(result);
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"   round {round + 1} {side,-14} median step {Statistics.Median(result.Milliseconds[1..]),8:F1} ms  peak RSS {ProcessMemory.Mebibytes(result.PeakBytes),7:F0} MiB  page faults/step {Statistics.Median(result.PageFaults[1..]),8:F0}  loss {result.Losses[0]:F4} → {result.Losses[^1]:F4}"));
            }
        }

        double naiveMedian = Statistics.Median([.. naive.SelectMany(r => r.Milliseconds[1..])]);
        double nicheMedian = Statistics.Median([.. nicheTune.SelectMany(r => r.Milliseconds[1..])]);
        double speedup = naiveMedian / nicheMedian;
        double peak = nicheTune.Max(r => r.PeakBytes) / (double)naive.Max(r => r.PeakBytes);
        double lossDifference = 0;
        for (int i = 0; i < steps; i++)
        {
            double a = naive[0].Losses[i], b = nicheTune[0].Losses[i];
            lossDifference = Math.Max(lossDifference, Math.Abs(a - b) / Math.Abs(a));
        }

        int tokens = ModelShape.Benchmark.BatchSize * ModelShape.Benchmark.TokensPerExample;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"   naive {naiveMedian:F1} ms ({tokens / naiveMedian * 1000:F0} tokens/s), NicheTune {nicheMedian:F1} ms ({tokens / nicheMedian * 1000:F0} tokens/s); largest relative loss difference over {steps} steps {lossDifference:E2}"));
        double? bf16Speedup = null;
        if (lowPrecision.Count > 0)
        {
            double lowMedian = Statistics.Median([.. lowPrecision.SelectMany(r => r.Milliseconds[1..])]);
            bf16Speedup = naiveMedian / lowMedian;
            double lowLossDifference = 0;
            for (int i = 0; i < steps; i++)
            {
                lowLossDifference = Math.Max(lowLossDifference, Math.Abs(naive[0].Losses[i] - lowPrecision[0].Losses[i]) / Math.Abs(naive[0].Losses[i]));
            }

            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"   NicheTune bf16 {lowMedian:F1} ms ({tokens / lowMedian * 1000:F0} tokens/s), peak RSS {ProcessMemory.Mebibytes(lowPrecision.Max(r => r.PeakBytes)):F0} MiB; largest relative loss difference to fp32 over {steps} steps {lowLossDifference:E2}"));
        }

        return (speedup, peak, lossDifference, bf16Speedup);
    }

    /// <summary>
    /// tokens/s and peak memory against vocabulary size and context (<c>guard --only sweep</c>): every side in its own
    /// process for each shape, the batch chosen so that a step always holds 2,048 tokens.
    /// </summary>
    public static void Sweep(int steps, TextWriter output, bool bf16)
    {
        int[] vocabularies = [8192, 32768, 50257, 131072];
        int[] contexts = [128, 512];
        string[] sides = bf16 ? ["naive", "nichetune", "nichetune-bf16"] : ["naive", "nichetune"];
        output.WriteLine($"== sweep: tokens/s and peak RSS by vocabulary and context, 2,048 tokens per step, median of steps 2–{steps} per side");
        output.WriteLine($"   | vocabulary | context | batch | {string.Join(" | ", sides.Select(s => $"{s} tokens/s | {s} peak MiB"))} | speedup | {(bf16 ? "bf16 speedup |" : "")}");
        foreach (int context in contexts)
        {
            foreach (int vocabulary in vocabularies)
            {
                ModelShape shape = ModelShape.Benchmark with { VocabularySize = vocabulary, ContextLength = context, BatchSize = 2048 / context };
                var cells = new List<string>();
                var tokensPerSecond = new Dictionary<string, double>();
                foreach (string side in sides)
                {
                    ChildResult result = RunChild(side, steps, shape);
                    double ms = Statistics.Median(result.Milliseconds[1..]);
                    tokensPerSecond[side] = 2048 / ms * 1000;
                    cells.Add(string.Create(CultureInfo.InvariantCulture, $"{tokensPerSecond[side]:F0} | {ProcessMemory.Mebibytes(result.PeakBytes):F0}"));
                }

                string speedups = string.Create(CultureInfo.InvariantCulture, $"{tokensPerSecond["nichetune"] / tokensPerSecond["naive"]:F2} |");
                if (bf16)
                {
                    speedups += string.Create(CultureInfo.InvariantCulture, $" {tokensPerSecond["nichetune-bf16"] / tokensPerSecond["naive"]:F2} |");
                }

                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"   | {vocabulary:N0} | {context} | {shape.BatchSize} | {string.Join(" | ", cells)} | {speedups}"));
            }
        }
    }

    /// <summary>The child side: <c>guard --child naive|nichetune|nichetune-bf16 --steps N --out FILE [--shape V,C,B]</c>.</summary>
    public static int Child(string side, int steps, string outFile, ModelShape? shape = null)
    {
        using TrainingWorkload workload = TrainingWorkload.Create(shape ?? ModelShape.Benchmark, steps);
        using var recorder = new StepRecorder(steps + 1);
        var losses = new double[steps];
        recorder.Mark();
        if (side == "naive")
        {
            RawTrainingLoop.Run(workload.Model, workload.Batches, steps, recorder, losses);
        }
        else
        {
            var lossRecorder = new LossRecorder(losses);
            workload.FitTrainer(steps, new CompositeCallback(recorder, lossRecorder), fused: true, logEvery: 1,
                precision: side == "nichetune-bf16" ? NicheTune.Training.Precision.BFloat16 : NicheTune.Training.Precision.Float32);
        }

        StepSample[] samples = recorder.Samples();
        double[] ms = [.. samples.Select(s => s.Milliseconds)];
        double[] faults = [.. samples.Select(s => (double)s.PageFaults)];
        var result = new ChildResult(side, ms, losses, PeakResident(), faults);
        File.WriteAllText(outFile, JsonSerializer.Serialize(result));
        return 0;
    }

    private static ChildResult RunChild(string side, int steps, ModelShape? shape = null)
    {
        string outFile = Path.Combine(Path.GetTempPath(), $"nichetune-speed-{Environment.ProcessId}-{side}-{Guid.NewGuid():N}.json");
        string self = Environment.ProcessPath!;
        var start = new ProcessStartInfo(self) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            start.ArgumentList.Add(typeof(SpeedGuard).Assembly.Location);
        }

        foreach (string arg in new[] { "guard", "--child", side, "--steps", steps.ToString(CultureInfo.InvariantCulture), "--out", outFile })
        {
            start.ArgumentList.Add(arg);
        }

        if (shape is not null)
        {
            start.ArgumentList.Add("--shape");
            start.ArgumentList.Add(string.Create(CultureInfo.InvariantCulture, $"{shape.VocabularySize},{shape.ContextLength},{shape.BatchSize}"));
        }

        using Process child = Process.Start(start)!;
        child.WaitForExit();
        if (child.ExitCode != 0 || !File.Exists(outFile))
        {
            throw new InvalidOperationException($"The {side} run exited with code {child.ExitCode} and wrote no result.");
        }

        ChildResult result = JsonSerializer.Deserialize<ChildResult>(File.ReadAllText(outFile))!;
        File.Delete(outFile);
        return result;
    }

    // VmHWM: the process's peak resident set since it started.
    private static long PeakResident()
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            {
                string[] parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return long.Parse(parts[1], CultureInfo.InvariantCulture) * 1024;
            }
        }

        return -1;
    }

    internal sealed record ChildResult(string Side, double[] Milliseconds, double[] Losses, long PeakBytes, double[] PageFaults);

    private sealed class LossRecorder(double[] losses) : NicheTune.Training.ITrainingCallback
    {
        public void OnStepEnd(in NicheTune.Training.StepEndArguments args)
        {
            if (args.Loss is { } loss && args.Step - 1 < losses.Length)
            {
                losses[args.Step - 1] = loss;
            }
        }
    }

    private sealed class CompositeCallback(StepRecorder recorder, LossRecorder losses) : NicheTune.Training.ITrainingCallback
    {
        public void OnStepEnd(in NicheTune.Training.StepEndArguments args)
        {
            losses.OnStepEnd(args);
            recorder.OnStepEnd(args);
        }
    }
}
