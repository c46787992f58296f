using FluentAssertions;
using NicheTune.Freezing;
using NicheTune.Models;
using NicheTune.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace NicheTune.Tests.Models;

[Collection(TorchCollection.Name)]
public sealed class LoRATests
{
    [Fact]
    public void Apply_Gpt2_AddsPeftNamedMatricesAndFreezesTheBase()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(3);
        using var model = new Gpt2LMHeadModel(LoRATestSupport.Gpt2());

        LoRAAdapter adapter = LoRA.Apply(model, new LoRAOptions { Rank = 4, Alpha = 8, Targets = ["c_attn"] });

        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        parameters["transformer.h.0.attn.c_attn.lora_A.weight"].shape.Should().Equal(4, 16);
        parameters["transformer.h.0.attn.c_attn.lora_B.weight"].shape.Should().Equal(48, 4);
        parameters.Keys.Should().Contain("transformer.h.1.attn.c_attn.lora_A.weight").And.Contain("transformer.h.0.attn.c_attn.weight");
        parameters.Where(p => p.Value.requires_grad).Select(p => p.Key).Should().BeEquivalentTo(
            "transformer.h.0.attn.c_attn.lora_A.weight", "transformer.h.0.attn.c_attn.lora_B.weight",
            "transformer.h.1.attn.c_attn.lora_A.weight", "transformer.h.1.attn.c_attn.lora_B.weight");
        adapter.AdaptedModules.Should().Equal("transformer.h.0.attn.c_attn", "transformer.h.1.attn.c_attn");
        adapter.Options.Scaling.Should().Be(2.0);
        LoRA.AdapterOf(model).Should().BeSameAs(adapter);
    }

    [Fact]
    public void Apply_Initialisation_IsKaimingUniformAForAndZeroB()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(5);
        using var model = new Gpt2LMHeadModel(LoRATestSupport.Gpt2(width: 64, heads: 4));

        LoRAAdapter adapter = LoRA.Apply(model, new LoRAOptions { Rank = 16, Targets = ["c_fc"] });

        // Kaiming-uniform with a = √5 on a [r, in] matrix is U(−1/√in, 1/√in), nn.Linear's own default.
        double bound = 1 / Math.Sqrt(64);
        foreach (LoRALayer layer in adapter.Layers)
        {
            double max = layer.A.abs().max().item<float>();
            max.Should().BeLessThanOrEqualTo(bound).And.BeGreaterThan(0.9 * bound, "1,024 uniform draws come close to the bound");
            layer.A.std().item<float>().Should().BeApproximately((float)(bound / Math.Sqrt(3)), 0.01f);
            torch.count_nonzero(layer.B).item<long>().Should().Be(0);
        }
    }

    [Fact]
    public void Apply_ZeroB_OutputEqualsTheBaseModelsExactly()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(7);
        using var model = new Gpt2LMHeadModel(LoRATestSupport.Gpt2());
        model.eval();
        Tensor ids = LoRATestSupport.Ids();
        Tensor before = model.forward(ids);

        LoRAAdapter adapter = LoRA.Apply(model, new LoRAOptions { Rank = 4, Targets = ["c_attn", "c_proj", "c_fc"] });
        Tensor after = model.forward(ids);

        Same(before, after).Should().BeTrue();
        adapter.UnusedModules.Should().BeEmpty("GPT-2 invokes every Conv1D through call(), so every hook ran");
        adapter.AdaptedModules.Should().HaveCount(8);
    }

    [Fact]
    public void Apply_TargetMatchingNothing_ThrowsNamingItAndTheClosestModulesAndLeavesTheModel()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new Gpt2LMHeadModel(LoRATestSupport.Gpt2());
        var names = model.named_parameters().Select(p => p.name).ToList();

        Action apply = () => LoRA.Apply(model, new LoRAOptions { Targets = ["c_attn", "c_atn", "q_proj"] });

        apply.Should().Throw<ArgumentException>()
            .Where(e => e.Message.Contains("'c_atn' matches no module", StringComparison.Ordinal)
                && e.Message.Contains("'c_attn'", StringComparison.Ordinal)
                && e.Message.Contains("'q_proj' matches no module", StringComparison.Ordinal));
        model.named_parameters().Select(p => p.name).Should().Equal(names);
        model.parameters().Should().OnlyContain(p => p.requires_grad);
        LoRA.AdapterOf(model).Should().BeNull();
    }

    [Fact]
    public void Apply_TargetThatIsNotALinearLayer_ThrowsNamingTheModuleType()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new Gpt2LMHeadModel(LoRATestSupport.Gpt2());

        Action apply = () => LoRA.Apply(model, new LoRAOptions { Targets = ["attn"] });

        apply.Should().Throw<ArgumentException>().WithMessage("*'transformer.h.0.attn', a Gpt2Attention*only nn.Linear and GPT-2 Conv1D*");
    }

    [Fact]
    public void Apply_InvalidOptions_ReportsEveryProblemAtOnce()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new TinyProjections();

        Action apply = () => LoRA.Apply(model, new LoRAOptions { Rank = 0, Alpha = -1, Dropout = 1.0, Targets = [] });

        apply.Should().Throw<ArgumentException>()
            .Where(e => e.Message.Contains("rank must be at least 1; got 0", StringComparison.Ordinal)
                && e.Message.Contains("alpha must be a positive finite number; got -1", StringComparison.Ordinal)
                && e.Message.Contains("dropout must be in [0, 1); got 1", StringComparison.Ordinal)
                && e.Message.Contains("at least one target", StringComparison.Ordinal));
    }

    [Fact]
    public void Apply_Twice_Throws()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new TinyProjections();
        LoRA.Apply(model, new LoRAOptions { Targets = ["q_proj"] });

        Action again = () => LoRA.Apply(model, new LoRAOptions { Targets = ["v_proj"] });

        again.Should().Throw<ArgumentException>().WithMessage("*already has lora_A modules*");
    }

    [Fact]
    public void Counts_AreTheLowRankMatricesAgainstTheWholeModel()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new TinyProjections(width: 12, classes: 3);
        long baseCount = model.parameters().Sum(p => p.numel());

        LoRAAdapter adapter = LoRA.Apply(model, new LoRAOptions { Rank = 2, Targets = ["q_proj", "v_proj"] });

        adapter.AdapterParameterCount.Should().Be(2 * 2 * (12 + 12));
        adapter.TrainableParameterCount.Should().Be(adapter.AdapterParameterCount);
        adapter.TotalParameterCount.Should().Be(baseCount + adapter.AdapterParameterCount);
        adapter.Describe().Should().StartWith($"trainable params: {adapter.TrainableParameterCount:N0} || all params: {adapter.TotalParameterCount:N0} || trainable%: ")
            .And.Contain("q_proj [12→12]").And.Contain("r=2, alpha=8");
    }

    [Fact]
    public void BiasAndModulesToSave_TrainWhatPeftTrains()
    {
        using var scope = torch.NewDisposeScope();
        using var loraOnly = new TinyProjections();
        using var all = new TinyProjections();

        LoRA.Apply(loraOnly, new LoRAOptions { Targets = ["q_proj", "o_proj"], Bias = LoRABias.LoRAOnly, ModulesToSave = ["score"] });
        LoRA.Apply(all, new LoRAOptions { Targets = ["q_proj"], Bias = LoRABias.All });

        Trainable(loraOnly).Should().BeEquivalentTo(
            "q_proj.lora_A.weight", "q_proj.lora_B.weight", "q_proj.bias", "o_proj.lora_A.weight", "o_proj.lora_B.weight", "score.weight", "score.bias");
        Trainable(all).Should().BeEquivalentTo("q_proj.lora_A.weight", "q_proj.lora_B.weight", "q_proj.bias", "v_proj.bias", "norm.bias", "score.bias");
    }

    [Fact]
    public void Merge_GivesTheUnmergedOutputAndUnmergeRestoresTheBaseWeights()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(11);
        using var model = new Gpt2LMHeadModel(LoRATestSupport.Gpt2());
        model.eval();
        var baseWeights = Weights.Snapshot(model);
        Tensor ids = LoRATestSupport.Ids();
        LoRAAdapter adapter = LoRA.Apply(model, new LoRAOptions { Rank = 4, Alpha = 16, Targets = ["c_attn", "c_fc", "c_proj"] });
        LoRATestSupport.Randomise(adapter);
        Tensor unmerged = model.forward(ids);
        Same(unmerged, model.forward(ids)).Should().BeTrue();

        adapter.Merge();
        Tensor merged = model.forward(ids);
        adapter.IsMerged.Should().BeTrue();
        adapter.Unmerge();

        (merged - unmerged).abs().max().item<float>().Should().BeLessThanOrEqualTo(1e-5f);
        (unmerged - model.forward(ids)).abs().max().item<float>().Should().BeLessThanOrEqualTo(1e-5f);
        var restored = Weights.Snapshot(model).Where(kv => baseWeights.ContainsKey(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value);
        Weights.MaxDifference(baseWeights, restored).Should().BeLessThanOrEqualTo(1e-6);
    }

    [Fact]
    public void Merge_OnLinearLayers_GivesTheUnmergedOutput()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(13);
        using var model = new TinyProjections();
        model.eval();
        Tensor x = torch.randn(5, 12);
        LoRAAdapter adapter = LoRA.Apply(model, new LoRAOptions { Rank = 3, Alpha = 6, Targets = ["q_proj", "v_proj", "o_proj"] });
        LoRATestSupport.Randomise(adapter);
        Tensor unmerged = model.forward(x);

        adapter.Merge();

        (model.forward(x) - unmerged).abs().max().item<float>().Should().BeLessThanOrEqualTo(1e-5f);
    }

    [Fact]
    public void Merge_MatchesTheDefinitionWithScalingAlphaOverRank()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(17);
        using var model = new TinyProjections();
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Tensor w = parameters["v_proj.weight"].detach().clone();
        LoRAAdapter adapter = LoRA.Apply(model, new LoRAOptions { Rank = 2, Alpha = 5, Targets = ["v_proj"] });
        LoRATestSupport.Randomise(adapter);

        adapter.Merge();

        LoRALayer layer = adapter.Layers[0];
        Tensor expected = w + 2.5 * torch.matmul(layer.B, layer.A);
        (parameters["v_proj.weight"] - expected).abs().max().item<float>().Should().BeLessThan(1e-6f);
    }

    [Fact]
    public void Remove_RestoresTheBaseModelExactly()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(19);
        using var model = new TinyProjections();
        model.eval();
        var original = Weights.Snapshot(model);
        var flags = LoRATestSupport.RequiresGrad(model);
        model.named_parameters().First(p => p.name == "norm.weight").parameter.requires_grad = false;
        flags["norm.weight"] = false;
        Tensor x = torch.randn(4, 12);
        Tensor before = model.forward(x);
        LoRAAdapter adapter = LoRA.Apply(model, new LoRAOptions { Targets = ["q_proj", "v_proj"], ModulesToSave = ["score"] });
        LoRATestSupport.Randomise(adapter);
        using (torch.no_grad())
        {
            model.named_parameters().First(p => p.name == "score.weight").parameter.add_(1.0);
        }

        adapter.Merge();
        adapter.Remove();

        adapter.IsRemoved.Should().BeTrue();
        LoRA.AdapterOf(model).Should().BeNull();
        Weights.MaxDifference(original, Weights.Snapshot(model)).Should().BeLessThanOrEqualTo(1e-6);
        Weights.Snapshot(model).Keys.Should().BeEquivalentTo(original.Keys);
        LoRATestSupport.RequiresGrad(model).Should().Equal(flags);
        (model.forward(x) - before).abs().max().item<float>().Should().BeLessThanOrEqualTo(1e-5f);
        adapter.Invoking(a => a.Merge()).Should().Throw<InvalidOperationException>().WithMessage("*removed*");
    }

    [Fact]
    public void MergeAndRemove_KeepsTheAdaptedOutputInPlainWeights()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(23);
        using var model = new Gpt2LMHeadModel(LoRATestSupport.Gpt2());
        model.eval();
        var names = model.named_parameters().Select(p => p.name).ToList();
        Tensor ids = LoRATestSupport.Ids();
        LoRAAdapter adapter = LoRA.Apply(model, new LoRAOptions { Rank = 4, Targets = ["c_attn", "mlp.c_proj"] });
        LoRATestSupport.Randomise(adapter);
        Tensor adapted = model.forward(ids);

        adapter.MergeAndRemove();

        model.named_parameters().Select(p => p.name).Should().Equal(names);
        (model.forward(ids) - adapted).abs().max().item<float>().Should().BeLessThanOrEqualTo(1e-5f);
    }

    [Fact]
    public void Targets_MatchWholeDotSeparatedSuffixesOnly()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new Gpt2LMHeadModel(LoRATestSupport.Gpt2());

        LoRAAdapter adapter = LoRA.Apply(model, new LoRAOptions { Targets = ["h.1.mlp.c_proj", "transformer.h.0.attn.c_proj"] });

        adapter.AdaptedModules.Should().Equal("transformer.h.0.attn.c_proj", "transformer.h.1.mlp.c_proj");
        LoRA.Matches("transformer.h.0.attn.c_proj", "proj").Should().BeFalse();
        LoRA.Matches("transformer.h.10.attn.c_proj", "0.attn.c_proj").Should().BeFalse();
    }

    [Fact]
    public void LayerMap_PutsLoRAParametersInTheirBlocksGroup()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new Gpt2LMHeadModel(LoRATestSupport.Gpt2());
        LoRA.Apply(model, new LoRAOptions { Targets = ["c_attn"] });

        LayerMap map = LayerMap.For(model);

        map.GroupOf("transformer.h.1.attn.c_attn.lora_B.weight").Name.Should().Be("layer 1");
        map.GroupOf("transformer.h.0.attn.c_attn.lora_A.weight").Name.Should().Be("layer 0");
    }

    [Fact]
    public void Dropout_AppliesToTheLowRankPathOnlyInTraining()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(29);
        using var model = new TinyProjections();
        Tensor x = torch.randn(6, 12);
        LoRAAdapter adapter = LoRA.Apply(model, new LoRAOptions { Targets = ["v_proj"], Dropout = 0.5 });
        model.named_modules().Select(m => m.name).Should().Contain("v_proj.lora_dropout");

        model.eval();
        Tensor baseOutput = model.forward(x);
        LoRATestSupport.Randomise(adapter);
        Tensor evalA = model.forward(x);
        Tensor evalB = model.forward(x);
        model.train();
        Tensor trainA = model.forward(x);
        Tensor trainB = model.forward(x);
        adapter.Merge();
        model.train();
        Tensor mergedTrain = model.forward(x);

        Same(evalA, evalB).Should().BeTrue();
        Same(evalA, baseOutput).Should().BeFalse();
        Same(trainA, trainB).Should().BeFalse("dropout masks the low-rank path's input afresh on every call");
        (mergedTrain - evalA).abs().max().item<float>().Should().BeLessThan(1e-5f, "merged, the model has no dropout of its own left");
    }

    [Fact]
    public void UnusedModules_ListsLayersWhoseParentBypassesHooks()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new TinyProjections(bypassHooks: true);
        LoRAAdapter adapter = LoRA.Apply(model, new LoRAOptions { Targets = ["q_proj", "v_proj"] });

        model.forward(torch.randn(2, 12));

        adapter.UnusedModules.Should().Equal("q_proj");
    }

    private static bool Same(Tensor a, Tensor b) => LoRATestSupport.Same(a, b);

    private static IEnumerable<string> Trainable(nn.Module model)
        => model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name);
}

[Collection(Gpt2DisposeScopeCollection.Name)]
public sealed class LoRADisposeScopeTests
{
    [Fact]
    public void ForwardBackwardMergeUnmerge_LeaveNoLiveTensors()
    {
        torch.manual_seed(61);
        using var model = new Gpt2LMHeadModel(LoRATestSupport.Gpt2());
        model.train();
        using var ids = torch.randint(0, 40, [2, 6], dtype: ScalarType.Int64);
        LoRAAdapter adapter = LoRA.Apply(model, new LoRAOptions { Rank = 4, Dropout = 0.1, Targets = ["c_attn", "c_fc"] });

        DisposeScopeManager.Statistics.Reset();
        using (torch.NewDisposeScope())
        {
            model.forward(ids).sum().backward();
        }

        adapter.Merge();
        adapter.Unmerge();

        var statistics = DisposeScopeManager.Statistics;
        statistics.CreatedOutsideScopeCount.Should().Be(0, statistics.ToString());
        statistics.ThreadTotalLiveCount.Should().Be(0, statistics.ToString());
        adapter.Layers.Should().OnlyContain(l => !ReferenceEquals(l.B.grad, null), "the low-rank path took part in the backward pass");
    }
}
