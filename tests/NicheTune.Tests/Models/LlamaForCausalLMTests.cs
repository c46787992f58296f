using System;
using System.Collections.Generic;
using System.Linq;
using FluentAssertions;
using NicheTune.Models;
using NicheTune.Tests.Support;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace NicheTune.Tests.Models;

[Collection(TorchCollection.Name)]
public sealed class LlamaForCausalLMTests
{
    internal const int Vocab = 40;

    internal static LlamaConfig TinyConfig(
        bool tied = false, int heads = 4, int? kvHeads = 2, string modelType = "llama", bool attentionBias = false,
        bool mlpBias = false, int? headDim = null, int hidden = 16, int layers = 2) => new()
    {
        ModelType = modelType,
        VocabularySize = Vocab,
        HiddenSize = hidden,
        IntermediateSize = 24,
        LayerCount = layers,
        HeadCount = heads,
        KeyValueHeadCount = kvHeads,
        HeadDimension = headDim,
        ContextLength = 32,
        RmsNormEpsilon = 1e-5,
        RopeTheta = 10000,
        TieWordEmbeddings = tied,
        AttentionBias = attentionBias,
        MlpBias = mlpBias,
        BosTokenId = 1,
        EosTokenIds = [2],
    };

    internal static Dictionary<string, Parameter> Parameters(nn.Module model) =>
        model.named_parameters().ToDictionary(p => p.name, p => p.parameter);

    /// <summary>Spreads every parameter (norm weights included) so the reference comparison exercises all of them.</summary>
    internal static void Randomize(nn.Module model, float std = 0.3f)
    {
        using var noGrad = torch.no_grad();
        foreach (var (_, p) in model.named_parameters())
        {
            p.normal_(0, std);
        }
    }

    [Fact]
    public void NamedParameters_TwoLayerUntied_AreExactlyHuggingFaceNamesInOrder()
    {
        var config = TinyConfig(tied: false, heads: 4, kvHeads: 2);
        using var model = new LlamaForCausalLM(config);

        var expected = new List<(string, long[])> { ("model.embed_tokens.weight", [Vocab, 16]) };
        for (var i = 0; i < 2; i++)
        {
            var p = $"model.layers.{i}.";
            expected.Add((p + "self_attn.q_proj.weight", [16, 16]));
            expected.Add((p + "self_attn.k_proj.weight", [8, 16]));
            expected.Add((p + "self_attn.v_proj.weight", [8, 16]));
            expected.Add((p + "self_attn.o_proj.weight", [16, 16]));
            expected.Add((p + "mlp.gate_proj.weight", [24, 16]));
            expected.Add((p + "mlp.up_proj.weight", [24, 16]));
            expected.Add((p + "mlp.down_proj.weight", [16, 24]));
            expected.Add((p + "input_layernorm.weight", [16]));
            expected.Add((p + "post_attention_layernorm.weight", [16]));
        }

        expected.Add(("model.norm.weight", [16]));
        expected.Add(("lm_head.weight", [Vocab, 16]));

        var actual = model.named_parameters().Select(p => (p.name, p.parameter.shape)).ToList();
        actual.Select(a => a.name).Should().Equal(expected.Select(e => e.Item1));
        for (var i = 0; i < expected.Count; i++)
        {
            actual[i].shape.Should().Equal(expected[i].Item2, because: expected[i].Item1);
        }

        model.state_dict().Keys.Should().Equal(expected.Select(e => e.Item1));
        model.named_buffers().Should().BeEmpty();
    }

    [Theory]
    [InlineData("llama", true, false, new[] { "self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias", "self_attn.o_proj.bias" })]
    [InlineData("qwen2", false, false, new[] { "self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias" })]
    [InlineData("mistral", false, false, new string[0])]
    [InlineData("llama", false, true, new[] { "mlp.gate_proj.bias", "mlp.up_proj.bias", "mlp.down_proj.bias" })]
    public void NamedParameters_BiasVariants_HaveExactlyTheHuggingFaceBiases(string modelType, bool attentionBias, bool mlpBias, string[] biases)
    {
        using var model = new LlamaForCausalLM(TinyConfig(modelType: modelType, attentionBias: attentionBias, mlpBias: mlpBias, layers: 1));

        var actual = model.named_parameters().Select(p => p.name).Where(n => n.EndsWith(".bias", StringComparison.Ordinal)).ToList();

        actual.Should().Equal(biases.Select(b => "model.layers.0." + b));
    }

    [Fact]
    public void NamedParameters_Tied_HaveNoLmHeadAndOutputWeightIsTheEmbedding()
    {
        using var model = new LlamaForCausalLM(TinyConfig(tied: true));
        var parameters = Parameters(model);

        parameters.Keys.Should().NotContain(k => k.StartsWith("lm_head", StringComparison.Ordinal));
        model.OutputWeight.Should().BeSameAs(parameters["model.embed_tokens.weight"]);

        using var untied = new LlamaForCausalLM(TinyConfig(tied: false));
        untied.OutputWeight.Should().BeSameAs(Parameters(untied)["lm_head.weight"]);
        (untied.parameters().Sum(p => p.numel()) - model.parameters().Sum(p => p.numel())).Should().Be(Vocab * 16);
    }

    [Theory]
    [InlineData(false, 4, 2, "llama", false, null)]
    [InlineData(true, 4, 1, "llama", false, null)]
    [InlineData(false, 4, null, "llama", true, null)]
    [InlineData(true, 2, 2, "qwen2", false, null)]
    [InlineData(false, 4, 2, "mistral", false, 6)]
    public void Forward_EvalMode_MatchesNaiveReference(bool tied, int heads, int? kvHeads, string modelType, bool attentionBias, int? headDim)
    {
        torch.manual_seed(21);
        var config = TinyConfig(tied, heads, kvHeads, modelType, attentionBias, mlpBias: attentionBias, headDim: headDim);
        using var model = new LlamaForCausalLM(config);
        Randomize(model);
        model.eval();
        using var ids = torch.randint(0, Vocab, [3, 9], dtype: ScalarType.Int64);

        using var scope = torch.NewDisposeScope();
        var actual = model.forward(ids);
        var expected = NaiveLlama.Logits(Parameters(model), config, ids, null);

        actual.shape.Should().Equal(3, 9, Vocab);
        MaxAbsDifference(actual, expected).Should().BeLessThan(1e-5);
    }

    [Fact]
    public void Forward_GroupedQueryAttention_DiffersFromSharingOneHeadPerQuery()
    {
        // With kv_heads < heads the key/value head must be shared by consecutive query heads (h / groups), not
        // interleaved (h % kv): an implementation with the wrong mapping gives different logits than the reference.
        torch.manual_seed(22);
        var config = TinyConfig(heads: 4, kvHeads: 2);
        using var model = new LlamaForCausalLM(config);
        Randomize(model);
        model.eval();
        using var ids = torch.randint(0, Vocab, [2, 7], dtype: ScalarType.Int64);

        using var scope = torch.NewDisposeScope();
        var actual = model.forward(ids);
        var right = NaiveLlama.Logits(Parameters(model), config, ids, null);
        var interleaved = NaiveLlama.Logits(Parameters(model), config, ids, null, interleavedGroups: true);

        MaxAbsDifference(actual, right).Should().BeLessThan(1e-5);
        MaxAbsDifference(actual, interleaved).Should().BeGreaterThan(1e-3);
    }

    [Fact]
    public void Forward_MaskWithLeftPaddingAndHoles_MatchesNaiveReferenceAtRealPositions()
    {
        torch.manual_seed(23);
        var config = TinyConfig();
        using var model = new LlamaForCausalLM(config);
        Randomize(model);
        model.eval();
        using var ids = torch.randint(0, Vocab, [2, 6], dtype: ScalarType.Int64);
        using var mask = torch.tensor(new long[] { 0, 0, 1, 1, 1, 1, 1, 0, 1, 1, 0, 1 }, [2, 6]);

        using var scope = torch.NewDisposeScope();
        var actual = model.forward(ids, mask);
        var expected = NaiveLlama.Logits(Parameters(model), config, ids, mask);
        var unmasked = model.forward(ids);

        var real = mask.to_type(ScalarType.Bool);
        MaxAbsDifference(actual[real], expected[real]).Should().BeLessThan(1e-5);
        MaxAbsDifference(actual[real], unmasked[real]).Should().BeGreaterThan(1e-3, because: "the mask must change what real tokens see");
    }

    [Fact]
    public void Forward_RightPaddedWithMask_RealTokensEqualEachSequenceRunAlone()
    {
        torch.manual_seed(24);
        using var model = new LlamaForCausalLM(TinyConfig());
        Randomize(model);
        model.eval();
        long[] lengths = [7, 3];
        using var ids = torch.randint(0, Vocab, [2, 7], dtype: ScalarType.Int64);
        using var mask = Gpt2LMHeadModelTests.RightPaddingMask(lengths, 7);
        using var changedPadding = ids.clone();
        changedPadding[1, TensorIndex.Slice(3)] = torch.tensor(5L);

        using var scope = torch.NewDisposeScope();
        var batched = model.forward(ids, mask);
        var otherPadding = model.forward(changedPadding, mask);
        for (var b = 0; b < lengths.Length; b++)
        {
            var alone = model.forward(ids[b].narrow(0, 0, lengths[b]).unsqueeze(0))[0];
            MaxAbsDifference(batched[b].narrow(0, 0, lengths[b]), alone).Should().BeLessThan(1e-5);
            MaxAbsDifference(batched[b].narrow(0, 0, lengths[b]), otherPadding[b].narrow(0, 0, lengths[b])).Should().BeLessThan(1e-6);
        }
    }

    [Fact]
    public void ForwardBackward_PaddingAndEmptyRow_HasNoNaNInLogitsOrGradients()
    {
        torch.manual_seed(25);
        using var model = new LlamaForCausalLM(TinyConfig(attentionBias: true));
        model.train();
        using var ids = torch.randint(0, Vocab, [3, 6], dtype: ScalarType.Int64);
        using var mask = Gpt2LMHeadModelTests.RightPaddingMask([6, 2, 0], 6);

        using var scope = torch.NewDisposeScope();
        var logits = model.forward(ids, mask);
        logits.isnan().any().item<bool>().Should().BeFalse();
        logits.sum().backward();

        foreach (var (name, p) in model.named_parameters())
        {
            p.grad.Should().NotBeNull(because: name);
            p.grad!.isfinite().all().item<bool>().Should().BeTrue(because: name);
        }
    }

    [Fact]
    public void Forward_ResultEqualsHiddenStatesTimesOutputWeight()
    {
        torch.manual_seed(26);
        using var model = new LlamaForCausalLM(TinyConfig(tied: true));
        model.eval();
        using var ids = torch.randint(0, Vocab, [2, 5], dtype: ScalarType.Int64);

        using var scope = torch.NewDisposeScope();
        var hidden = model.HiddenStates(ids);
        var logits = model.forward(ids);

        hidden.shape.Should().Equal(2, 5, 16);
        MaxAbsDifference(logits, hidden.matmul(model.OutputWeight.t())).Should().BeLessThan(1e-6);
    }

    [Fact]
    public void Forward_ForwardHookOnProjection_IsInvokedForEveryLayer()
    {
        // LoRA adapters attach as forward hooks, which only run when sub-layers are invoked with call().
        using var model = new LlamaForCausalLM(TinyConfig());
        var calls = new List<string>();
        foreach (var (name, module) in model.named_modules())
        {
            if (module is Linear linear && (name.EndsWith("v_proj", StringComparison.Ordinal) || name.EndsWith("down_proj", StringComparison.Ordinal) || name == "lm_head"))
            {
                linear.register_forward_hook((m, input, output) =>
                {
                    calls.Add(name);
                    return output;
                });
            }
        }

        using var ids = torch.zeros(1, 3, dtype: ScalarType.Int64);
        using (torch.NewDisposeScope())
        {
            model.forward(ids);
        }

        calls.Should().BeEquivalentTo(
            "model.layers.0.self_attn.v_proj", "model.layers.0.mlp.down_proj",
            "model.layers.1.self_attn.v_proj", "model.layers.1.mlp.down_proj", "lm_head");
    }

    [Fact]
    public void Constructor_LargerConfig_UsesHuggingFaceInitializationStatistics()
    {
        var config = new LlamaConfig
        {
            VocabularySize = 256,
            HiddenSize = 128,
            IntermediateSize = 256,
            LayerCount = 2,
            HeadCount = 4,
            KeyValueHeadCount = 2,
            ContextLength = 64,
            AttentionBias = true,
            PadTokenId = 0,
            BosTokenId = 1,
            EosTokenIds = [2],
        };
        torch.manual_seed(27);
        using var model = new LlamaForCausalLM(config);

        foreach (var (name, p) in model.named_parameters())
        {
            if (name.EndsWith("norm.weight", StringComparison.Ordinal))
            {
                p.eq(1f).all().item<bool>().Should().BeTrue(because: name);
            }
            else if (name.EndsWith(".bias", StringComparison.Ordinal))
            {
                p.eq(0f).all().item<bool>().Should().BeTrue(because: name);
            }
            else
            {
                var values = name == "model.embed_tokens.weight" ? p.narrow(0, 1, p.size(0) - 1) : p;
                values.std().item<float>().Should().BeApproximately(0.02f, 0.002f, because: name);
                Math.Abs(values.mean().item<float>()).Should().BeLessThan(0.002f, because: name);
            }
        }

        Parameters(model)["model.embed_tokens.weight"][0].eq(0f).all().item<bool>().Should().BeTrue("the pad_token_id row starts at zero as in HF");
    }

    [Fact]
    public void Constructor_InsideDisposeScope_ParametersOutliveTheScope()
    {
        LlamaForCausalLM model;
        using (torch.NewDisposeScope())
        {
            model = new LlamaForCausalLM(TinyConfig(attentionBias: true));
        }

        using (model)
        {
            model.parameters().Should().OnlyContain(p => !p.IsInvalid);
            using var ids = torch.zeros(1, 2, dtype: ScalarType.Int64);
            using var logits = model.forward(ids);
            logits.shape.Should().Equal(1, 2, Vocab);
        }
    }

    [Fact]
    public void To_Float64_KeepsNamesAndTyingAndStillRuns()
    {
        using var model = new LlamaForCausalLM(TinyConfig(tied: true));
        var names = model.named_parameters().Select(p => p.name).ToList();
        model.to(ScalarType.Float64);
        using var ids = torch.zeros(1, 3, dtype: ScalarType.Int64);

        using var scope = torch.NewDisposeScope();
        var logits = model.forward(ids);

        logits.dtype.Should().Be(ScalarType.Float64);
        model.OutputWeight.Should().BeSameAs(Parameters(model)["model.embed_tokens.weight"]);
        model.parameters().Should().OnlyContain(p => p.dtype == ScalarType.Float64);
        model.named_parameters().Select(p => p.name).Should().Equal(names);
    }

    [Fact]
    public void LayerMap_LlamaModel_GroupsEmbeddingsLayersAndHead()
    {
        using var model = new LlamaForCausalLM(TinyConfig());

        var map = NicheTune.Freezing.LayerMap.For(model);

        map.Groups.Select(g => (g.Kind, g.LayerIndex)).Should().Equal(
            (NicheTune.Freezing.LayerGroupKind.Embeddings, null),
            (NicheTune.Freezing.LayerGroupKind.Layer, 0),
            (NicheTune.Freezing.LayerGroupKind.Layer, 1),
            (NicheTune.Freezing.LayerGroupKind.Head, null));
        map.Groups.Sum(g => g.ParameterNames.Length).Should().Be(model.named_parameters().Count());
    }

    [Fact]
    public void Forward_InputLongerThanContext_ThrowsNamingLengthAndLimit()
    {
        using var model = new LlamaForCausalLM(TinyConfig());
        using var ids = torch.zeros(1, 33, dtype: ScalarType.Int64);

        var act = () => model.forward(ids);

        act.Should().Throw<ArgumentException>().WithMessage("*33*context length*32*").Which.ParamName.Should().Be("inputIds");
    }

    [Fact]
    public void Forward_MaskShapeDiffersFromIds_ThrowsArgumentException()
    {
        using var model = new LlamaForCausalLM(TinyConfig());
        using var ids = torch.zeros(2, 5, dtype: ScalarType.Int64);
        using var mask = torch.ones(2, 4, dtype: ScalarType.Int64);

        var act = () => model.forward(ids, mask);

        act.Should().Throw<ArgumentException>().Which.ParamName.Should().Be("attentionMask");
    }

    [Fact]
    public void Constructor_InvalidConfig_ThrowsBeforeAllocating()
    {
        var act = () => new LlamaForCausalLM(TinyConfig(heads: 4, kvHeads: 3));

        act.Should().Throw<ArgumentException>().WithMessage("*KeyValueHeadCount (3)*HeadCount (4)*").Which.ParamName.Should().Be("KeyValueHeadCount");
    }

    internal static double MaxAbsDifference(Tensor a, Tensor b)
    {
        using var scope = torch.NewDisposeScope();
        return (a.to_type(ScalarType.Float64) - b.to_type(ScalarType.Float64)).abs().max().item<double>();
    }
}

/// <summary>
/// A deliberately naive Llama written from the formulas in float64, one head and one rotary pair at a time with
/// angles computed in C#, so it shares no code path with the model under test.
/// </summary>
internal static class NaiveLlama
{
    public static Tensor Logits(IReadOnlyDictionary<string, Parameter> parameters, LlamaConfig c, Tensor ids, Tensor? paddingMask, bool interleavedGroups = false)
    {
        using var noGrad = torch.no_grad();
        var p = parameters.ToDictionary(kv => kv.Key, kv => kv.Value.to_type(ScalarType.Float64));
        long batch = ids.size(0), length = ids.size(1), d = c.HiddenSize;
        int heads = c.HeadCount, kvHeads = c.ResolvedKeyValueHeadCount, hd = c.ResolvedHeadDimension, groups = heads / kvHeads;

        var rows = new List<Tensor>();
        for (var b = 0; b < batch; b++)
        {
            for (var t = 0; t < length; t++)
            {
                rows.Add(p["model.embed_tokens.weight"][ids[b, t].item<long>()]);
            }
        }

        var x = torch.stack(rows).view(batch, length, d);

        var cos = new double[length, hd / 2];
        var sin = new double[length, hd / 2];
        for (var t = 0; t < length; t++)
        {
            for (var i = 0; i < hd / 2; i++)
            {
                var angle = t / Math.Pow(c.RopeTheta, 2.0 * i / hd);
                cos[t, i] = Math.Cos(angle);
                sin[t, i] = Math.Sin(angle);
            }
        }

        var future = torch.ones(length, length, dtype: ScalarType.Bool).triu(1);
        var disallowed = paddingMask is null
            ? future.unsqueeze(0).expand(batch, length, length)
            : future.unsqueeze(0).logical_or(paddingMask.eq(0).unsqueeze(1));

        for (var layer = 0; layer < c.LayerCount; layer++)
        {
            var prefix = $"model.layers.{layer}.";
            var h = RmsNorm(x, p[prefix + "input_layernorm.weight"], c.RmsNormEpsilon);
            var q = Linear(h, p, prefix + "self_attn.q_proj");
            var k = Linear(h, p, prefix + "self_attn.k_proj");
            var v = Linear(h, p, prefix + "self_attn.v_proj");

            var headOutputs = new List<Tensor>();
            for (var head = 0; head < heads; head++)
            {
                var kvHead = interleavedGroups ? head % kvHeads : head / groups;
                var qh = Rotate(q.narrow(2, head * hd, hd), cos, sin);
                var kh = Rotate(k.narrow(2, kvHead * hd, hd), cos, sin);
                var vh = v.narrow(2, kvHead * hd, hd);
                var scores = qh.matmul(kh.transpose(1, 2)) / Math.Sqrt(hd);
                var probabilities = scores.masked_fill(disallowed, double.NegativeInfinity).softmax(-1).nan_to_num(0);
                headOutputs.Add(probabilities.matmul(vh));
            }

            x = x + Linear(torch.cat(headOutputs, 2), p, prefix + "self_attn.o_proj");

            var h2 = RmsNorm(x, p[prefix + "post_attention_layernorm.weight"], c.RmsNormEpsilon);
            var gate = Linear(h2, p, prefix + "mlp.gate_proj");
            var silu = gate / (1 + (-gate).exp());
            x = x + Linear(silu * Linear(h2, p, prefix + "mlp.up_proj"), p, prefix + "mlp.down_proj");
        }

        x = RmsNorm(x, p["model.norm.weight"], c.RmsNormEpsilon);
        var output = c.TieWordEmbeddings ? p["model.embed_tokens.weight"] : p["lm_head.weight"];
        return x.matmul(output.t());
    }

    private static Tensor Linear(Tensor x, Dictionary<string, Tensor> p, string name)
    {
        var y = x.matmul(p[name + ".weight"].t());
        return p.TryGetValue(name + ".bias", out var bias) ? y + bias : y;
    }

    private static Tensor RmsNorm(Tensor x, Tensor weight, double eps) =>
        x / (x.pow(2).mean([-1L], keepdim: true) + eps).sqrt() * weight;

    /// <summary>Rotates each pair (i, i + D/2) of x [B, T, D] by position t's angle for pair i.</summary>
    private static Tensor Rotate(Tensor x, double[,] cos, double[,] sin)
    {
        var length = x.size(1);
        var half = x.size(2) / 2;
        var positions = new List<Tensor>();
        for (var t = 0; t < length; t++)
        {
            var firsts = new List<Tensor>();
            var seconds = new List<Tensor>();
            for (var i = 0; i < half; i++)
            {
                var a = x[.., t, (int)i];
                var b = x[.., t, (int)(i + half)];
                firsts.Add(a * cos[t, i] - b * sin[t, i]);
                seconds.Add(b * cos[t, i] + a * sin[t, i]);
            }

            positions.Add(torch.stack(firsts.Concat(seconds), 1));
        }

        return torch.stack(positions, 1);
    }
}
