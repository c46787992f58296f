using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using NicheTune.Benchmarks.Workload;
using NicheTune.Models;
using NicheTune.Training;

namespace NicheTune.Benchmarks;

/// <summary>
/// A Trainer step with LoRA (rank <see cref="Rank"/> on every block's c_attn, c_proj and c_fc; base frozen) against a
/// full fine-tuning step, on the benchmark model with the same data and initial weights. Each invocation runs
/// <see cref="Steps"/> steps, applying the adapter (LoRA arm) and building the optimizer included, as in a real Fit.
/// Peak memory: BenchmarkDotNet runs each case in its own process, so the process's peak resident set (VmHWM) printed at
/// cleanup is that case's peak, set-up included; with LoRA there are no gradients and no AdamW moments for the base.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(Config))]
public class LoRABenchmarks
{
    public const int Steps = 4;

    private TrainingWorkload? _workload;

    /// <summary>The adapter's rank.</summary>
    [Params(8)]
    public int Rank { get; set; }

    private TrainingWorkload Workload => _workload ?? throw new InvalidOperationException("GlobalSetup has not run.");

    [GlobalSetup]
    public void Setup() => _workload = TrainingWorkload.Create(ModelShape.Benchmark, Steps);

    [IterationSetup]
    public void ResetWeights() => Workload.ResetWeights();

    [Benchmark(Baseline = true, OperationsPerInvoke = Steps)]
    public long FullFineTuningStep() => Workload.FitTrainer(Steps, callback: null).Steps;

    [Benchmark(OperationsPerInvoke = Steps)]
    public long LoRAStep()
    {
        FineTuneResult result = FineTuner.For(Workload.Model)
            .WithObjective(Objectives.CausalLanguageModeling())
            .WithLoRA(Rank, alpha: 2 * Rank, dropout: 0.0, "c_attn", "c_proj", "c_fc")
            .WithOptimizer(Optimizers.AdamW())
            .WithLearningRate(TrainingWorkload.LearningRate)
            .WithBatchSize(Workload.Shape.BatchSize)
            .ClipGradientNorm(TrainingWorkload.MaxGradientNorm)
            .WithMaxSteps(Steps)
            .ShuffleTrainingData(false)
            .LogEvery(TrainingWorkload.NoLogging)
            .Fit(Workload.Examples, null, new TokenCollator());
        // The next invocation resets the base weights by name; the adapter's parameters must be gone by then.
        LoRA.AdapterOf(Workload.Model)?.Remove();
        return result.Steps;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"// peak resident set (VmHWM) of this case's process: {PeakResidentMebibytes():F0} MiB"));
        _workload?.Dispose();
        _workload = null;
    }

    private static double PeakResidentMebibytes()
    {
        const string status = "/proc/self/status";
        if (!File.Exists(status))
        {
            return double.NaN;
        }

        string? line = File.ReadLines(status).FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        if (line is null)
        {
            return double.NaN;
        }

        ReadOnlySpan<char> value = line.AsSpan(line.IndexOf(':') + 1).Trim();
        int space = value.IndexOf(' ');
        return long.Parse(space < 0 ? value : value[..space], NumberStyles.Integer, CultureInfo.InvariantCulture) / 1024.0;
    }

    // As TrainingStepBenchmarks: one launch, one warm-up and seven single-invocation iterations per case.
    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddColumn(StatisticColumn.Median, StatisticColumn.Min);
            AddJob(Job.Default
                .WithLaunchCount(1)
                .WithWarmupCount(1)
                .WithIterationCount(7)
                .WithInvocationCount(1)
                .WithUnrollFactor(1)
                .WithId("LoRA"));
        }
    }
}
