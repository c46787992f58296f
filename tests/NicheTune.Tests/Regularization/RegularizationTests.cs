using FluentAssertions;
using NicheTune.Freezing;
using NicheTune.Models;
using NicheTune.Regularization;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace NicheTune.Tests.Regularization;

[Collection(TorchCollection.Name)]
public sealed class RegularizationTests
{
    private static readonly List<TokenExample> Train = TestData.FoldocLanguageModeling(length: 32, trainEntries: 60, validationEntries: 0).Train;

    private static Gpt2LMHeadModel Model(double dropout = 0.0) => new(new Gpt2Config
    {
        VocabularySize = ByteTokenizer.VocabularySize, ContextLength = 32, EmbeddingSize = 32, LayerCount = 2, HeadCount = 2,
        ResidualDropout = dropout, EmbeddingDropout = dropout, AttentionDropout = 0,
    });

    private static RegularizationBuilder Builder() => (RegularizationBuilder)Activator.CreateInstance(typeof(RegularizationBuilder), nonPublic: true)!;

    [Fact]
    public void L2SP_Penalty_EqualsHalfAlphaTimesSquaredDistanceAndItsGradient()
    {
        torch.manual_seed(2);
        using var model = new TinyClassifier(10, 2, width: 4);
        var regularizer = Builder().L2SP(0.2).Regularizers.Single();
        var map = LayerMap.For(model);
        var trainable = model.named_parameters().Select(p => (p.name, p.parameter)).ToList();
        var context = new RegularizationContext(model, map, CPU, () => trainable, null);
        regularizer.OnTrainingStart(context);
        using (torch.no_grad())
        {
            foreach (var p in model.parameters())
            {
                p.add_(0.5);
            }
        }

        // Every weight moved by 0.5: penalty = α/2 · n · 0.25, gradient = α · 0.5 per weight.
        long n = model.parameters().Sum(p => p.numel());
        using var penalty = regularizer.Penalty(context)!;
        penalty.item<float>().Should().BeApproximately((float)(0.2 / 2 * n * 0.25), 1e-4f);
        penalty.backward();
        model.parameters().Should().OnlyContain(p => (p.grad! - 0.1).abs().max().item<float>() < 1e-6);
        regularizer.OnTrainingEnd(context);
    }

    [Fact]
    public void L2SP_OnRealText_ReducesDriftFromThePretrainedWeights()
    {
        double Drift(Action<RegularizationBuilder>? regularize)
        {
            torch.manual_seed(5);
            using var model = Model();
            var start = Weights.Snapshot(model);
            var builder = FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling()).WithLearningRate(5e-3).WithBatchSize(16).WithMaxSteps(40);
            if (regularize is not null)
            {
                builder = builder.Regularize(regularize);
            }

            builder.Fit(Train);
            var end = Weights.Snapshot(model);
            return Math.Sqrt(start.Sum(kv => (end[kv.Key] - kv.Value).square().sum().item<float>()));
        }

        double plain = Drift(null);
        double anchored = Drift(r => r.L2SP(1.0));
        anchored.Should().BeLessThan(plain * 0.8, $"L2-SP pulls toward the start (plain drift {plain:F3})");
    }

    [Fact]
    public void Ema_FinalWeights_AreTheExponentialAverageOfTheStepSnapshots()
    {
        torch.manual_seed(3);
        using var model = new TinyClassifier(16, 2, width: 4);
        var data = Enumerable.Range(0, 32).Select(i => new TokenExample([2 + i % 9, 3], Label: i % 2)).ToList();
        var initial = Weights.Snapshot(model);
        var snapshots = new SnapshotEveryStep(model);
        const double decay = 0.8;

        FineTuneResult result = FineTuner.For(model).WithObjective(Objectives.SequenceClassification()).WithLearningRate(5e-2)
            .WithBatchSize(8).WithMaxSteps(5).Regularize(r => r.Ema(decay)).WithCallback(snapshots).Fit(data);

        result.AveragedWeights.Should().BeTrue();
        foreach (string name in initial.Keys)
        {
            Tensor expected = initial[name].clone();
            foreach (var snapshot in snapshots.Snapshots)
            {
                expected = decay * expected + (1 - decay) * snapshot[name];
            }

            (model.get_parameter(name)! - expected).abs().max().item<float>().Should().BeLessThan(1e-6f, name);
        }
    }

    [Fact]
    public void Swa_FinalWeights_AreTheArithmeticMeanFromTheStartStep()
    {
        torch.manual_seed(3);
        using var model = new TinyClassifier(16, 2, width: 4);
        var data = Enumerable.Range(0, 32).Select(i => new TokenExample([2 + i % 9, 3], Label: i % 2)).ToList();
        var snapshots = new SnapshotEveryStep(model);

        FineTuner.For(model).WithObjective(Objectives.SequenceClassification()).WithLearningRate(5e-2)
            .WithBatchSize(8).WithMaxSteps(8).Regularize(r => r.Swa(startFraction: 0.5)).WithCallback(snapshots).Fit(data);

        // Start step = ⌈0.5 · 8⌉ = 4: the mean of the weights after steps 4, 5, 6, 7, 8.
        foreach (string name in snapshots.Snapshots[0].Keys)
        {
            Tensor mean = torch.stack(snapshots.Snapshots.Skip(3).Select(s => s[name]).ToArray()).mean([0]);
            (model.get_parameter(name)! - mean).abs().max().item<float>().Should().BeLessThan(1e-6f, name);
        }
    }

    [Fact]
    public void Swa_LearningRate_AnnealsToTheConstantSwaRate()
    {
        torch.manual_seed(3);
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);
        FineTuneResult result = FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling()).WithLearningRate(1e-2)
            .WithBatchSize(4).WithMaxSteps(10).RecordLearningRates()
            .Regularize(r => r.Swa(startFraction: 0.5, learningRateFactor: 0.1, annealSteps: 2)).Fit(Train);

        double[] rates = [.. result.LearningRates.Select(r => r.Rates[0])];
        rates.Take(5).Should().OnlyContain(r => r == 1e-2, "before SWA starts (step index 5) the plan's constant schedule runs");
        rates[5].Should().BeApproximately(1e-2 * 0.5 + 1e-3 * 0.5, 1e-12, "half-way through the cosine anneal");
        rates.Skip(6).Should().OnlyContain(r => Math.Abs(r - 1e-3) < 1e-15);
    }

    [Fact]
    public void Dropout_Override_SetsEveryDropoutModule()
    {
        torch.manual_seed(3);
        using var model = Model(dropout: 0.1);
        FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling()).WithBatchSize(8).WithMaxSteps(1)
            .Regularize(r => r.Dropout(0.35)).Fit(Train);

        var dropouts = model.modules().OfType<Dropout>().ToList();
        dropouts.Should().NotBeEmpty();
        dropouts.Should().OnlyContain(d => d.p == 0.35);
    }

    [Fact]
    public void LabelSmoothing_ThroughRegularize_EqualsTheClosedForm()
    {
        torch.manual_seed(3);
        using var model = new TinyClassifier(16, 3, width: 4);
        var plan = FineTuner.For(model).WithObjective(Objectives.SequenceClassification()).Regularize(r => r.LabelSmoothing(0.2)).Build();
        using var batch = new TokenCollator().Collate([new TokenExample([2, 3], 0), new TokenExample([4], 2)]);

        using var loss = plan.Objective.Loss(model, batch);

        // Smoothed CE = (1 − ε)·CE + ε · mean over classes of −log p_c.
        using var logProbs = nn.functional.log_softmax(model.forward(batch.InputIds, batch.AttentionMask), 1);
        double ce = -(logProbs[0, 0].item<float>() + logProbs[1, 2].item<float>()) / 2;
        double uniform = -logProbs.mean().item<float>();
        loss.item<float>().Should().BeApproximately((float)(0.8 * ce + 0.2 * uniform), 1e-5f);
    }

    [Fact]
    public void LabelSmoothing_OnACustomObjective_IsAPlanProblem()
    {
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);
        var build = () => FineTuner.For(model).WithObjective(Objectives.Custom<TokenBatch>((m, b) => Objectives.CausalLanguageModeling().Loss(m, b)))
            .Regularize(r => r.LabelSmoothing(0.1)).Build();
        build.Should().Throw<FineTunePlanException>().WithMessage("*Label smoothing needs a cross-entropy objective*");
    }

    [Fact]
    public void ResumeFrom_WithEma_ReproducesTheUninterruptedAverage()
    {
        using var folder = new TempFolder();
        FineTunerBuilder<TokenBatch> Plan(nn.Module m) => FineTuner.For(m).WithObjective(Objectives.CausalLanguageModeling())
            .WithLearningRate(5e-3).WithBatchSize(8).WithMaxSteps(12).Regularize(r => r.Ema(0.9).L2SP(0.01));
        torch.manual_seed(6);
        using var straight = Model();
        var initial = Weights.Snapshot(straight);
        Plan(straight).Fit(Train);

        using var first = Model();
        first.load_state_dict(initial);
        Plan(first).SaveCheckpoints(folder.Path, everySteps: 6).WithCallback(new StopAt(6)).Fit(Train);
        using var resumed = Model();
        Plan(resumed).ResumeFrom(folder.Path).Fit(Train);

        Weights.Equal(Weights.Snapshot(resumed), Weights.Snapshot(straight)).Should().BeTrue();
    }

    [Fact]
    public void UserWrittenRegularizer_PenaltyIsAddedToTheLoss()
    {
        var counting = new CountingPenalty();
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);
        FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling()).WithBatchSize(8).WithMaxSteps(3).WithGradientAccumulation(2)
            .Regularize(r => r.Add(counting)).Fit(Train);
        counting.Calls.Should().Be(6, "one penalty per micro-batch");
        counting.Steps.Should().Be(3);
    }

    private sealed class CountingPenalty : IRegularizer
    {
        public int Calls { get; private set; }

        public int Steps { get; private set; }

        public string Name => "counting";

        public Tensor? Penalty(RegularizationContext context)
        {
            Calls++;
            return context.TrainableParameters[0].Parameter.sum() * 0;
        }

        public void OnOptimizerStep(RegularizationContext context, long step, long totalSteps) => Steps++;
    }

    private sealed class StopAt(long step) : ITrainingCallback
    {
        public void OnStepEnd(in StepEndArguments args)
        {
            if (args.Step >= step)
            {
                args.Control.RequestStop("test");
            }
        }
    }

    private sealed class SnapshotEveryStep(nn.Module model) : ITrainingCallback
    {
        public List<Dictionary<string, Tensor>> Snapshots { get; } = [];

        public void OnStepEnd(in StepEndArguments args)
        {
            using var noGrad = torch.no_grad();
            Snapshots.Add(model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone().DetachFromDisposeScope()));
        }
    }
}

[Collection(TorchCollection.Name)]
public sealed class SwaBatchNormTests
{
    /// <summary>Embedding → BatchNorm1d → linear classifier over mean-pooled tokens.</summary>
    private sealed class NormClassifier : nn.Module<Tensor, Tensor, Tensor>
    {
        private readonly Embedding embed;
        private readonly BatchNorm1d norm;
        private readonly Linear head;

        public NormClassifier() : base(nameof(NormClassifier))
        {
            embed = nn.Embedding(16, 4);
            norm = nn.BatchNorm1d(4);
            head = nn.Linear(4, 2);
            RegisterComponents();
        }

        public Tensor Features(Tensor ids, Tensor mask)
        {
            Tensor m = mask.unsqueeze(-1).to(ScalarType.Float32);
            return (embed.forward(ids) * m).sum(1) / m.sum(1).clamp_min(1);
        }

        public override Tensor forward(Tensor ids, Tensor mask) => head.forward(norm.forward(Features(ids, mask)));

        public BatchNorm1d Norm => norm;
    }

    [Fact]
    public void Swa_ModelWithBatchNorm_RecomputesRunningStatisticsForTheAveragedWeights()
    {
        torch.manual_seed(4);
        using var model = new NormClassifier();
        var data = Enumerable.Range(0, 32).Select(i => new TokenExample([2 + i % 9, 3 + i % 4], Label: i % 2)).ToList();

        FineTuneResult result = FineTuner.For(model).WithObjective(Objectives.SequenceClassification()).WithLearningRate(5e-2)
            .WithBatchSize(32).WithMaxSteps(6).Regularize(r => r.SwaFromEpoch(2)).Fit(data);

        result.AveragedWeights.Should().BeTrue();
        // One batch holds the whole data set, so the cumulative running mean is the features' mean under the averaged weights.
        using var batch = new TokenCollator().Collate(data);
        using var noGrad = torch.no_grad();
        using var features = model.Features(batch.InputIds, batch.AttentionMask);
        (model.Norm.running_mean! - features.mean([0])).abs().max().item<float>().Should().BeLessThan(1e-5f);
        (model.Norm.running_var! - features.var(0)).abs().max().item<float>().Should().BeLessThan(1e-4f, "running_var is the unbiased variance");
    }
}
