using FluentAssertions;
using NicheTune.Freezing;
using NicheTune.Models;
using NicheTune.Scheduling;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;
using TorchSharp;
using Xunit;

namespace NicheTune.Tests.Training;

/// <summary>
/// The fast paths (flat-buffer AdamW, bf16 products) must not change what freezing, gradual unfreezing, per-layer rates,
/// clipping and LoRA do.
/// </summary>
[Collection(TorchCollection.Name)]
public sealed class FastPathTests
{
    private static readonly (List<TokenExample> Train, List<TokenExample> Validation) Foldoc =
        TestData.FoldocLanguageModeling(length: 32, trainEntries: 64, validationEntries: 16);

    private static Gpt2LMHeadModel Model(int seed)
    {
        torch.manual_seed(seed);
        return new Gpt2LMHeadModel(new Gpt2Config
        {
            VocabularySize = ByteTokenizer.VocabularySize, ContextLength = 32, EmbeddingSize = 32, LayerCount = 2, HeadCount = 2,
            TieWordEmbeddings = false, ResidualDropout = 0, EmbeddingDropout = 0, AttentionDropout = 0,
        });
    }

    [Fact]
    public void Fit_FlatAndPerTensorAdamW_GiveBitIdenticalWeightsThroughUnfreezingRatesAndClipping()
    {
        Dictionary<string, TorchSharp.torch.Tensor> Run(bool flat)
        {
            using var model = Model(seed: 31);
            FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling())
                .WithOptimizer(flat ? Optimizers.FlatAdamW(weightDecay: 0.05) : Optimizers.AdamW(weightDecay: 0.05))
                .Freeze(Freeze.UnfreezeGraduallyBySteps(3))
                .WithLayerwiseLearningRates(baseRate: 3e-3, decay: 0.7)
                .WithSchedule(Schedules.LinearWarmup(3).ThenCosine())
                .ClipGradientNorm(0.5)
                .WithBatchSize(8).WithMaxSteps(14).WithSeed(3)
                .Fit(Foldoc.Train);
            return Weights.Snapshot(model);
        }

        var perTensor = Run(flat: false);
        var flatBuffers = Run(flat: true);

        Weights.MaxDifference(perTensor, flatBuffers).Should().Be(0, "the flat optimizer does TorchSharp's arithmetic, operation for operation");
    }

    [Fact]
    public void Fit_Bf16WithBottomFrozen_KeepsFrozenTensorsBitIdenticalAndLearns()
    {
        using var model = Model(seed: 32);
        var before = Weights.Snapshot(model);
        MixedPrecision.CpuFlagsOverride = "avx512_bf16";
        FineTuneResult result;
        try
        {
            result = FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling()).WithPrecision(Precision.BFloat16)
                .Freeze(Freeze.Embeddings().And(Freeze.BottomLayers(1)))
                .WithLearningRate(3e-3).WithBatchSize(8).WithMaxSteps(24).EvaluateEvery(24)
                .Fit(Foldoc.Train, Foldoc.Validation);
        }
        finally
        {
            MixedPrecision.CpuFlagsOverride = null;
        }

        result.Precision.Should().Be(Precision.BFloat16);
        var after = Weights.Snapshot(model);
        foreach (string name in before.Keys.Where(n => n.StartsWith("transformer.w", StringComparison.Ordinal) || n.StartsWith("transformer.h.0.", StringComparison.Ordinal)))
        {
            Weights.MaxDifference(new Dictionary<string, TorchSharp.torch.Tensor> { [name] = before[name] }, new Dictionary<string, TorchSharp.torch.Tensor> { [name] = after[name] })
                .Should().Be(0, $"frozen '{name}' must not move");
        }

        Weights.MaxDifference(
            new Dictionary<string, TorchSharp.torch.Tensor> { ["h"] = before["transformer.h.1.mlp.c_fc.weight"] },
            new Dictionary<string, TorchSharp.torch.Tensor> { ["h"] = after["transformer.h.1.mlp.c_fc.weight"] }).Should().BeGreaterThan(0);
        result.FinalMetrics["validation.loss"].Should().BeLessThan(result.Evaluations[0].Metrics["validation.loss"] + 1e-9);
    }

    [Fact]
    public void Fit_Bf16WithLoRA_TrainsOnlyTheAdapterAndLowersTheLoss()
    {
        using var model = Model(seed: 33);
        var before = Weights.Snapshot(model);
        MixedPrecision.CpuFlagsOverride = "avx512_bf16";
        FineTuneResult result;
        try
        {
            result = FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling()).WithPrecision(Precision.BFloat16)
                .WithLoRA(rank: 4, alpha: 8, dropout: 0.0, "c_attn", "c_fc")
                .WithLearningRate(1e-2).WithBatchSize(8).WithMaxSteps(16).LogEvery(1)
                .Fit(Foldoc.Train);
        }
        finally
        {
            MixedPrecision.CpuFlagsOverride = null;
        }

        result.Precision.Should().Be(Precision.BFloat16);
        var after = Weights.Snapshot(model);
        Weights.Equal(before, after.Where(kv => before.ContainsKey(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value)).Should().BeTrue("the base stays frozen");
        result.TrainingLoss[^1].Loss.Should().BeLessThan(result.TrainingLoss[0].Loss);
    }
}
