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
public sealed class Gpt2LMHeadModelTests
{
    private const int Vocab = 50;
    private const int Context = 16;
    private const int Width = 8;
    private const int Heads = 2;
    private const int Layers = 2;

    internal static Gpt2Config TinyConfig(bool tied = true) => new()
    {
        VocabularySize = Vocab,
        ContextLength = Context,
        EmbeddingSize = Width,
        HeadCount = Heads,
        LayerCount = Layers,
        TieWordEmbeddings = tied,
    };

    private static List<(string Name, long[] Shape)> ExpectedHfParameters(Gpt2Config c)
    {
        long v = c.VocabularySize, d = c.EmbeddingSize, ctx = c.ContextLength, inner = c.ResolvedInnerSize;
        var expected = new List<(string, long[])>
        {
            ("transformer.wte.weight", [v, d]),
            ("transformer.wpe.weight", [ctx, d]),
        };
        for (var i = 0; i < c.LayerCount; i++)
        {
            var p = $"transformer.h.{i}.";
            expected.Add((p + "ln_1.weight", [d]));
            expected.Add((p + "ln_1.bias", [d]));
            expected.Add((p + "attn.c_attn.weight", [d, 3 * d]));
            expected.Add((p + "attn.c_attn.bias", [3 * d]));
            expected.Add((p + "attn.c_proj.weight", [d, d]));
            expected.Add((p + "attn.c_proj.bias", [d]));
            expected.Add((p + "ln_2.weight", [d]));
            expected.Add((p + "ln_2.bias", [d]));
            expected.Add((p + "mlp.c_fc.weight", [d, inner]));
            expected.Add((p + "mlp.c_fc.bias", [inner]));
            expected.Add((p + "mlp.c_proj.weight", [inner, d]));
            expected.Add((p + "mlp.c_proj.bias", [d]));
        }

        expected.Add(("transformer.ln_f.weight", [d]));
        expected.Add(("transformer.ln_f.bias", [d]));
        if (!c.TieWordEmbeddings)
        {
            expected.Add(("lm_head.weight", [v, d]));
        }

        return expected;
    }

    private static Dictionary<string, Parameter> Parameters(Gpt2LMHeadModel model) =>
        model.named_parameters().ToDictionary(p => p.name, p => p.parameter);

    /// <summary>Spreads every parameter so that the reference comparison exercises every weight and bias.</summary>
    private static void Randomize(Gpt2LMHeadModel model, float std = 0.5f)
    {
        using var noGrad = torch.no_grad();
        foreach (var (_, p) in model.named_parameters())
        {
            p.normal_(0, std);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void NamedParameters_TinyConfig_MatchHuggingFaceNamesAndShapesInOrder(bool tied)
    {
        var config = TinyConfig(tied);
        using var model = new Gpt2LMHeadModel(config);

        var actual = model.named_parameters().Select(p => (p.name, p.parameter.shape)).ToList();
        var expected = ExpectedHfParameters(config);

        actual.Select(a => a.name).Should().Equal(expected.Select(e => e.Name));
        for (var i = 0; i < expected.Count; i++)
        {
            actual[i].shape.Should().Equal(expected[i].Shape, because: expected[i].Name);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void StateDict_TinyConfig_HasOnlyHuggingFaceParameterNames(bool tied)
    {
        var config = TinyConfig(tied);
        using var model = new Gpt2LMHeadModel(config);

        model.state_dict().Keys.Should().Equal(ExpectedHfParameters(config).Select(e => e.Name));
        model.named_buffers().Should().BeEmpty();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Forward_EvalMode_MatchesNaiveReference(bool tied)
    {
        torch.manual_seed(1);
        using var model = new Gpt2LMHeadModel(TinyConfig(tied));
        Randomize(model);
        model.eval();
        using var ids = torch.randint(0, Vocab, [3, 11], dtype: ScalarType.Int64);

        using var scope = torch.NewDisposeScope();
        var actual = model.forward(ids);
        var expected = NaiveGpt2.Logits(Parameters(model), model.Config, ids, null);

        actual.shape.Should().Equal(3, 11, Vocab);
        MaxAbsDifference(actual, expected).Should().BeLessThan(1e-5);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Forward_RightPaddedWithMask_MatchesNaiveReferenceAtRealPositions(bool tied)
    {
        torch.manual_seed(2);
        using var model = new Gpt2LMHeadModel(TinyConfig(tied));
        Randomize(model);
        model.eval();
        long[] lengths = [9, 4, 1];
        using var ids = torch.randint(0, Vocab, [3, 9], dtype: ScalarType.Int64);
        using var mask = RightPaddingMask(lengths, 9);

        using var scope = torch.NewDisposeScope();
        var actual = model.forward(ids, mask);
        var expected = NaiveGpt2.Logits(Parameters(model), model.Config, ids, mask);

        for (var b = 0; b < lengths.Length; b++)
        {
            var real = lengths[b];
            MaxAbsDifference(actual[b].narrow(0, 0, real), expected[b].narrow(0, 0, real))
                .Should().BeLessThan(1e-5, because: $"sequence {b} has {real} real tokens");
        }
    }

    [Fact]
    public void Forward_MaskWithLeftPaddingAndHoles_MatchesNaiveReferenceAtRealPositions()
    {
        // With right padding, causality alone already hides the padding from real tokens; left padding
        // and holes are what prove that masked keys are really excluded.
        torch.manual_seed(12);
        using var model = new Gpt2LMHeadModel(TinyConfig());
        Randomize(model);
        model.eval();
        using var ids = torch.randint(0, Vocab, [2, 6], dtype: ScalarType.Int64);
        using var mask = torch.tensor(new long[] { 0, 0, 1, 1, 1, 1, 1, 0, 1, 1, 0, 1 }, [2, 6]);

        using var scope = torch.NewDisposeScope();
        var actual = model.forward(ids, mask);
        var expected = NaiveGpt2.Logits(Parameters(model), model.Config, ids, mask);
        var unmasked = model.forward(ids);

        var real = mask.to_type(ScalarType.Bool);
        MaxAbsDifference(actual[real], expected[real]).Should().BeLessThan(1e-5);
        MaxAbsDifference(actual[real], unmasked[real]).Should().BeGreaterThan(1e-3, because: "the mask must change what real tokens see");
    }

    [Fact]
    public void Forward_RightPaddedWithMask_EqualsEachSequenceRunAlone()
    {
        torch.manual_seed(3);
        using var model = new Gpt2LMHeadModel(TinyConfig());
        Randomize(model);
        model.eval();
        long[] lengths = [7, 3];
        using var ids = torch.randint(0, Vocab, [2, 7], dtype: ScalarType.Int64);
        using var mask = RightPaddingMask(lengths, 7);

        using var scope = torch.NewDisposeScope();
        var batched = model.forward(ids, mask);
        for (var b = 0; b < lengths.Length; b++)
        {
            var alone = model.forward(ids[b].narrow(0, 0, lengths[b]).unsqueeze(0))[0];
            MaxAbsDifference(batched[b].narrow(0, 0, lengths[b]), alone).Should().BeLessThan(1e-5);
        }
    }

    [Fact]
    public void Forward_AllOnesMask_EqualsForwardWithoutMask()
    {
        torch.manual_seed(4);
        using var model = new Gpt2LMHeadModel(TinyConfig());
        Randomize(model);
        model.eval();
        using var ids = torch.randint(0, Vocab, [2, 10], dtype: ScalarType.Int64);

        using var scope = torch.NewDisposeScope();
        var withMask = model.forward(ids, torch.ones(2, 10, dtype: ScalarType.Int64));
        var withoutMask = model.forward(ids);

        MaxAbsDifference(withMask, withoutMask).Should().BeLessThan(1e-6);
    }

    [Fact]
    public void ForwardBackward_MaskWithPaddingAndEmptyRow_HasNoNaNInLogitsOrGradients()
    {
        torch.manual_seed(5);
        using var model = new Gpt2LMHeadModel(TinyConfig());
        model.train();
        using var ids = torch.randint(0, Vocab, [3, 6], dtype: ScalarType.Int64);
        using var mask = RightPaddingMask([6, 2, 0], 6);

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

    [Theory]
    [InlineData(0)]
    [InlineData(4)]
    [InlineData(10)]
    public void Forward_ChangeTokenAfterPosition_LeavesEarlierLogitsUnchanged(int position)
    {
        torch.manual_seed(6);
        using var model = new Gpt2LMHeadModel(TinyConfig());
        Randomize(model);
        model.eval();
        const int length = 12;
        using var ids = torch.randint(0, Vocab, [2, length], dtype: ScalarType.Int64);
        using var changed = ids.clone();
        changed[.., position + 1] = (ids[.., position + 1] + 1).remainder(Vocab);

        using var scope = torch.NewDisposeScope();
        var before = model.forward(ids);
        var after = model.forward(changed);

        MaxAbsDifference(before.narrow(1, 0, position + 1), after.narrow(1, 0, position + 1))
            .Should().BeLessThan(1e-6);
        MaxAbsDifference(before.narrow(1, position + 1, 1), after.narrow(1, position + 1, 1))
            .Should().BeGreaterThan(1e-4, because: "the changed token itself must affect its own logits");
    }

    [Fact]
    public void Constructor_SameSeedTwice_ProducesIdenticalParameters()
    {
        torch.manual_seed(1234);
        using var first = new Gpt2LMHeadModel(TinyConfig(tied: false));
        torch.manual_seed(1234);
        using var second = new Gpt2LMHeadModel(TinyConfig(tied: false));
        torch.manual_seed(4321);
        using var third = new Gpt2LMHeadModel(TinyConfig(tied: false));

        var a = Parameters(first);
        var b = Parameters(second);
        var c = Parameters(third);
        foreach (var (name, p) in a)
        {
            Identical(p, b[name]).Should().BeTrue(because: name);
        }

        Identical(a["transformer.wte.weight"], c["transformer.wte.weight"]).Should().BeFalse();
    }

    [Fact]
    public void Constructor_LargerConfig_UsesHuggingFaceInitializationStatistics()
    {
        var config = new Gpt2Config
        {
            VocabularySize = 64,
            ContextLength = 32,
            EmbeddingSize = 256,
            HeadCount = 4,
            LayerCount = 8,
            TieWordEmbeddings = false,
        };
        torch.manual_seed(7);
        using var model = new Gpt2LMHeadModel(config);

        var range = config.InitializerRange;
        var projectionStd = range / Math.Sqrt(2.0 * config.LayerCount);
        foreach (var (name, p) in model.named_parameters())
        {
            if (name.EndsWith("c_proj.weight", StringComparison.Ordinal))
            {
                p.std().item<float>().Should().BeApproximately((float)projectionStd, (float)(0.1 * projectionStd), because: name);
                Math.Abs(p.mean().item<float>()).Should().BeLessThan((float)(0.1 * projectionStd), because: name);
            }
            else if (name.StartsWith("transformer.ln_", StringComparison.Ordinal) || name.Contains(".ln_", StringComparison.Ordinal))
            {
                var expected = name.EndsWith(".weight", StringComparison.Ordinal) ? 1f : 0f;
                p.eq(expected).all().item<bool>().Should().BeTrue(because: name);
            }
            else if (name.EndsWith(".bias", StringComparison.Ordinal))
            {
                p.eq(0f).all().item<bool>().Should().BeTrue(because: name);
            }
            else
            {
                p.std().item<float>().Should().BeApproximately((float)range, (float)(0.1 * range), because: name);
                Math.Abs(p.mean().item<float>()).Should().BeLessThan((float)(0.1 * range), because: name);
            }
        }
    }

    [Fact]
    public void Forward_InputLongerThanContext_ThrowsArgumentExceptionNamingLengthAndLimit()
    {
        using var model = new Gpt2LMHeadModel(TinyConfig());
        using var ids = torch.zeros(1, Context + 1, dtype: ScalarType.Int64);

        var act = () => model.forward(ids);

        act.Should().Throw<ArgumentException>()
            .WithMessage($"*{Context + 1}*context length*{Context}*")
            .Which.ParamName.Should().Be("inputIds");
    }

    [Fact]
    public void Forward_MaskShapeDiffersFromIds_ThrowsArgumentException()
    {
        using var model = new Gpt2LMHeadModel(TinyConfig());
        using var ids = torch.zeros(2, 5, dtype: ScalarType.Int64);
        using var mask = torch.ones(2, 4, dtype: ScalarType.Int64);

        var act = () => model.forward(ids, mask);

        act.Should().Throw<ArgumentException>().Which.ParamName.Should().Be("attentionMask");
    }

    [Fact]
    public void OutputWeight_Tied_IsTheTokenEmbeddingParameterAndSharesData()
    {
        using var model = new Gpt2LMHeadModel(TinyConfig(tied: true));
        var wte = Parameters(model)["transformer.wte.weight"];

        model.OutputWeight.Should().BeSameAs(wte);
        using (torch.no_grad())
        {
            wte[3, 5].fill_(42f);
        }

        model.OutputWeight[3, 5].item<float>().Should().Be(42f);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void NamedParameters_TiedOrUntied_CountsOutputMatrixOnlyWhenUntied(bool tied)
    {
        var config = TinyConfig(tied);
        using var model = new Gpt2LMHeadModel(config);
        long d = Width, inner = 4 * Width;
        var perBlock = 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + 2 * d + (d * inner + inner) + (inner * d + d);
        var expected = Vocab * d + Context * d + Layers * perBlock + 2 * d + (tied ? 0 : Vocab * d);

        model.parameters().Sum(p => p.numel()).Should().Be(expected);
        model.named_parameters().Any(p => p.name.StartsWith("lm_head", StringComparison.Ordinal)).Should().Be(!tied);
    }

    [Fact]
    public void OutputWeight_Untied_IsTheLmHeadParameter()
    {
        using var model = new Gpt2LMHeadModel(TinyConfig(tied: false));
        var parameters = Parameters(model);

        model.OutputWeight.Should().BeSameAs(parameters["lm_head.weight"]);
        model.OutputWeight.Should().NotBeSameAs(parameters["transformer.wte.weight"]);
    }

    [Fact]
    public void Forward_ResultEqualsHiddenStatesTimesOutputWeight()
    {
        torch.manual_seed(8);
        using var model = new Gpt2LMHeadModel(TinyConfig());
        model.eval();
        using var ids = torch.randint(0, Vocab, [2, 5], dtype: ScalarType.Int64);

        using var scope = torch.NewDisposeScope();
        var hidden = model.HiddenStates(ids);
        var logits = model.forward(ids);

        hidden.shape.Should().Equal(2, 5, Width);
        MaxAbsDifference(logits, hidden.matmul(model.OutputWeight.t())).Should().BeLessThan(1e-6);
    }

    [Fact]
    public void Forward_TrainMode_AppliesDropoutAndEvalModeDisablesIt()
    {
        torch.manual_seed(9);
        using var model = new Gpt2LMHeadModel(TinyConfig());
        Randomize(model);
        using var ids = torch.randint(0, Vocab, [2, 8], dtype: ScalarType.Int64);

        using var scope = torch.NewDisposeScope();
        model.train();
        MaxAbsDifference(model.forward(ids), model.forward(ids)).Should().BeGreaterThan(1e-4);
        model.eval();
        MaxAbsDifference(model.forward(ids), model.forward(ids)).Should().Be(0);
    }

    [Fact]
    public void To_Float64_KeepsNamesAndTyingAndStillRuns()
    {
        using var model = new Gpt2LMHeadModel(TinyConfig());
        model.to(ScalarType.Float64);
        var wte = Parameters(model)["transformer.wte.weight"];
        using var ids = torch.zeros(1, 3, dtype: ScalarType.Int64);

        using var scope = torch.NewDisposeScope();
        var logits = model.forward(ids);

        wte.dtype.Should().Be(ScalarType.Float64);
        model.OutputWeight.Should().BeSameAs(wte);
        logits.dtype.Should().Be(ScalarType.Float64);
        model.named_parameters().Select(p => p.name).Should().Equal(ExpectedHfParameters(model.Config).Select(e => e.Name));
    }

    [Fact]
    public void Constructor_InsideDisposeScope_ParametersOutliveTheScope()
    {
        Gpt2LMHeadModel model;
        using (torch.NewDisposeScope())
        {
            model = new Gpt2LMHeadModel(TinyConfig(tied: false));
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
    public void Dispose_Model_DisposesEveryParameter()
    {
        var model = new Gpt2LMHeadModel(TinyConfig(tied: false));
        var parameters = model.parameters().ToList();

        model.Dispose();

        parameters.Should().OnlyContain(p => p.IsInvalid);
    }

    [Fact]
    public void Validate_EmbeddingNotDivisibleByHeads_ThrowsNamingPropertyValueAndFix()
    {
        var config = new Gpt2Config { EmbeddingSize = 10, HeadCount = 3 };

        var act = () => new Gpt2LMHeadModel(config);

        act.Should().Throw<ArgumentException>()
            .WithMessage("*EmbeddingSize (10)*HeadCount (3)*multiple*")
            .Which.ParamName.Should().Be(nameof(Gpt2Config.EmbeddingSize));
    }

    [Theory]
    [InlineData(nameof(Gpt2Config.VocabularySize))]
    [InlineData(nameof(Gpt2Config.LayerCount))]
    [InlineData(nameof(Gpt2Config.AttentionDropout))]
    [InlineData(nameof(Gpt2Config.LayerNormEpsilon))]
    [InlineData(nameof(Gpt2Config.InnerSize))]
    public void Validate_OutOfRangeValue_ThrowsNamingTheProperty(string property)
    {
        var config = property switch
        {
            nameof(Gpt2Config.VocabularySize) => new Gpt2Config { VocabularySize = 0 },
            nameof(Gpt2Config.LayerCount) => new Gpt2Config { LayerCount = -1 },
            nameof(Gpt2Config.AttentionDropout) => new Gpt2Config { AttentionDropout = double.NaN },
            nameof(Gpt2Config.LayerNormEpsilon) => new Gpt2Config { LayerNormEpsilon = 0 },
            _ => new Gpt2Config { InnerSize = 0 },
        };

        var act = config.Validate;

        act.Should().Throw<ArgumentException>().Which.ParamName.Should().Be(property);
    }

    [Fact]
    public void Small_MatchesHuggingFaceGpt2Values()
    {
        var small = Gpt2Config.Small;

        small.VocabularySize.Should().Be(50257);
        small.ContextLength.Should().Be(1024);
        small.EmbeddingSize.Should().Be(768);
        small.LayerCount.Should().Be(12);
        small.HeadCount.Should().Be(12);
        small.ResolvedInnerSize.Should().Be(3072);
        small.TieWordEmbeddings.Should().BeTrue();
        small.Invoking(s => s.Validate()).Should().NotThrow();
    }

    internal static Tensor RightPaddingMask(long[] lengths, long length)
    {
        var mask = torch.zeros(lengths.Length, length, dtype: ScalarType.Int64);
        for (var b = 0; b < lengths.Length; b++)
        {
            if (lengths[b] > 0)
            {
                mask[b].narrow(0, 0, lengths[b]).fill_(1);
            }
        }

        return mask;
    }

    // Tensor.equal in TorchSharp is the element-wise eq, not torch.equal, hence this helper.
    private static bool Identical(Tensor a, Tensor b)
    {
        using var scope = torch.NewDisposeScope();
        return a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
    }

    private static double MaxAbsDifference(Tensor a, Tensor b)
    {
        using var scope = torch.NewDisposeScope();
        return (a - b).abs().max().to_type(ScalarType.Float64).item<double>();
    }
}

/// <summary>
/// A deliberately naive GPT-2 written from the paper/HF formulas with basic ops, one head at a time,
/// so it shares no code path with the model under test.
/// </summary>
internal static class NaiveGpt2
{
    public static Tensor Logits(IReadOnlyDictionary<string, Parameter> p, Gpt2Config c, Tensor ids, Tensor? paddingMask)
    {
        using var noGrad = torch.no_grad();
        long batch = ids.size(0), length = ids.size(1), d = c.EmbeddingSize, headSize = d / c.HeadCount;

        var tokenRows = new List<Tensor>();
        for (var b = 0; b < batch; b++)
        {
            for (var t = 0; t < length; t++)
            {
                tokenRows.Add(p["transformer.wte.weight"][ids[b, t].item<long>()]);
            }
        }

        var x = torch.stack(tokenRows).view(batch, length, d) + p["transformer.wpe.weight"].narrow(0, 0, length);

        // disallowed[b, q, k] is true where query q must not see key k.
        var future = torch.ones(length, length, dtype: ScalarType.Bool).triu(1);
        var disallowed = paddingMask is null
            ? future.unsqueeze(0).expand(batch, length, length)
            : future.unsqueeze(0).logical_or(paddingMask.eq(0).unsqueeze(1));

        for (var i = 0; i < c.LayerCount; i++)
        {
            var prefix = $"transformer.h.{i}.";
            var h = LayerNorm(x, p[prefix + "ln_1.weight"], p[prefix + "ln_1.bias"], c.LayerNormEpsilon);
            var qkv = Conv1D(h, p[prefix + "attn.c_attn.weight"], p[prefix + "attn.c_attn.bias"]);
            var q = qkv.narrow(2, 0, d);
            var k = qkv.narrow(2, d, d);
            var v = qkv.narrow(2, 2 * d, d);

            var headOutputs = new List<Tensor>();
            for (var head = 0; head < c.HeadCount; head++)
            {
                var qh = q.narrow(2, head * headSize, headSize);
                var kh = k.narrow(2, head * headSize, headSize);
                var vh = v.narrow(2, head * headSize, headSize);
                var scores = qh.matmul(kh.transpose(1, 2)) / Math.Sqrt(headSize);
                // A padded query with no visible key gets NaN; zero it so it cannot leak into real
                // rows through 0 * NaN in the next layer's probabilities @ v.
                var probabilities = scores.masked_fill(disallowed, double.NegativeInfinity).softmax(-1).nan_to_num(0);
                headOutputs.Add(probabilities.matmul(vh));
            }

            var attention = Conv1D(torch.cat(headOutputs, 2), p[prefix + "attn.c_proj.weight"], p[prefix + "attn.c_proj.bias"]);
            x = x + attention;

            var h2 = LayerNorm(x, p[prefix + "ln_2.weight"], p[prefix + "ln_2.bias"], c.LayerNormEpsilon);
            var inner = GeluTanh(Conv1D(h2, p[prefix + "mlp.c_fc.weight"], p[prefix + "mlp.c_fc.bias"]));
            x = x + Conv1D(inner, p[prefix + "mlp.c_proj.weight"], p[prefix + "mlp.c_proj.bias"]);
        }

        x = LayerNorm(x, p["transformer.ln_f.weight"], p["transformer.ln_f.bias"], c.LayerNormEpsilon);
        var output = c.TieWordEmbeddings ? p["transformer.wte.weight"] : p["lm_head.weight"];
        return x.matmul(output.t());
    }

    private static Tensor Conv1D(Tensor x, Tensor weight, Tensor bias) => x.matmul(weight) + bias;

    private static Tensor LayerNorm(Tensor x, Tensor weight, Tensor bias, double eps)
    {
        var mean = x.mean([-1L], keepdim: true);
        var variance = (x - mean).pow(2).mean([-1L], keepdim: true);
        return (x - mean) / (variance + eps).sqrt() * weight + bias;
    }

    private static Tensor GeluTanh(Tensor x) =>
        0.5 * x * (1 + (Math.Sqrt(2.0 / Math.PI) * (x + 0.044715 * x.pow(3))).tanh());
}

// DisposeScopeManager.Statistics is per thread; running alone keeps any other test from
// sharing the thread while the counters are read.
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class Gpt2DisposeScopeCollection
{
    public const string Name = "Gpt2 dispose-scope statistics";
}

[Collection(Gpt2DisposeScopeCollection.Name)]
public sealed class Gpt2LMHeadModelDisposeScopeTests
{
    [Fact]
    public void ForwardBackward_InsideDisposeScope_LeavesNoLiveTensorsAfterScope()
    {
        torch.manual_seed(10);
        using var model = new Gpt2LMHeadModel(Gpt2LMHeadModelTests.TinyConfig(tied: true));
        model.train();
        using var ids = torch.randint(0, 50, [2, 6], dtype: ScalarType.Int64);
        using var targets = torch.randint(0, 50, [2, 6], dtype: ScalarType.Int64);
        using var mask = Gpt2LMHeadModelTests.RightPaddingMask([6, 4], 6);

        DisposeScopeManager.Statistics.Reset();
        using (torch.NewDisposeScope())
        {
            var logits = model.forward(ids, mask);
            var loss = torch.nn.functional.cross_entropy(logits.view(-1, 50), targets.view(-1));
            loss.backward();
            var hidden = model.HiddenStates(ids);
            hidden.sum().backward();
        }

        var statistics = DisposeScopeManager.Statistics;
        var report = statistics.ToString();
        statistics.CreatedOutsideScopeCount.Should().Be(0, because: report);
        statistics.CreatedInScopeCount.Should().BePositive(because: report);
        statistics.ThreadTotalLiveCount.Should().Be(0, because: report);

        // Gradients live in libtorch, not in the disposed wrappers.
        model.parameters().Should().OnlyContain(p => !ReferenceEquals(p.grad, null));
    }

    [Fact]
    public void Forward_WithoutCallerScope_OnlyTheResultEscapes()
    {
        torch.manual_seed(11);
        using var model = new Gpt2LMHeadModel(Gpt2LMHeadModelTests.TinyConfig(tied: false));
        model.eval();
        using var ids = torch.randint(0, 50, [1, 5], dtype: ScalarType.Int64);
        using var mask = torch.ones(1, 5, dtype: ScalarType.Int64);

        DisposeScopeManager.Statistics.Reset();
        using (torch.no_grad())
        {
            using var logits = model.forward(ids, mask);
            DisposeScopeManager.Statistics.ThreadTotalLiveCount.Should().Be(1, because: DisposeScopeManager.Statistics.ToString());
        }

        DisposeScopeManager.Statistics.ThreadTotalLiveCount.Should().Be(0, because: DisposeScopeManager.Statistics.ToString());
    }
}
