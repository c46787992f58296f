using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using NicheTune.Benchmarks.Workload;

namespace NicheTune.Benchmarks;

/// <summary>
/// One optimizer step of the Trainer against the same step written by hand in TorchSharp, on the benchmark model.
/// Each invocation runs <see cref="Steps"/> steps from the same initial weights, optimizer construction and the first
/// step's state allocation included on both sides (a Fit has fixed set-up cost); the table reports per-step figures.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(Config))]
public class TrainingStepBenchmarks
{
    public const int Steps = 4;

    private TrainingWorkload? _workload;

    private TrainingWorkload Workload => _workload ?? throw new InvalidOperationException("GlobalSetup has not run.");

    [GlobalSetup]
    public void Setup() => _workload = TrainingWorkload.Create(ModelShape.Benchmark, Steps);

    [IterationSetup]
    public void ResetWeights() => Workload.ResetWeights();

    [Benchmark(Baseline = true, OperationsPerInvoke = Steps)]
    public void RawTorchSharpStep() => RawTrainingLoop.Run(Workload.Model, Workload.Batches, Steps);

    [Benchmark(OperationsPerInvoke = Steps)]
    public long TrainerSteps() => Workload.FitTrainer(Steps, callback: null).Steps;

    [GlobalCleanup]
    public void Cleanup()
    {
        _workload?.Dispose();
        _workload = null;
    }

    // Each invocation takes seconds: one launch, one warm-up and seven measured iterations of a single invocation keep
    // a full run of this class to about three minutes on two cores. Median and minimum beside the mean: on a shared
    // machine one disturbed iteration moves the mean far more than the Trainer does.
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
                .WithId("TrainingStep"));
        }
    }
}
