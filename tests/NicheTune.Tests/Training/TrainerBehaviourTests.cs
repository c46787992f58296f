using System.Diagnostics.Metrics;
using FluentAssertions;
using Microsoft.Extensions.Logging;
using NicheTune.Evaluation;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace NicheTune.Tests.Training;

[Collection(TorchCollection.Name)]
public sealed class TrainerBehaviourTests
{
    private static readonly List<TokenExample> Train = TestData.FoldocLanguageModeling(length: 32, trainEntries: 40, validationEntries: 0).Train;

    [Fact]
    public void Build_ManyInvalidSettings_ReportsEveryProblemAtOnce()
    {
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);
        var build = () => FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling())
            .WithLearningRate(-1).WithBatchSize(0).WithEpochs(0).WithGradientAccumulation(0).ClipGradientNorm(-2)
            .EarlyStopping("validation.f1", patience: 0).SaveCheckpoints("", everySteps: 0)
            .Build();

        var problems = build.Should().Throw<FineTunePlanException>().Which.Problems;
        problems.Should().HaveCount(9);
        problems.Should().Contain(p => p.Contains("Learning rate") && p.Contains("-1"));
        problems.Should().Contain(p => p.Contains("Batch size") && p.Contains('0'));
        problems.Should().Contain(p => p.Contains("'validation.f1'") && p.Contains("'validation.loss'"));
        problems.Should().Contain(p => p.Contains("Checkpoint directory"));
    }

    [Fact]
    public void Build_ModelWithoutTrainableParameters_ExplainsTheFix()
    {
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);
        foreach (var p in model.parameters())
        {
            p.requires_grad = false;
        }

        var build = () => FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling()).Build();
        build.Should().Throw<FineTunePlanException>().WithMessage("*no trainable parameter*");
    }

    [Fact]
    public void Fit_EarlyStoppingWithoutValidationData_Throws()
    {
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);
        var fit = () => FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling()).EarlyStopping("validation.loss").Fit(Train);
        fit.Should().Throw<FineTunePlanException>().WithMessage("*needs validation data*");
    }

    [Fact]
    public void Fit_NaNLossWithStopPolicy_ThrowsAndKeepsTheLastGoodWeights()
    {
        torch.manual_seed(1);
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);
        var recorder = new WeightsAtStep(model, 3);
        var fit = () => FineTuner.For(model).WithObjective(PoisonedAtCall(4)).WithBatchSize(4).ShuffleTrainingData(false)
            .WithCallback(recorder).Fit(Train);

        fit.Should().Throw<NonFiniteLossException>().Where(e => e.Step == 4 && e.Message.Contains("step 4"));
        Weights.Equal(Weights.Snapshot(model), recorder.Weights!).Should().BeTrue("a non-finite gradient never reaches the weights");
    }

    [Fact]
    public void Fit_GradientLeftBeforeFit_DoesNotReachTheFirstStep()
    {
        Dictionary<string, Tensor> Train3Steps(bool staleGradients)
        {
            torch.manual_seed(2);
            var model = new TinyCausalLm(ByteTokenizer.VocabularySize);
            if (staleGradients)
            {
                foreach (var p in model.parameters())
                {
                    p.grad = torch.full_like(p, 1000f);
                }
            }

            FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling()).WithBatchSize(4).WithMaxSteps(3).ShuffleTrainingData(false).Fit(Train);
            var weights = Weights.Snapshot(model);
            model.Dispose();
            return weights;
        }

        Weights.Equal(Train3Steps(staleGradients: true), Train3Steps(staleGradients: false)).Should()
            .BeTrue("a gradient from before Fit must be cleared, not added to the first step's");
    }

    [Fact]
    public void Fit_NaNLossWithSkipPolicy_SkipsThatUpdateAndContinues()
    {
        torch.manual_seed(1);
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);
        FineTuneResult result = FineTuner.For(model).WithObjective(PoisonedAtCall(4)).WithBatchSize(4).WithEpochs(1).ShuffleTrainingData(false)
            .OnNonFiniteLoss(NonFiniteLossPolicy.SkipStep).Fit(Train);

        int batches = (Train.Count + 3) / 4;
        result.SkippedSteps.Should().Be(1);
        result.Steps.Should().Be(batches - 1);
        model.parameters().All(p => p.isfinite().all().item<bool>()).Should().BeTrue();
    }

    [Fact]
    public void Fit_EveryLossNaNWithSkipPolicy_StopsAfterTheConsecutiveLimit()
    {
        torch.manual_seed(1);
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);
        var objective = Objectives.Custom<TokenBatch>((m, b) => Objectives.CausalLanguageModeling().Loss(m, b) * double.NaN);
        var fit = () => FineTuner.For(model).WithObjective(objective).WithBatchSize(4)
            .OnNonFiniteLoss(NonFiniteLossPolicy.SkipStep, maxConsecutiveSkips: 3).Fit(Train);
        fit.Should().Throw<NonFiniteLossException>().WithMessage("3 steps in a row*");
    }

    [Fact]
    public void Fit_CancelledDuringTraining_StopsWithinOneStepAndDisposesEveryBatch()
    {
        torch.manual_seed(1);
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);
        using var cancel = new CancellationTokenSource();
        var collator = new CountingCollator();
        var stepsSeen = new List<long>();
        var callback = new OnStep(args =>
        {
            stepsSeen.Add(args.Step);
            if (args.Step == 3)
            {
                cancel.Cancel();
            }
        });
        DisposeScopeManager.Statistics.Reset();

        var fit = () => FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling()).WithBatchSize(2).WithPrefetch(4)
            .WithCallback(callback).Build().Fit(Train, null, collator, cancel.Token);

        fit.Should().Throw<OperationCanceledException>();
        stepsSeen.Should().Equal(1, 2, 3);
        collator.Created.Should().BeGreaterThan(3);
        collator.Disposed.Should().Be(collator.Created, "batches prefetched but not trained on are disposed too");
        DisposeScopeManager.Statistics.CreatedInScopeCount.Should().Be(DisposeScopeManager.Statistics.DisposedInScopeCount, "every tensor made inside a step is freed");
    }

    [Fact]
    public void Fit_CollatorThrows_SurfacesTheErrorAndDisposesBatches()
    {
        torch.manual_seed(1);
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);
        var collator = new CountingCollator { FailOnCall = 3 };
        var fit = () => FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling()).WithBatchSize(2)
            .Build().Fit(Train, null, collator);

        fit.Should().Throw<InvalidOperationException>().WithMessage("collator failure*");
        collator.Disposed.Should().Be(collator.Created);
    }

    [Fact]
    public void Fit_ValidationLossRisesWithEarlyStopping_StopsAndRestoresTheBestWeights()
    {
        // Train on class = first byte parity, validate on the opposite labels: validation loss can only get worse
        // after the first evaluation, so the best weights are those of step 1.
        var train = Enumerable.Range(0, 64).Select(i => new TokenExample([2 + i % 50, 3 + i % 7], Label: i % 2)).ToList();
        var validation = train.Take(16).Select(e => e with { Label = 1 - e.Label }).ToList();
        torch.manual_seed(3);
        using var model = new TinyClassifier(64, 2);
        var atBest = new WeightsAtStep(model, 1);

        FineTuneResult result = FineTuner.For(model).WithObjective(Objectives.SequenceClassification())
            .WithLearningRate(5e-2).WithBatchSize(8).WithEpochs(20)
            .EvaluateEvery(1).EarlyStopping("validation.loss", patience: 3)
            .WithCallback(atBest).Fit(train, validation);

        result.StopReason.Should().Be(StopReason.EarlyStopped);
        result.Steps.Should().Be(4, "three evaluations without improvement after the best one at step 1");
        result.BestStep.Should().Be(1);
        result.RestoredBestWeights.Should().BeTrue();
        result.FinalMetrics["validation.loss"].Should().Be(result.BestMetric!.Value);
        Weights.Equal(Weights.Snapshot(model), atBest.Weights!).Should().BeTrue();
    }

    [Fact]
    public void Fit_EarlyStoppingOnAccuracyWithMinDelta_UsesHigherIsBetter()
    {
        var train = Enumerable.Range(0, 64).Select(i => new TokenExample([2 + i % 2, 5], Label: i % 2)).ToList();
        torch.manual_seed(3);
        using var model = new TinyClassifier(16, 2);

        FineTuneResult result = FineTuner.For(model).WithObjective(Objectives.SequenceClassification())
            .WithLearningRate(1e-1).WithBatchSize(16).WithEpochs(30)
            .Evaluate(Metrics.Accuracy()).EarlyStopping("validation.accuracy", patience: 2, minDelta: 0.01)
            .Fit(train, train);

        result.BestMetric.Should().Be(1.0, "the task is separable");
        result.StopReason.Should().Be(StopReason.EarlyStopped);
        result.Epochs.Length.Should().BeLessThan(30);
    }

    [Fact]
    public void Fit_CallbackRequestsStop_EndsAfterThatStepWithTheReason()
    {
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);
        var callback = new OnStep(args =>
        {
            if (args.Step == 2)
            {
                args.Control.RequestStop("enough");
            }
        });
        FineTuneResult result = FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling()).WithBatchSize(2).WithCallback(callback).Fit(Train);

        result.Steps.Should().Be(2);
        result.StopReason.Should().Be(StopReason.StoppedByCallback);
        result.StopMessage.Should().Be("enough");
    }

    [Fact]
    public void Fit_ProgressLoggingAndMeter_ReportAtLoggingSteps()
    {
        var reports = new List<TrainingProgress>();
        var logger = new ListLoggerProvider();
        using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(logger).SetMinimumLevel(LogLevel.Information));
        long stepsMeasured = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == TrainingInstruments.MeterName && instrument.Name == "nichetune.train.steps")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref stepsMeasured, value));
        listener.Start();
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);

        FineTuneResult result = FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling()).WithBatchSize(2).WithMaxSteps(10)
            .LogEvery(5).WithProgress(new SynchronousProgress(reports.Add)).WithLogging(loggerFactory).Fit(Train);

        reports.Select(r => r.Step).Should().Equal(5, 10);
        reports.Should().OnlyContain(r => r.TrainLoss > 0 && r.TotalSteps == 10 && r.TokensPerSecond > 0);
        result.TrainingLoss.Select(r => r.Step).Should().Equal(5, 10);
        logger.Events.Should().Contain(e => e.Id == 1 && e.Name == "TrainingStarted");
        logger.Events.Count(e => e.Name == "TrainingLoss").Should().Be(2);
        logger.Events.Should().Contain(e => e.Name == "TrainingFinished");
        Interlocked.Read(ref stepsMeasured).Should().BeGreaterThanOrEqualTo(10);
    }

    [Fact]
    public void Fit_CustomMetricAndObjective_PlugInLikeBuiltIns()
    {
        var metric = new MeanLossTimesTwo();
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);
        var objective = Objectives.Custom<TokenBatch>((m, b) => Objectives.CausalLanguageModeling().Loss(m, b), "my-objective");

        FineTuneResult result = FineTuner.For(model).WithObjective(objective).WithBatchSize(4).WithEpochs(1)
            .Evaluate(metric).Fit(Train, Train.Take(8).ToList());

        result.FinalMetrics["validation.twice-loss"].Should().BeApproximately(2 * result.FinalMetrics["validation.loss"], 1e-5);
    }

    [Fact]
    public async Task FitAsync_RunsOnItsOwnThreadAndReturnsTheResult()
    {
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);
        var plan = FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling()).WithBatchSize(4).WithMaxSteps(3).Build();
        FineTuneResult result = await plan.FitAsync(Train, null, new TokenCollator());
        result.Steps.Should().Be(3);
    }

    private static ITrainingObjective<TokenBatch> PoisonedAtCall(int call)
    {
        int calls = 0;
        var inner = Objectives.CausalLanguageModeling();
        return Objectives.Custom<TokenBatch>((m, b) => ++calls == call ? inner.Loss(m, b) * double.NaN : inner.Loss(m, b));
    }

    private sealed class WeightsAtStep(nn.Module model, long step) : ITrainingCallback
    {
        public Dictionary<string, Tensor>? Weights { get; private set; }

        public void OnStepEnd(in StepEndArguments args)
        {
            if (args.Step == step && !args.Skipped)
            {
                Weights = Support.Weights.Snapshot(model);
            }
        }
    }

    private sealed class OnStep(Action<StepEndArguments> action) : ITrainingCallback
    {
        public void OnStepEnd(in StepEndArguments args) => action(args);
    }

    private sealed class SynchronousProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }

    private sealed class MeanLossTimesTwo : IMetric
    {
        private double _sum;
        private long _count;

        public string Name => "twice-loss";

        public bool HigherIsBetter => false;

        public void Reset() => (_sum, _count) = (0, 0);

        public void Update(in MetricBatch batch)
        {
            _sum += batch.Loss.item<float>() * batch.Count;
            _count += batch.Count;
        }

        public double Compute() => 2 * _sum / _count;
    }

    private sealed class CountingCollator : ICollator<TokenExample, TokenBatch>
    {
        private readonly TokenCollator _inner = new();
        private int _created;
        private int _calls;

        public int Created => _created;

        public int Disposed => _batches.Count(b => b.InputIds.IsInvalid);

        public int FailOnCall { get; init; } = -1;

        private readonly System.Collections.Concurrent.ConcurrentBag<TokenBatch> _batches = [];

        public TokenBatch Collate(IReadOnlyList<TokenExample> examples)
        {
            if (Interlocked.Increment(ref _calls) == FailOnCall)
            {
                throw new InvalidOperationException("collator failure (test)");
            }

            TokenBatch batch = _inner.Collate(examples);
            _batches.Add(batch);
            Interlocked.Increment(ref _created);
            return batch;
        }
    }
}

internal sealed class ListLoggerProvider : ILoggerProvider
{
    public List<EventId> Events { get; } = [];

    public List<string> Messages { get; } = [];

    public ILogger CreateLogger(string categoryName) => new ListLogger(this);

    public void Dispose()
    {
    }

    private sealed class ListLogger(ListLoggerProvider owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (owner.Events)
            {
                owner.Events.Add(eventId);
                owner.Messages.Add(formatter(state, exception));
            }
        }
    }
}
