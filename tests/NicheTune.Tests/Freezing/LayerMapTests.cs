using FluentAssertions;
using NicheTune.Freezing;
using NicheTune.Models;
using NicheTune.Tests.Support;
using Xunit;

namespace NicheTune.Tests.Freezing;

[Collection(TorchCollection.Name)]
public sealed class LayerMapTests
{
    private static Gpt2LMHeadModel TinyGpt2(bool tied = false) => new(new Gpt2Config
    {
        VocabularySize = 50, ContextLength = 16, EmbeddingSize = 8, LayerCount = 2, HeadCount = 2, TieWordEmbeddings = tied,
    });

    [Fact]
    public void For_Gpt2Names_GroupsEmbeddingsLayersAndHead()
    {
        using var model = TinyGpt2();
        var map = LayerMap.For(model);

        map.Groups.Select(g => g.Name).Should().Equal("embeddings", "layer 0", "layer 1", "head");
        map.Find("embeddings")!.ParameterNames.Should().Equal("transformer.wte.weight", "transformer.wpe.weight");
        map.Find("head")!.ParameterNames.Should().Equal("lm_head.weight");
        map.Find("layer 1")!.ParameterNames.Should().OnlyContain(n => n.StartsWith("transformer.h.1.", StringComparison.Ordinal) || n.StartsWith("transformer.ln_f.", StringComparison.Ordinal))
            .And.Contain(["transformer.ln_f.weight", "transformer.ln_f.bias"], "the backbone's final norm goes with its top layer");
        map.LayerCount.Should().Be(2);
        map.Groups.Sum(g => g.ElementCount).Should().Be(model.parameters().Sum(p => p.numel()));
    }

    [Fact]
    public void For_FinalNormWithoutLayers_JoinsTheHead()
    {
        using var model = NamedTree.Build("embed.weight", "norm.weight", "lm_head.weight");
        var map = LayerMap.For(model);

        map.Groups.Select(g => g.Name).Should().Equal("embeddings", "head");
        map.Find("head")!.ParameterNames.Should().Equal("norm.weight", "lm_head.weight");
    }

    [Fact]
    public void For_BertNames_GroupsEmbeddingsEncoderLayersAndPoolerClassifier()
    {
        using var model = NamedTree.Build(
            "bert.embeddings.word_embeddings.weight", "bert.embeddings.position_embeddings.weight", "bert.embeddings.LayerNorm.weight",
            "bert.encoder.layer.0.attention.self.query.weight", "bert.encoder.layer.0.output.dense.weight",
            "bert.encoder.layer.1.attention.self.query.weight", "bert.encoder.layer.10.output.LayerNorm.bias",
            "bert.pooler.dense.weight", "classifier.weight", "classifier.bias");
        var map = LayerMap.For(model);

        map.Groups.Select(g => g.Name).Should().Equal("embeddings", "layer 0", "layer 1", "layer 10", "head");
        map.GroupOf("bert.embeddings.LayerNorm.weight").Kind.Should().Be(LayerGroupKind.Embeddings);
        map.GroupOf("bert.pooler.dense.weight").Kind.Should().Be(LayerGroupKind.Head);
        map.GroupOf("classifier.bias").Kind.Should().Be(LayerGroupKind.Head);
    }

    [Fact]
    public void For_LlamaNames_GroupsEmbedTokensLayersHeadAndPutsFinalNormInTopLayer()
    {
        using var model = NamedTree.Build(
            "model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "model.layers.0.input_layernorm.weight",
            "model.layers.1.mlp.gate_proj.weight", "model.norm.weight", "lm_head.weight", "rotary.scale");
        var map = LayerMap.For(model);

        map.Groups.Select(g => g.Name).Should().Equal("embeddings", "layer 0", "layer 1", "head", "other");
        map.Find("head")!.ParameterNames.Should().Equal("lm_head.weight");
        map.Find("layer 1")!.ParameterNames.Should().Equal("model.layers.1.mlp.gate_proj.weight", "model.norm.weight");
        map.Find("other")!.ParameterNames.Should().Equal("rotary.scale");
        map.Find("other")!.DepthFromTop(map.LayerCount).Should().Be(0);
        map.Find("embeddings")!.DepthFromTop(map.LayerCount).Should().Be(3);
        map.Find("layer 0")!.DepthFromTop(map.LayerCount).Should().Be(2);
    }

    [Fact]
    public void For_CustomClassifier_OverridesConventions()
    {
        using var model = NamedTree.Build("stem.weight", "stage1.conv.weight", "stage2.conv.weight", "fc.weight");
        var map = LayerMap.For(model, name => name switch
        {
            "stem.weight" => "embeddings",
            "fc.weight" => "head",
            _ => name.StartsWith("stage", StringComparison.Ordinal) ? $"layer {name[5] - '1'}" : null,
        });

        map.Groups.Select(g => g.Name).Should().Equal("embeddings", "layer 0", "layer 1", "head");
    }

    [Fact]
    public void For_CustomClassifierReturnsUnknownGroup_Throws()
    {
        using var model = NamedTree.Build("a.weight");
        var build = () => LayerMap.For(model, _ => "middle");
        build.Should().Throw<ArgumentException>().WithMessage("*'middle'*'embeddings', 'layer <i>', 'head' and 'other'*");
    }

    [Fact]
    public void Describe_PartlyFrozenModel_ShowsStatePerGroup()
    {
        using var model = TinyGpt2();
        model.get_parameter("transformer.wte.weight")!.requires_grad = false;
        model.get_parameter("transformer.wpe.weight")!.requires_grad = false;
        model.get_parameter("transformer.h.0.ln_1.weight")!.requires_grad = false;

        string table = LayerMap.For(model).Describe();

        table.Should().MatchRegex(@"embeddings\s+2\s+[\d,]+\s+frozen");
        table.Should().MatchRegex(@"layer 0\s+12\s+[\d,]+\s+partly \(11/12\)");
        table.Should().MatchRegex(@"head\s+1\s+[\d,]+\s+trainable");
        table.Should().Contain("total");
    }
}
