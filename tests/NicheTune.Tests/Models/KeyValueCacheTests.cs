using System;
using System.Collections.Generic;
using System.Linq;
using FluentAssertions;
using NicheTune.Models;
using NicheTune.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace NicheTune.Tests.Models;

public sealed class KeyValueCacheTests
{
    public static TheoryData<string> Models => new() { "gpt2-tied", "gpt2-untied", "llama-gqa", "qwen2-tied" };

    internal static ICausalLanguageModel CreateModel(string kind)
    {
        ICausalLanguageModel model = kind switch
        {
            "gpt2-tied" => new Gpt2LMHeadModel(Gpt2LMHeadModelTests.TinyConfig(tied: true)),
            "gpt2-untied" => new Gpt2LMHeadModel(Gpt2LMHeadModelTests.TinyConfig(tied: false)),
            "llama-gqa" => new LlamaForCausalLM(LlamaForCausalLMTests.TinyConfig(heads: 4, kvHeads: 2)),
            "qwen2-tied" => new LlamaForCausalLM(LlamaForCausalLMTests.TinyConfig(tied: true, heads: 4, kvHeads: 1, modelType: "qwen2")),
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown test model"),
        };
        var module = (nn.Module)model;
        LlamaForCausalLMTests.Randomize(module);
        module.eval();
        return model;
    }

    private static Tensor FullLogits(ICausalLanguageModel model, Tensor ids) => ((nn.Module<Tensor, Tensor>)model).forward(ids);

    [Theory]
    [MemberData(nameof(Models))]
    public void NextTokenLogits_OneTokenAtATime_EqualsFullForwardAtEveryPosition(string kind)
    {
        torch.manual_seed(31);
        var model = CreateModel(kind);
        using var disposeModel = (nn.Module)model;
        const int length = 12;
        using var ids = torch.randint(0, 40, [2, length], dtype: ScalarType.Int64);

        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var full = FullLogits(model, ids);
        using var cache = new KeyValueCache(model.LayerCount, initialCapacity: 3);
        for (var t = 0; t < length; t++)
        {
            var step = model.NextTokenLogits(ids.narrow(1, t, 1), cache);
            cache.Length.Should().Be(t + 1);
            LlamaForCausalLMTests.MaxAbsDifference(step, full.select(1, t)).Should().BeLessThan(1e-5, because: $"position {t}");
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void NextTokenLogits_PromptThenChunks_EqualsFullForward(string kind)
    {
        // Chunks of several tokens after a cached prefix need the offset causal mask (keys outnumber queries).
        torch.manual_seed(32);
        var model = CreateModel(kind);
        using var disposeModel = (nn.Module)model;
        using var ids = torch.randint(0, 40, [3, 11], dtype: ScalarType.Int64);

        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        using var cache = new KeyValueCache(model.LayerCount);
        var position = 0;
        foreach (var chunk in new[] { 5, 3, 1, 2 })
        {
            var step = model.NextTokenLogits(ids.narrow(1, position, chunk), cache);
            position += chunk;
            var expected = FullLogits(model, ids.narrow(1, 0, position)).select(1, position - 1);
            LlamaForCausalLMTests.MaxAbsDifference(step, expected).Should().BeLessThan(1e-5, because: $"after {position} tokens");
        }

        cache.Length.Should().Be(11);
        cache.BatchSize.Should().Be(3);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void NextTokenLogits_WithoutCache_EqualsLastPositionOfForward(string kind)
    {
        torch.manual_seed(33);
        var model = CreateModel(kind);
        using var disposeModel = (nn.Module)model;
        using var ids = torch.randint(0, 40, [2, 6], dtype: ScalarType.Int64);

        using var scope = torch.NewDisposeScope();
        var logits = model.NextTokenLogits(ids);

        logits.shape.Should().Equal(2, model.VocabularySize);
        LlamaForCausalLMTests.MaxAbsDifference(logits, FullLogits(model, ids).select(1, 5)).Should().BeLessThan(1e-6);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void NextTokenLogits_CacheWithGradientsEnabled_ThrowsInvalidOperation(string kind)
    {
        var model = CreateModel(kind);
        using var disposeModel = (nn.Module)model;
        using var ids = torch.zeros(1, 2, dtype: ScalarType.Int64);
        using var cache = new KeyValueCache(model.LayerCount);

        var act = () => model.NextTokenLogits(ids, cache);

        act.Should().Throw<InvalidOperationException>().WithMessage("*no_grad*");
        cache.Length.Should().Be(0);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void NextTokenLogits_BeyondContextLength_ThrowsAndLeavesCacheUnchanged(string kind)
    {
        var model = CreateModel(kind);
        using var disposeModel = (nn.Module)model;
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        using var cache = new KeyValueCache(model.LayerCount);
        model.NextTokenLogits(torch.zeros(1, model.ContextLength - 1, dtype: ScalarType.Int64), cache);

        var act = () => model.NextTokenLogits(torch.zeros(1, 2, dtype: ScalarType.Int64), cache);

        act.Should().Throw<ArgumentException>().WithMessage($"*{model.ContextLength}*");
        cache.Length.Should().Be(model.ContextLength - 1);
        model.NextTokenLogits(torch.zeros(1, 1, dtype: ScalarType.Int64), cache).shape.Should().Equal(1, model.VocabularySize);
    }

    [Fact]
    public void NextTokenLogits_CacheOfOtherModelOrBatch_ThrowsArgumentExceptionNamingCache()
    {
        var model = CreateModel("llama-gqa");
        using var disposeModel = (nn.Module)model;
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        using var wrongLayers = new KeyValueCache(model.LayerCount + 1);
        using var cache = new KeyValueCache(model.LayerCount);
        model.NextTokenLogits(torch.zeros(2, 3, dtype: ScalarType.Int64), cache);

        var layers = () => model.NextTokenLogits(torch.zeros(1, 1, dtype: ScalarType.Int64), wrongLayers);
        var batch = () => model.NextTokenLogits(torch.zeros(3, 1, dtype: ScalarType.Int64), cache);

        layers.Should().Throw<ArgumentException>().WithMessage("*3 layers*2*").Which.ParamName.Should().Be("cache");
        batch.Should().Throw<ArgumentException>().WithMessage("*batch of 2*3*").Which.ParamName.Should().Be("cache");
    }

    [Fact]
    public void NextTokenLogits_CacheFilledByModelWithOtherHeads_ThrowsInsteadOfReadingGarbage()
    {
        var gpt2 = CreateModel("gpt2-tied");
        var llama = CreateModel("qwen2-tied");
        using var disposeGpt2 = (nn.Module)gpt2;
        using var disposeLlama = (nn.Module)llama;
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        using var cache = new KeyValueCache(2);
        gpt2.NextTokenLogits(torch.zeros(1, 3, dtype: ScalarType.Int64), cache);

        var act = () => llama.NextTokenLogits(torch.zeros(1, 1, dtype: ScalarType.Int64), cache);

        act.Should().Throw<ArgumentException>().WithMessage("*one cache per model*").Which.ParamName.Should().Be("cache");
    }

    [Fact]
    public void Reset_ThenNewSequence_EqualsFreshCache()
    {
        torch.manual_seed(34);
        var model = CreateModel("gpt2-tied");
        using var disposeModel = (nn.Module)model;
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        using var ids = torch.randint(0, 40, [1, 4], dtype: ScalarType.Int64);
        using var cache = new KeyValueCache(model.LayerCount);
        model.NextTokenLogits(torch.randint(0, 40, [1, 7], dtype: ScalarType.Int64), cache);

        cache.Reset();
        var reused = model.NextTokenLogits(ids, cache);

        cache.Length.Should().Be(4);
        LlamaForCausalLMTests.MaxAbsDifference(reused, model.NextTokenLogits(ids)).Should().BeLessThan(1e-6);
    }

    [Fact]
    public void Constructor_NonPositiveLayers_ThrowsNamingParameter()
    {
        var act = () => new KeyValueCache(0);

        act.Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("layerCount");
    }

    [Fact]
    public void Dispose_Twice_IsHarmlessAndUseAfterDisposeThrows()
    {
        var model = CreateModel("llama-gqa");
        using var disposeModel = (nn.Module)model;
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var cache = new KeyValueCache(model.LayerCount);
        model.NextTokenLogits(torch.zeros(1, 2, dtype: ScalarType.Int64), cache);

        cache.Dispose();
        cache.Dispose();
        var act = () => model.NextTokenLogits(torch.zeros(1, 1, dtype: ScalarType.Int64), cache);

        act.Should().Throw<ObjectDisposedException>();
    }
}

[Collection(TorchCollection.Name)]
public sealed class KeyValueCacheDisposeScopeTests
{
    [Theory]
    [InlineData("gpt2-tied")]
    [InlineData("llama-gqa")]
    public void CachedDecoding_OnlyTheCacheStorageOutlivesTheStepScopes(string kind)
    {
        torch.manual_seed(35);
        var model = KeyValueCacheTests.CreateModel(kind);
        using var disposeModel = (nn.Module)model;
        using var noGrad = torch.no_grad();

        DisposeScopeManager.Statistics.Reset();
        var cache = new KeyValueCache(model.LayerCount, initialCapacity: 2);
        for (var t = 0; t < 6; t++)
        {
            using var step = torch.NewDisposeScope();
            model.NextTokenLogits(torch.full(1, t == 0 ? 3 : 1, 7L, dtype: ScalarType.Int64), cache);
        }

        // One key and one value tensor per layer, grown in place of the old ones.
        DisposeScopeManager.Statistics.ThreadTotalLiveCount.Should().Be(2 * model.LayerCount, because: DisposeScopeManager.Statistics.ToString());
        cache.Dispose();
        DisposeScopeManager.Statistics.ThreadTotalLiveCount.Should().Be(0, because: DisposeScopeManager.Statistics.ToString());
    }
}
