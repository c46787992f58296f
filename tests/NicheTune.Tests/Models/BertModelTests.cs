using FluentAssertions;
using NicheTune.Evaluation;
using NicheTune.Models;
using NicheTune.Tests.Support;
using NicheTune.Training;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace NicheTune.Tests.Models;

[Collection(TorchCollection.Name)]
public sealed class BertModelTests
{
    private const int Vocab = 40;

    internal static BertConfig TinyConfig(bool tied = true, int labels = 3) => new()
    {
        VocabularySize = Vocab,
        HiddenSize = 8,
        LayerCount = 2,
        HeadCount = 2,
        IntermediateSize = 12,
        MaxPositions = 16,
        TypeVocabularySize = 2,
        LabelCount = labels,
        TieWordEmbeddings = tied,
    };

    internal static List<(string Name, long[] Shape)> ExpectedBodyParameters(BertConfig c, string prefix, bool pooler)
    {
        long v = c.VocabularySize, d = c.HiddenSize, i = c.IntermediateSize;
        var expected = new List<(string, long[])>
        {
            (prefix + "embeddings.word_embeddings.weight", [v, d]),
            (prefix + "embeddings.position_embeddings.weight", [c.MaxPositions, d]),
            (prefix + "embeddings.token_type_embeddings.weight", [c.TypeVocabularySize, d]),
            (prefix + "embeddings.LayerNorm.weight", [d]),
            (prefix + "embeddings.LayerNorm.bias", [d]),
        };
        for (var l = 0; l < c.LayerCount; l++)
        {
            var p = $"{prefix}encoder.layer.{l}.";
            foreach (var projection in new[] { "query", "key", "value" })
            {
                expected.Add((p + $"attention.self.{projection}.weight", [d, d]));
                expected.Add((p + $"attention.self.{projection}.bias", [d]));
            }

            expected.Add((p + "attention.output.dense.weight", [d, d]));
            expected.Add((p + "attention.output.dense.bias", [d]));
            expected.Add((p + "attention.output.LayerNorm.weight", [d]));
            expected.Add((p + "attention.output.LayerNorm.bias", [d]));
            expected.Add((p + "intermediate.dense.weight", [i, d]));
            expected.Add((p + "intermediate.dense.bias", [i]));
            expected.Add((p + "output.dense.weight", [d, i]));
            expected.Add((p + "output.dense.bias", [d]));
            expected.Add((p + "output.LayerNorm.weight", [d]));
            expected.Add((p + "output.LayerNorm.bias", [d]));
        }

        if (pooler)
        {
            expected.Add((prefix + "pooler.dense.weight", [d, d]));
            expected.Add((prefix + "pooler.dense.bias", [d]));
        }

        return expected;
    }

    private static void AssertNames(nn.Module model, List<(string Name, long[] Shape)> expected)
    {
        var actual = model.named_parameters().Select(p => (p.name, p.parameter.shape)).ToList();
        actual.Select(a => a.name).Should().BeEquivalentTo(expected.Select(e => e.Name));
        actual.Should().HaveCount(expected.Count);
        var shapes = actual.ToDictionary(a => a.name, a => a.shape);
        foreach (var (name, shape) in expected)
        {
            shapes[name].Should().Equal(shape, because: name);
        }

        model.state_dict().Keys.Should().BeEquivalentTo(expected.Select(e => e.Name), "nothing but HF-named parameters is saved");
    }

    [Fact]
    public void NamedParameters_BertModel_AreExactlyHuggingFaceNames()
    {
        using var model = new BertModel(TinyConfig());

        var expected = ExpectedBodyParameters(model.Config, "", pooler: true);
        AssertNames(model, expected);
        model.named_parameters().Select(p => p.name).Should().Equal(expected.Select(e => e.Name), "the order follows HF's module tree");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void NamedParameters_BertForMaskedLM_AreExactlyHuggingFaceNames(bool tied)
    {
        using var model = new BertForMaskedLM(TinyConfig(tied));
        var c = model.Config;
        var expected = ExpectedBodyParameters(c, "bert.", pooler: false);
        expected.Add(("cls.predictions.bias", [Vocab]));
        expected.Add(("cls.predictions.transform.dense.weight", [c.HiddenSize, c.HiddenSize]));
        expected.Add(("cls.predictions.transform.dense.bias", [c.HiddenSize]));
        expected.Add(("cls.predictions.transform.LayerNorm.weight", [c.HiddenSize]));
        expected.Add(("cls.predictions.transform.LayerNorm.bias", [c.HiddenSize]));
        if (!tied)
        {
            expected.Add(("cls.predictions.decoder.weight", [Vocab, c.HiddenSize]));
        }

        AssertNames(model, expected);
    }

    [Fact]
    public void NamedParameters_BertForSequenceClassification_AreExactlyHuggingFaceNames()
    {
        using var model = new BertForSequenceClassification(TinyConfig(labels: 3));
        var expected = ExpectedBodyParameters(model.Config, "bert.", pooler: true);
        expected.Add(("classifier.weight", [3, model.Config.HiddenSize]));
        expected.Add(("classifier.bias", [3]));

        AssertNames(model, expected);
    }

    [Fact]
    public void Forward_BertModelEvalMode_MatchesNaiveReference()
    {
        torch.manual_seed(11);
        using var model = new BertModel(TinyConfig());
        Randomize(model);
        model.eval();
        using var scope = torch.NewDisposeScope();
        var ids = torch.randint(0, Vocab, [3, 7], dtype: ScalarType.Int64);
        var types = torch.randint(0, 2, [3, 7], dtype: ScalarType.Int64);
        var mask = RightPaddingMask([7, 5, 2], 7);

        var hidden = model.forward(ids, mask, types);
        var pooled = model.Pool(hidden);
        var (expectedHidden, expectedPooled) = NaiveBert.Encode(Parameters(model), model.Config, "", ids, mask, types);

        MaxAbs(hidden - expectedHidden).Should().BeLessThan(1e-5);
        MaxAbs(pooled - expectedPooled!).Should().BeLessThan(1e-5);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Forward_BertForMaskedLM_MatchesNaiveReference(bool tied)
    {
        torch.manual_seed(12);
        using var model = new BertForMaskedLM(TinyConfig(tied));
        Randomize(model);
        model.eval();
        using var scope = torch.NewDisposeScope();
        var ids = torch.randint(0, Vocab, [2, 6], dtype: ScalarType.Int64);
        var p = Parameters(model);

        var logits = model.forward(ids, null);
        var (hidden, _) = NaiveBert.Encode(p, model.Config, "bert.", ids, null, null);
        var transformed = NaiveBert.LayerNorm(NaiveBert.Gelu(NaiveBert.Linear(hidden, p, "cls.predictions.transform.dense")), p, "cls.predictions.transform.LayerNorm", model.Config.LayerNormEpsilon);
        var decoder = tied ? p["bert.embeddings.word_embeddings.weight"] : p["cls.predictions.decoder.weight"];
        var expected = transformed.matmul(decoder.t()) + p["cls.predictions.bias"];

        logits.shape.Should().Equal(2, 6, Vocab);
        MaxAbs(logits - expected).Should().BeLessThan(1e-5);
    }

    [Fact]
    public void Forward_BertForSequenceClassification_MatchesNaiveReference()
    {
        torch.manual_seed(13);
        using var model = new BertForSequenceClassification(TinyConfig(labels: 3));
        Randomize(model);
        model.eval();
        using var scope = torch.NewDisposeScope();
        var ids = torch.randint(0, Vocab, [3, 5], dtype: ScalarType.Int64);
        var mask = RightPaddingMask([5, 3, 1], 5);
        var p = Parameters(model);

        var logits = model.forward(ids, mask);
        var (_, pooled) = NaiveBert.Encode(p, model.Config, "bert.", ids, mask, null);
        var expected = NaiveBert.Linear(pooled!, p, "classifier");

        logits.shape.Should().Equal(3, 3);
        MaxAbs(logits - expected).Should().BeLessThan(1e-5);
    }

    [Fact]
    public void Forward_PaddedBatch_RealPositionsEqualUnpaddedRuns()
    {
        torch.manual_seed(14);
        using var model = new BertModel(TinyConfig());
        Randomize(model);
        model.eval();
        using var scope = torch.NewDisposeScope();
        long[] lengths = [8, 5, 1];
        var ids = torch.randint(1, Vocab, [3, 8], dtype: ScalarType.Int64);
        var mask = RightPaddingMask(lengths, 8);
        // Whatever the padding holds must not matter: fill it with arbitrary ids.
        var padded = ids.where(mask.to_type(ScalarType.Bool), torch.randint(0, Vocab, [3, 8], dtype: ScalarType.Int64));

        var batch = model.forward(padded, mask);

        for (var b = 0; b < lengths.Length; b++)
        {
            var alone = model.forward(ids[b].narrow(0, 0, lengths[b]).unsqueeze(0), null);
            MaxAbs(batch[b].narrow(0, 0, lengths[b]) - alone[0]).Should().BeLessThan(1e-5, because: $"sequence {b} has {lengths[b]} real tokens");
        }

        batch.isnan().any().item<bool>().Should().BeFalse();
    }

    [Fact]
    public void Forward_AllPaddingRow_StaysFinite()
    {
        torch.manual_seed(15);
        using var model = new BertModel(TinyConfig());
        model.eval();
        using var scope = torch.NewDisposeScope();
        var ids = torch.randint(0, Vocab, [2, 4], dtype: ScalarType.Int64);
        var mask = torch.tensor(new long[,] { { 1, 1, 0, 0 }, { 0, 0, 0, 0 } });

        model.forward(ids, mask).isfinite().all().item<bool>().Should().BeTrue();
    }

    [Fact]
    public void MaskedLM_TiedDecoder_SharesTheWordEmbeddingTensor()
    {
        torch.manual_seed(16);
        using var model = new BertForMaskedLM(TinyConfig(tied: true));
        model.eval();
        using var scope = torch.NewDisposeScope();
        var ids = torch.tensor(new long[,] { { 3, 4, 5 } });

        model.OutputWeight.Handle.Should().Be(model.Bert.WordEmbeddingWeight.Handle);
        var before = model.forward(ids, null);
        using (torch.no_grad())
        {
            // Only changes through the tie: the embedding row of a token that is not in the input. A random direction,
            // because LayerNorm'd features sum to zero and would hide a constant shift.
            model.Bert.WordEmbeddingWeight[7].add_(torch.randn(8));
        }

        var after = model.forward(ids, null);
        MaxAbs(after.select(2, 7) - before.select(2, 7)).Should().BeGreaterThan(1e-3, "the decoder reads the embedding it is tied to");
        MaxAbs(after.select(2, 6) - before.select(2, 6)).Should().Be(0);
    }

    [Fact]
    public void Forward_HookOnQueryLinear_RunsBecauseSubLayersAreCalledThroughCall()
    {
        torch.manual_seed(17);
        using var model = new BertModel(TinyConfig());
        Randomize(model);
        model.eval();
        using var scope = torch.NewDisposeScope();
        var ids = torch.randint(0, Vocab, [1, 5], dtype: ScalarType.Int64);
        var query = (Linear)model.named_modules().Single(m => m.name == "encoder.layer.1.attention.self.query").module;
        var before = model.forward(ids, null);
        var calls = 0;

        var hook = query.register_forward_hook((_, _, output) =>
        {
            calls++;
            return output * 3;
        });
        var hooked = model.forward(ids, null);
        hook.remove();
        var after = model.forward(ids, null);

        calls.Should().Be(1);
        MaxAbs(hooked - before).Should().BeGreaterThan(1e-4);
        MaxAbs(after - before).Should().Be(0);
    }

    [Fact]
    public void Forward_InvalidInputs_ThrowNamingTheProblem()
    {
        using var model = new BertModel(TinyConfig());
        using var scope = torch.NewDisposeScope();

        var tooLong = () => model.forward(torch.zeros(1, 17, dtype: ScalarType.Int64), null);
        var floatIds = () => model.forward(torch.zeros(1, 3), null);
        var badMask = () => model.forward(torch.zeros(2, 3, dtype: ScalarType.Int64), torch.ones(2, 4));
        var badTypes = () => model.forward(torch.zeros(2, 3, dtype: ScalarType.Int64), null, torch.zeros(2, 2, dtype: ScalarType.Int64));
        var noPooler = () => new BertModel(TinyConfig(), addPoolingLayer: false).Pool(torch.zeros(1, 2, 8));

        tooLong.Should().Throw<ArgumentException>().WithMessage("*17*MaxPositions = 16*");
        floatIds.Should().Throw<ArgumentException>().WithMessage("*Float32*");
        badMask.Should().Throw<ArgumentException>().Where(e => e.ParamName == "attentionMask").WithMessage("*[2, 4]*");
        badTypes.Should().Throw<ArgumentException>().Where(e => e.ParamName == "tokenTypeIds");
        noPooler.Should().Throw<InvalidOperationException>().WithMessage("*pooling layer*");
    }

    [Theory]
    [InlineData("HiddenSize", "*HiddenSize (10)*divisible*HeadCount (4)*")]
    [InlineData("HiddenActivation", "*'tanh'*gelu*")]
    [InlineData("PositionEmbeddingType", "*'relative_key'*absolute*")]
    [InlineData("HiddenDropout", "*HiddenDropout (1)*[0, 1)*")]
    [InlineData("PadTokenId", "*PadTokenId (40)*[0, 40)*")]
    [InlineData("Labels", "*'a'*")]
    public void Validate_BadValue_NamesPropertyAndValue(string property, string message)
    {
        var config = TinyConfig();
        config = property switch
        {
            "HiddenSize" => config with { HiddenSize = 10, HeadCount = 4 },
            "HiddenActivation" => config with { HiddenActivation = "tanh" },
            "PositionEmbeddingType" => config with { PositionEmbeddingType = "relative_key" },
            "HiddenDropout" => config with { HiddenDropout = 1 },
            "PadTokenId" => config with { PadTokenId = 40 },
            _ => config with { Labels = ["a", "b", "a"] },
        };

        config.Invoking(c => c.Validate()).Should().Throw<ArgumentException>().WithMessage(message).Where(e => e.ParamName == property);
    }

    [Fact]
    public void HuggingFaceJson_RoundTrip_PreservesEveryField()
    {
        var config = TinyConfig(labels: 2) with { Labels = ["negative", "positive"], ClassifierDropout = 0.2, HiddenActivation = "gelu_new", PadTokenId = null, LayerNormEpsilon = 1e-7 };

        var json = config.ToHuggingFaceJson("BertForSequenceClassification");
        var back = BertConfig.FromHuggingFaceJson(json);

        back.Should().BeEquivalentTo(config);
        json.Should().Contain("\"hidden_size\": 8").And.Contain("\"num_attention_heads\": 2").And.Contain("\"id2label\"").And.Contain("\"BertForSequenceClassification\"");
    }

    [Fact]
    public void FromHuggingFaceJson_HubStyleConfig_ReadsHfFieldsAndDefaults()
    {
        const string json = """
            {
              "architectures": ["BertForMaskedLM"], "model_type": "bert", "attention_probs_dropout_prob": 0.1,
              "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02,
              "intermediate_size": 3072, "layer_norm_eps": 1e-12, "max_position_embeddings": 512,
              "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 0, "position_embedding_type": "absolute",
              "transformers_version": "4.6.0.dev0", "type_vocab_size": 2, "use_cache": true, "vocab_size": 30522
            }
            """;

        var config = BertConfig.FromHuggingFaceJson(json);

        config.Should().BeEquivalentTo(BertConfig.Base);
        config.ResolvedLabelCount.Should().Be(2);
    }

    [Fact]
    public void FromHuggingFaceJson_WrongFieldType_NamesTheField()
    {
        var act = () => BertConfig.FromHuggingFaceJson("""{ "hidden_size": "big" }""");

        act.Should().Throw<InvalidDataException>().WithMessage("*'hidden_size'*whole number*\"big\"*");
    }

    [Fact]
    public void LayerMap_BertClassifier_FindsEmbeddingsEachLayerAndTheHead()
    {
        using var model = new BertForSequenceClassification(TinyConfig());

        var map = NicheTune.Freezing.LayerMap.For(model);

        map.LayerCount.Should().Be(2);
        map.GroupOf("bert.embeddings.word_embeddings.weight").Name.Should().Be("embeddings");
        map.GroupOf("bert.encoder.layer.1.attention.self.query.weight").LayerIndex.Should().Be(1);
        map.GroupOf("classifier.weight").Kind.Should().Be(NicheTune.Freezing.LayerGroupKind.Head);
    }

    [Fact]
    public void Fit_SequenceClassifierWithFineTuner_LearnsATokenPresenceTask()
    {
        // Label = whether token 5 occurs: a task the [CLS] pooler must learn to read through attention.
        var random = new Random(3);
        List<TokenExample> Make(int count) => Enumerable.Range(0, count).Select(_ =>
        {
            var length = random.Next(3, 9);
            var ids = Enumerable.Range(0, length).Select(_ => random.Next(6, Vocab)).ToArray();
            ids[0] = 1;
            var label = random.Next(2);
            if (label == 1)
            {
                ids[random.Next(1, length)] = 5;
            }

            return new TokenExample(ids, label);
        }).ToList();
        var train = Make(128);
        var validation = Make(60);
        torch.manual_seed(4);
        using var model = new BertForSequenceClassification(TinyConfig(labels: 2) with { LayerCount = 1, HiddenSize = 16, IntermediateSize = 32, HiddenDropout = 0, AttentionDropout = 0 });

        var plan = FineTuner.For(model)
            .WithObjective(Objectives.SequenceClassification())
            .WithLearningRate(1e-2)
            .WithBatchSize(16)
            .WithEpochs(8)
            .Evaluate(Metrics.Accuracy())
            .Build();
        var before = plan.Evaluate(validation)["validation.accuracy"];
        var result = plan.Fit(train, validation);

        result.TrainingLoss.Last().Loss.Should().BeLessThan(result.TrainingLoss.First().Loss / 2);
        result.FinalMetrics["validation.accuracy"].Should().BeGreaterThan(0.9).And.BeGreaterThan(before);
    }

    internal static void Randomize(nn.Module model, float std = 0.5f)
    {
        using var noGrad = torch.no_grad();
        foreach (var (_, p) in model.named_parameters())
        {
            p.normal_(0, std);
        }
    }

    internal static Dictionary<string, Tensor> Parameters(nn.Module model) =>
        model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);

    private static Tensor RightPaddingMask(long[] lengths, long width)
    {
        var mask = torch.zeros(lengths.Length, width, dtype: ScalarType.Int64);
        for (var b = 0; b < lengths.Length; b++)
        {
            mask[b].narrow(0, 0, lengths[b]).fill_(1);
        }

        return mask;
    }

    private static double MaxAbs(Tensor t) => t.abs().max().item<float>();
}

/// <summary>BERT written out with plain tensor operations (explicit softmax attention, LayerNorm and erf GELU) as the reference.</summary>
internal static class NaiveBert
{
    public static Tensor Linear(Tensor x, Dictionary<string, Tensor> p, string name) => x.matmul(p[name + ".weight"].t()) + p[name + ".bias"];

    public static Tensor LayerNorm(Tensor x, Dictionary<string, Tensor> p, string name, double eps)
    {
        var mean = x.mean([-1], keepdim: true);
        var variance = (x - mean).pow(2).mean([-1], keepdim: true);
        return (x - mean) / (variance + eps).sqrt() * p[name + ".weight"] + p[name + ".bias"];
    }

    public static Tensor Gelu(Tensor x) => 0.5 * x * (1 + torch.special.erf(x / Math.Sqrt(2)));

    public static (Tensor Hidden, Tensor? Pooled) Encode(Dictionary<string, Tensor> p, BertConfig c, string prefix, Tensor ids, Tensor? mask, Tensor? types)
    {
        long batch = ids.shape[0], length = ids.shape[1], heads = c.HeadCount, size = c.HeadSize;
        types ??= torch.zeros_like(ids);
        var positions = torch.arange(length, dtype: ScalarType.Int64);
        var x = p[prefix + "embeddings.word_embeddings.weight"][ids]
            + p[prefix + "embeddings.position_embeddings.weight"][positions]
            + p[prefix + "embeddings.token_type_embeddings.weight"][types];
        x = LayerNorm(x, p, prefix + "embeddings.LayerNorm", c.LayerNormEpsilon);
        // HF's additive mask: a very negative score at padded keys.
        var additive = mask is null ? torch.zeros(batch, 1, 1, length) : (1 - mask.to_type(ScalarType.Float32)).view(batch, 1, 1, length) * -1e9f;
        for (var l = 0; l < c.LayerCount; l++)
        {
            var n = $"{prefix}encoder.layer.{l}.";
            Tensor Heads(Tensor t) => t.view(batch, length, heads, size).permute(0, 2, 1, 3);
            var q = Heads(Linear(x, p, n + "attention.self.query"));
            var k = Heads(Linear(x, p, n + "attention.self.key"));
            var v = Heads(Linear(x, p, n + "attention.self.value"));
            var scores = q.matmul(k.transpose(-1, -2)) / Math.Sqrt(size) + additive;
            var probabilities = scores.exp() / scores.exp().sum(-1, keepdim: true);
            var context = probabilities.matmul(v).permute(0, 2, 1, 3).reshape(batch, length, c.HiddenSize);
            var attended = LayerNorm(Linear(context, p, n + "attention.output.dense") + x, p, n + "attention.output.LayerNorm", c.LayerNormEpsilon);
            var intermediate = Gelu(Linear(attended, p, n + "intermediate.dense"));
            x = LayerNorm(Linear(intermediate, p, n + "output.dense") + attended, p, n + "output.LayerNorm", c.LayerNormEpsilon);
        }

        var pooled = p.ContainsKey(prefix + "pooler.dense.weight") ? Linear(x.select(1, 0), p, prefix + "pooler.dense").tanh() : null;
        return (x, pooled);
    }
}

// DisposeScopeManager.Statistics is per thread; running alone keeps any other test from sharing the thread.
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class BertDisposeScopeCollection
{
    public const string Name = "Bert dispose-scope statistics";
}

[Collection(BertDisposeScopeCollection.Name)]
public sealed class BertDisposeScopeTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ForwardBackward_InsideDisposeScope_LeavesNoLiveTensorsAfterScope(bool maskedLM)
    {
        torch.manual_seed(20);
        using nn.Module<Tensor, Tensor?, Tensor> model = maskedLM
            ? new BertForMaskedLM(BertModelTests.TinyConfig())
            : new BertForSequenceClassification(BertModelTests.TinyConfig());
        model.train();
        using var ids = torch.randint(0, 40, [2, 6], dtype: ScalarType.Int64);
        using var mask = torch.tensor(new long[,] { { 1, 1, 1, 1, 1, 1 }, { 1, 1, 1, 0, 0, 0 } });

        DisposeScopeManager.Statistics.Reset();
        using (torch.NewDisposeScope())
        {
            model.forward(ids, mask).sum().backward();
        }

        var statistics = DisposeScopeManager.Statistics;
        statistics.CreatedOutsideScopeCount.Should().Be(0, because: statistics.ToString());
        statistics.ThreadTotalLiveCount.Should().Be(0, because: statistics.ToString());
        model.parameters().Should().OnlyContain(p => !ReferenceEquals(p.grad, null));
    }

    [Fact]
    public void Forward_WithoutCallerScope_OnlyTheResultEscapes()
    {
        torch.manual_seed(21);
        using var model = new BertModel(BertModelTests.TinyConfig());
        model.eval();
        using var ids = torch.randint(0, 40, [1, 5], dtype: ScalarType.Int64);
        using var types = torch.zeros(1, 5, dtype: ScalarType.Int64);
        using var mask = torch.ones(1, 5, dtype: ScalarType.Int64);

        DisposeScopeManager.Statistics.Reset();
        using (torch.no_grad())
        {
            using var hidden = model.forward(ids, mask, types);
            DisposeScopeManager.Statistics.ThreadTotalLiveCount.Should().Be(1, because: DisposeScopeManager.Statistics.ToString());
        }

        DisposeScopeManager.Statistics.ThreadTotalLiveCount.Should().Be(0, because: DisposeScopeManager.Statistics.ToString());
    }
}
