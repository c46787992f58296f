using FluentAssertions;
using NicheTune.Freezing;
using NicheTune.Models;
using NicheTune.Scheduling;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace NicheTune.Tests.Freezing;

[Collection(TorchCollection.Name)]
public sealed class FreezingTrainingTests
{
    private static readonly (List<TokenExample> Train, List<TokenExample> Validation) Foldoc =
        TestData.FoldocLanguageModeling(length: 32, trainEntries: 120, validationEntries: 20);

    private static Gpt2LMHeadModel Model(int layers = 4) => new(new Gpt2Config
    {
        VocabularySize = ByteTokenizer.VocabularySize, ContextLength = 32, EmbeddingSize = 32, LayerCount = layers, HeadCount = 2,
        TieWordEmbeddings = false, ResidualDropout = 0, EmbeddingDropout = 0, AttentionDropout = 0,
    });

    [Fact]
    public void Fit_BottomHalfFrozenOnFoldoc_LowersValidationLossAndKeepsFrozenTensorsBitIdentical()
    {
        torch.manual_seed(8);
        using var model = Model();
        var start = Weights.Snapshot(model);
        var plan = FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling())
            .Freeze(Freeze.Embeddings().And(Freeze.BottomLayers(0.5)))
            .WithLearningRate(3e-3).WithBatchSize(16).WithMaxSteps(60).Build();
        double before = plan.Evaluate(Foldoc.Validation)["validation.loss"];

        FineTuneResult result = plan.Fit(Foldoc.Train, Foldoc.Validation);

        result.FinalMetrics["validation.loss"].Should().BeLessThan(before - 0.5);
        var after = Weights.Snapshot(model);
        var map = LayerMap.For(model);
        foreach (string name in map.Find("embeddings")!.ParameterNames.Concat(map.Find("layer 0")!.ParameterNames).Concat(map.Find("layer 1")!.ParameterNames))
        {
            after[name].eq(start[name]).all().item<bool>().Should().BeTrue($"{name} is frozen");
        }

        after["transformer.h.3.attn.c_attn.weight"].eq(start["transformer.h.3.attn.c_attn.weight"]).all().item<bool>().Should().BeFalse();
        model.parameters().Should().OnlyContain(p => p.requires_grad, "Fit restores every requires_grad flag");
    }

    [Fact]
    public void Fit_Frozen_ComputesNoGradientForFrozenParametersAndKeepsThemOutOfTheOptimizer()
    {
        torch.manual_seed(8);
        using var model = Model();
        var seen = new GradientProbe(model);
        FineTuneResult result = FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling())
            .Freeze(Freeze.AllBut("head")).WithBatchSize(8).WithMaxSteps(2).WithCallback(seen).Fit(Foldoc.Train);

        seen.FrozenWithGradient.Should().BeEmpty();
        seen.TrainableNames.Should().BeEquivalentTo(["lm_head.weight"]);
        result.ParameterGroups.Should().Equal("head");
    }

    [Fact]
    public void Fit_GradualUnfreezing_FollowsTheTimelineAndAddsOptimizerGroups()
    {
        torch.manual_seed(8);
        using var model = Model(layers: 2);
        var timeline = new GradientProbe(model);
        FineTuneResult result = FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling())
            .Freeze(Freeze.UnfreezeGradually(everyEpochs: 1)).WithBatchSize(64).WithEpochs(5)
            .WithCallback(timeline).Fit(Foldoc.Train.Take(64).ToList());

        // One step per epoch: epoch 0 head; 1 + layer 1; 2 + layer 0; 3 + embeddings; 4 unchanged.
        timeline.TrainableGroupsPerStep.Select(g => string.Join(",", g)).Should().Equal(
            "head",
            "layer 1,head",
            "layer 0,layer 1,head",
            "embeddings,layer 0,layer 1,head",
            "embeddings,layer 0,layer 1,head");
        result.ParameterGroups.Should().Equal("head", "layer 1", "layer 1 (no decay)", "layer 0", "layer 0 (no decay)", "embeddings");
    }

    [Fact]
    public void ResumeFrom_DuringGradualUnfreezing_ReproducesTheUninterruptedRun()
    {
        using var folder = new TempFolder();
        var data = Foldoc.Train.Take(64).ToList();
        FineTunerBuilder<TokenBatch> Plan(nn.Module m) => FineTuner.For(m).WithObjective(Objectives.CausalLanguageModeling())
            .Freeze(Freeze.UnfreezeGradually(everyEpochs: 1)).WithBatchSize(16).WithEpochs(4).WithLearningRate(3e-3);
        torch.manual_seed(8);
        using var straight = Model(layers: 2);
        var initial = Weights.Snapshot(straight);
        Plan(straight).Fit(data);

        using var first = Model(layers: 2);
        first.load_state_dict(initial);
        Plan(first).SaveCheckpoints(folder.Path, everySteps: 6, keepLast: 3).WithCallback(new StopAtStep(6)).Fit(data);
        using var resumed = Model(layers: 2);
        Plan(resumed).ResumeFrom(folder.Path).Fit(data);

        Weights.Equal(Weights.Snapshot(resumed), Weights.Snapshot(straight)).Should().BeTrue();
    }

    [Fact]
    public void Fit_LayerwiseLearningRates_ReadBackFromTheOptimizer()
    {
        torch.manual_seed(8);
        using var model = Model(layers: 2);
        FineTuneResult result = FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling())
            .WithLayerwiseLearningRates(baseRate: 1e-3, decay: 0.5, headRate: 1e-2).RecordLearningRates()
            .WithBatchSize(16).WithMaxSteps(3).Fit(Foldoc.Train);

        var rates = result.ParameterGroups.Zip(result.LearningRates[2].Rates).ToDictionary(p => p.First, p => p.Second);
        rates["head"].Should().BeApproximately(1e-2, 1e-15);
        rates["layer 1"].Should().BeApproximately(1e-3 * 0.5, 1e-15);
        rates["layer 0"].Should().BeApproximately(1e-3 * 0.25, 1e-15);
        rates["embeddings"].Should().BeApproximately(1e-3 * 0.125, 1e-15);
        rates["layer 0 (no decay)"].Should().Be(rates["layer 0"]);
    }

    [Fact]
    public void Fit_ExplicitRatesPerGroup_ExpressTheSensitiveBottomInOneLine()
    {
        torch.manual_seed(8);
        using var model = Model(layers: 4);
        FineTuneResult result = FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling())
            .WithLearningRates(g => g.Kind == LayerGroupKind.Layer && g.LayerIndex < 2 || g.Kind == LayerGroupKind.Embeddings ? 1e-6 : 5e-5)
            .RecordLearningRates().WithBatchSize(16).WithMaxSteps(1).Fit(Foldoc.Train);

        var rates = result.ParameterGroups.Zip(result.LearningRates[0].Rates).ToDictionary(p => p.First, p => p.Second);
        rates["embeddings"].Should().Be(1e-6);
        rates["layer 1"].Should().Be(1e-6);
        rates["layer 2"].Should().Be(5e-5);
        rates["head"].Should().Be(5e-5);
    }

    [Fact]
    public void Fit_WeightDecay_SkipsBiasesAndNormWeights()
    {
        torch.manual_seed(8);
        using var model = Model(layers: 1);
        var start = Weights.Snapshot(model);
        // With every gradient zero, AdamW changes a weight only through decay: decayed weights shrink, no-decay ones stay.
        var objective = Objectives.Custom<TokenBatch>((m, b) => Objectives.CausalLanguageModeling().Loss(m, b) * 0.0);
        FineTuner.For(model).WithObjective(objective).WithOptimizer(Optimizers.AdamW(weightDecay: 0.5)).WithLearningRate(0.1)
            .WithBatchSize(16).WithMaxSteps(1).Fit(Foldoc.Train);

        var after = Weights.Snapshot(model);
        after["transformer.h.0.ln_1.weight"].eq(start["transformer.h.0.ln_1.weight"]).all().item<bool>().Should().BeTrue();
        after["transformer.h.0.attn.c_attn.bias"].eq(start["transformer.h.0.attn.c_attn.bias"]).all().item<bool>().Should().BeTrue();
        (after["transformer.h.0.attn.c_attn.weight"] - start["transformer.h.0.attn.c_attn.weight"] * 0.95).abs().max().item<float>().Should().BeLessThan(1e-6f);
    }

    [Fact]
    public void Fit_UserWrittenFreezeStrategy_PlugsInLikeABuiltIn()
    {
        torch.manual_seed(8);
        using var model = Model(layers: 2);
        var probe = new GradientProbe(model);
        FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling())
            .Freeze(new FreezeAttentionOnly().And(Freeze.Embeddings())).WithBatchSize(8).WithMaxSteps(1).WithCallback(probe).Fit(Foldoc.Train);

        probe.TrainableNames.Should().NotContain(n => n.Contains(".attn.") || n.Contains("wte") || n.Contains("wpe"));
        probe.TrainableNames.Should().Contain("transformer.h.0.mlp.c_fc.weight");
    }

    private sealed class FreezeAttentionOnly : IFreezeStrategy
    {
        public IReadOnlySet<string> Frozen(LayerMap map, FreezePosition position)
            => map.ParameterNames.Where(n => n.Contains(".attn.", StringComparison.Ordinal)).ToHashSet();
    }

    private sealed class StopAtStep(long step) : ITrainingCallback
    {
        public void OnStepEnd(in StepEndArguments args)
        {
            if (args.Step >= step)
            {
                args.Control.RequestStop("test");
            }
        }
    }

    /// <summary>Records, at each step end, which parameters train and whether a frozen one has a gradient.</summary>
    private sealed class GradientProbe(nn.Module model) : ITrainingCallback
    {
        public List<string> FrozenWithGradient { get; } = [];

        public List<string> TrainableNames { get; private set; } = [];

        public List<string[]> TrainableGroupsPerStep { get; } = [];

        public void OnStepEnd(in StepEndArguments args)
        {
            var map = LayerMap.For(model);
            TrainableNames = [.. map.ParameterNames.Where(map.IsTrainable)];
            TrainableGroupsPerStep.Add([.. map.Groups.Where(g => g.ParameterNames.Any(map.IsTrainable)).Select(g => g.Name)]);
            foreach (var (name, p) in model.named_parameters())
            {
                if (!p.requires_grad && p.grad is not null && p.grad.abs().sum().item<float>() != 0)
                {
                    FrozenWithGradient.Add(name);
                }
            }
        }
    }
}
