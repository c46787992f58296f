using System;
using System.Text.Json;
using FluentAssertions;
using NicheTune.Models;
using Xunit;

namespace NicheTune.Tests.Models;

public sealed class LlamaConfigTests
{
    // The config.json of TinyLlama-1.1B (a Llama 2 architecture with grouped-query attention).
    private const string TinyLlamaJson = """
        {
          "architectures": ["LlamaForCausalLM"],
          "attention_bias": false,
          "bos_token_id": 1,
          "eos_token_id": 2,
          "hidden_act": "silu",
          "hidden_size": 2048,
          "initializer_range": 0.02,
          "intermediate_size": 5632,
          "max_position_embeddings": 2048,
          "model_type": "llama",
          "num_attention_heads": 32,
          "num_hidden_layers": 22,
          "num_key_value_heads": 4,
          "pretraining_tp": 1,
          "rms_norm_eps": 1e-05,
          "rope_scaling": null,
          "rope_theta": 10000.0,
          "tie_word_embeddings": false,
          "torch_dtype": "bfloat16",
          "transformers_version": "4.35.0",
          "use_cache": true,
          "vocab_size": 32000
        }
        """;

    // The config.json of Qwen2-0.5B (q/k/v biases implied by model_type, tied embeddings, inactive sliding window).
    private const string Qwen2Json = """
        {
          "architectures": ["Qwen2ForCausalLM"],
          "attention_dropout": 0.0,
          "bos_token_id": 151643,
          "eos_token_id": 151643,
          "hidden_act": "silu",
          "hidden_size": 896,
          "initializer_range": 0.02,
          "intermediate_size": 4864,
          "max_position_embeddings": 131072,
          "max_window_layers": 24,
          "model_type": "qwen2",
          "num_attention_heads": 14,
          "num_hidden_layers": 24,
          "num_key_value_heads": 2,
          "rms_norm_eps": 1e-06,
          "rope_theta": 1000000.0,
          "sliding_window": 131072,
          "tie_word_embeddings": true,
          "torch_dtype": "bfloat16",
          "use_cache": true,
          "use_sliding_window": false,
          "vocab_size": 151936
        }
        """;

    [Fact]
    public void FromHuggingFaceJson_TinyLlama_ReadsEveryField()
    {
        var config = LlamaConfig.FromHuggingFaceJson(TinyLlamaJson);

        config.ModelType.Should().Be("llama");
        config.VocabularySize.Should().Be(32000);
        config.HiddenSize.Should().Be(2048);
        config.IntermediateSize.Should().Be(5632);
        config.LayerCount.Should().Be(22);
        config.HeadCount.Should().Be(32);
        config.KeyValueHeadCount.Should().Be(4);
        config.ResolvedHeadDimension.Should().Be(64);
        config.ContextLength.Should().Be(2048);
        config.RmsNormEpsilon.Should().Be(1e-5);
        config.RopeTheta.Should().Be(10000);
        config.TieWordEmbeddings.Should().BeFalse();
        config.HasQueryKeyValueBias.Should().BeFalse();
        config.TorchDtype.Should().Be("bfloat16");
        config.BosTokenId.Should().Be(1);
        config.EosTokenIds.Should().Equal(2);
        config.PadTokenId.Should().BeNull();
    }

    [Fact]
    public void FromHuggingFaceJson_Qwen2_ImpliesQueryKeyValueBiasAndTiesEmbeddings()
    {
        var config = LlamaConfig.FromHuggingFaceJson(Qwen2Json);

        config.ModelType.Should().Be("qwen2");
        config.HasQueryKeyValueBias.Should().BeTrue();
        config.HasOutputBias.Should().BeFalse();
        config.TieWordEmbeddings.Should().BeTrue();
        config.KeyValueHeadCount.Should().Be(2);
        config.ResolvedHeadDimension.Should().Be(64);
        config.RopeTheta.Should().Be(1_000_000);
        config.EosTokenIds.Should().Equal(151643);
    }

    [Fact]
    public void FromHuggingFaceJson_EosList_HeadDimAndRopeParameters_AreRead()
    {
        var config = LlamaConfig.FromHuggingFaceJson("""
            {"model_type": "llama", "vocab_size": 200, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32, "max_position_embeddings": 128,
             "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0},
             "bos_token_id": 100, "eos_token_id": [101, 102, 103], "pad_token_id": 0, "mlp_bias": true, "dtype": "float16"}
            """);

        config.HeadDimension.Should().Be(32);
        config.ResolvedHeadDimension.Should().Be(32);
        config.RopeTheta.Should().Be(500000);
        config.EosTokenIds.Should().Equal(101, 102, 103);
        config.PadTokenId.Should().Be(0);
        config.MlpBias.Should().BeTrue();
        config.TorchDtype.Should().Be("float16");
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("qwen2")]
    [InlineData("mistral")]
    public void ToHuggingFaceJson_RoundTrip_ReproducesEveryProperty(string modelType)
    {
        var original = new LlamaConfig
        {
            ModelType = modelType,
            VocabularySize = 321,
            HiddenSize = 48,
            IntermediateSize = 100,
            LayerCount = 3,
            HeadCount = 6,
            KeyValueHeadCount = 2,
            HeadDimension = modelType == "mistral" ? 10 : null,
            ContextLength = 77,
            RmsNormEpsilon = 3e-6,
            RopeTheta = 12345.5,
            TieWordEmbeddings = modelType == "qwen2",
            AttentionBias = modelType == "llama",
            MlpBias = modelType == "llama",
            AttentionDropout = 0.125,
            InitializerRange = 0.03,
            TorchDtype = "float32",
            BosTokenId = 5,
            EosTokenIds = modelType == "llama" ? [6, 7] : [6],
            PadTokenId = modelType == "mistral" ? null : 0,
        };

        var json = original.ToHuggingFaceJson();
        var restored = LlamaConfig.FromHuggingFaceJson(json);

        restored.Should().BeEquivalentTo(original);
        using var document = JsonDocument.Parse(json);
        document.RootElement.GetProperty("model_type").GetString().Should().Be(modelType);
        document.RootElement.GetProperty("num_key_value_heads").GetInt32().Should().Be(2);
        document.RootElement.GetProperty("rope_scaling").ValueKind.Should().Be(JsonValueKind.Null);
        document.RootElement.GetProperty("architectures")[0].GetString().Should().EndWith("ForCausalLM");
    }

    [Fact]
    public void FromHuggingFaceJson_RopeScaling_ThrowsNamingTheField()
    {
        var json = TinyLlamaJson.Replace(
            "\"rope_scaling\": null",
            "\"rope_scaling\": {\"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"}",
            StringComparison.Ordinal);

        var act = () => LlamaConfig.FromHuggingFaceJson(json);

        act.Should().Throw<ArgumentException>().WithMessage("*'rope_scaling'*llama3*not supported*");
    }

    [Fact]
    public void FromHuggingFaceJson_MistralActiveSlidingWindow_ThrowsNamingTheField()
    {
        const string json = """
            {"model_type": "mistral", "vocab_size": 32000, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 32768, "sliding_window": 4096}
            """;

        var act = () => LlamaConfig.FromHuggingFaceJson(json);

        act.Should().Throw<ArgumentException>().WithMessage("*'sliding_window'*4096*32768*not supported*");
    }

    [Theory]
    [InlineData("null")]
    [InlineData("32768")]
    public void FromHuggingFaceJson_MistralInactiveSlidingWindow_IsAccepted(string window)
    {
        var json = $$"""
            {"model_type": "mistral", "vocab_size": 32000, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 32768, "sliding_window": {{window}}}
            """;

        LlamaConfig.FromHuggingFaceJson(json).ModelType.Should().Be("mistral");
    }

    [Fact]
    public void FromHuggingFaceJson_Qwen2SlidingWindowEnabled_ThrowsNamingTheField()
    {
        var json = Qwen2Json.Replace("\"use_sliding_window\": false", "\"use_sliding_window\": true", StringComparison.Ordinal);

        var act = () => LlamaConfig.FromHuggingFaceJson(json);

        act.Should().Throw<ArgumentException>().WithMessage("*'use_sliding_window'*");
    }

    [Theory]
    [InlineData("\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"", "*'hidden_act'*gelu*silu*")]
    [InlineData("\"vocab_size\": 32000", "\"vocab_size\": \"big\"", "*'vocab_size'*integer*\"big\"*")]
    [InlineData("\"model_type\": \"llama\"", "\"model_type\": \"gpt2\"", "*ModelType ('gpt2')*llama, mistral, qwen2*")]
    [InlineData("\"num_key_value_heads\": 4", "\"num_key_value_heads\": 5", "*KeyValueHeadCount (5)*HeadCount (32)*")]
    [InlineData("\"eos_token_id\": 2", "\"eos_token_id\": 40000", "*EosTokenIds*40000*vocabulary*")]
    [InlineData("\"vocab_size\": 32000", "\"vocab_size\": 32000,,", "*not valid JSON*")]
    public void FromHuggingFaceJson_BadField_ThrowsWithClearMessage(string field, string replacement, string message)
    {
        var json = TinyLlamaJson.Replace(field, replacement, StringComparison.Ordinal);

        var act = () => LlamaConfig.FromHuggingFaceJson(json);

        act.Should().Throw<ArgumentException>().WithMessage(message);
    }

    [Theory]
    [InlineData(nameof(LlamaConfig.HiddenSize))]
    [InlineData(nameof(LlamaConfig.HeadDimension))]
    [InlineData(nameof(LlamaConfig.RmsNormEpsilon))]
    [InlineData(nameof(LlamaConfig.RopeTheta))]
    [InlineData(nameof(LlamaConfig.HiddenActivation))]
    [InlineData(nameof(LlamaConfig.AttentionBias))]
    [InlineData(nameof(LlamaConfig.MlpBias))]
    [InlineData(nameof(LlamaConfig.LayerCount))]
    public void Validate_OutOfRangeValue_ThrowsNamingTheProperty(string property)
    {
        var config = property switch
        {
            nameof(LlamaConfig.HiddenSize) => new LlamaConfig { HiddenSize = 100, HeadCount = 8 },
            nameof(LlamaConfig.HeadDimension) => new LlamaConfig { HeadDimension = 7 },
            nameof(LlamaConfig.RmsNormEpsilon) => new LlamaConfig { RmsNormEpsilon = double.NaN },
            nameof(LlamaConfig.RopeTheta) => new LlamaConfig { RopeTheta = 0 },
            nameof(LlamaConfig.HiddenActivation) => new LlamaConfig { HiddenActivation = "relu" },
            nameof(LlamaConfig.AttentionBias) => new LlamaConfig { ModelType = "qwen2", AttentionBias = true },
            nameof(LlamaConfig.MlpBias) => new LlamaConfig { ModelType = "mistral", MlpBias = true },
            _ => new LlamaConfig { LayerCount = 0 },
        };

        var act = config.Validate;

        act.Should().Throw<ArgumentException>().Which.ParamName.Should().Be(property);
    }

    [Fact]
    public void Defaults_AreHuggingFaceLlamaDefaultsAndValid()
    {
        var config = new LlamaConfig();

        config.Invoking(c => c.Validate()).Should().NotThrow();
        config.ResolvedKeyValueHeadCount.Should().Be(32);
        config.ResolvedHeadDimension.Should().Be(128);
        LlamaConfig.FromHuggingFaceJson("{}").Should().BeEquivalentTo(config);
    }
}
