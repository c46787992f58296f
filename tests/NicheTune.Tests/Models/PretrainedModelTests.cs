using System.Collections;
using System.Text.Json;
using FluentAssertions;
using NicheTune.Models;
using NicheTune.Tests.Support;
using TorchSharp;
using TorchSharp.PyBridge;
using Xunit;
using static TorchSharp.torch;

namespace NicheTune.Tests.Models;

[Collection(TorchCollection.Name)]
public sealed class PretrainedModelTests
{
    private const string TinyGpt2Config = """
        {
          "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "activation_function": "gelu_new",
          "vocab_size": 30, "n_positions": 12, "n_ctx": 12, "n_embd": 8, "n_layer": 2, "n_head": 2,
          "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1, "layer_norm_epsilon": 1e-05,
          "initializer_range": 0.02, "bos_token_id": 29, "eos_token_id": 29, "torch_dtype": "float32"
        }
        """;

    private static string TinyBertConfig(string architecture = "BertForMaskedLM", int vocab = 30) => $$"""
        {
          "architectures": ["{{architecture}}"], "model_type": "bert", "vocab_size": {{vocab}}, "hidden_size": 8,
          "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 12, "hidden_act": "gelu",
          "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 16,
          "type_vocab_size": 2, "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
          "id2label": { "0": "no", "1": "yes" }, "label2id": { "no": 0, "yes": 1 }
        }
        """;

    /// <summary>Random tensors under the names and shapes a Hugging Face checkpoint of <paramref name="model"/> holds.</summary>
    private static Dictionary<string, Tensor> CheckpointFor(nn.Module model, ScalarType dtype = ScalarType.Float32)
        => model.state_dict().ToDictionary(kv => kv.Key, kv => torch.randn(kv.Value.shape).to_type(dtype));

    /// <summary>Writes a folder the way the Hub serves one; the safetensors file comes from PyBridge, a writer independent of ours.</summary>
    private static void WriteHfFolder(string folder, string config, Dictionary<string, Tensor> tensors)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), config);
        Safetensors.SaveStateDict(Path.Combine(folder, "model.safetensors"), tensors);
    }

    private static void AssertBitwiseEqual(IReadOnlyDictionary<string, Tensor> actual, IReadOnlyDictionary<string, Tensor> expected)
    {
        actual.Keys.Should().BeEquivalentTo(expected.Keys);
        foreach (var (name, tensor) in expected)
        {
            actual[name].dtype.Should().Be(tensor.dtype, name);
            Same(actual[name], tensor).Should().BeTrue(name);
        }
    }

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    [Fact]
    public void Load_Gpt2HfFolder_LoadsEveryTensorBitForBitAndSavesThemBack()
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(1);
        var config = Gpt2Config.FromHuggingFaceJson(TinyGpt2Config);
        using var reference = new Gpt2LMHeadModel(config);
        var checkpoint = CheckpointFor(reference);
        string source = Path.Combine(folder.Path, "gpt2");
        WriteHfFolder(source, TinyGpt2Config, checkpoint);

        using var model = PretrainedModel.Load<Gpt2LMHeadModel>(source);
        AssertBitwiseEqual(model.state_dict(), checkpoint);
        model.Config.Should().BeEquivalentTo(config);
        model.training.Should().BeTrue();

        string saved = Path.Combine(folder.Path, "saved");
        PretrainedModel.Save(model, saved);
        AssertBitwiseEqual(Safetensors.LoadStateDict(Path.Combine(saved, "model.safetensors")), checkpoint);
        Gpt2Config.FromHuggingFaceJson(File.ReadAllText(Path.Combine(saved, "config.json"))).Should().BeEquivalentTo(config);
        using var config2 = JsonDocument.Parse(File.ReadAllText(Path.Combine(saved, "config.json")));
        config2.RootElement.GetProperty("architectures")[0].GetString().Should().Be("GPT2LMHeadModel");
        config2.RootElement.GetProperty("torch_dtype").GetString().Should().Be("float32");
        config2.RootElement.GetProperty("n_embd").GetInt32().Should().Be(8);
    }

    [Theory]
    [InlineData("BertModel")]
    [InlineData("BertForMaskedLM")]
    [InlineData("BertForSequenceClassification")]
    public void SaveThenLoad_BertArchitectures_RoundTripsBitForBit(string architecture)
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(2);
        var config = BertConfig.FromHuggingFaceJson(TinyBertConfig(architecture));
        using nn.Module model = architecture switch
        {
            "BertModel" => new BertModel(config),
            "BertForMaskedLM" => new BertForMaskedLM(config),
            _ => new BertForSequenceClassification(config),
        };
        BertModelTests.Randomize(model);
        var weights = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());

        PretrainedModel.Save(model, folder.Path);
        var result = PretrainedModel.LoadWithReport(folder.Path);

        result.Architecture.Should().Be(architecture);
        result.Model.GetType().Name.Should().Be(architecture);
        AssertBitwiseEqual(result.Model.state_dict(), weights);
        result.SkippedKeys.Should().BeEmpty();
        result.LoadedCount.Should().Be(weights.Count);
        result.Model.Dispose();
    }

    [Theory]
    [InlineData("llama", false, "LlamaForCausalLM")]
    [InlineData("llama", true, "LlamaForCausalLM")]
    [InlineData("qwen2", false, "Qwen2ForCausalLM")]
    [InlineData("mistral", true, "MistralForCausalLM")]
    public void Load_LlamaFamilyHfFolder_LoadsBitForBitAndSavesTheSameFolder(string modelType, bool tied, string architecture)
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(3);
        var config = new LlamaConfig
        {
            ModelType = modelType, VocabularySize = 40, HiddenSize = 16, IntermediateSize = 24, LayerCount = 2,
            HeadCount = 4, KeyValueHeadCount = 2, ContextLength = 32, TieWordEmbeddings = tied,
        };
        using var reference = new LlamaForCausalLM(config);
        var checkpoint = CheckpointFor(reference);
        var expected = new Dictionary<string, Tensor>(checkpoint);
        if (tied)
        {
            // transformers writes the tied head's tensor too; it is a copy and must be skipped, not reported unexpected.
            checkpoint["lm_head.weight"] = checkpoint["model.embed_tokens.weight"].clone();
        }

        string source = Path.Combine(folder.Path, modelType);
        WriteHfFolder(source, config.ToHuggingFaceJson(), checkpoint);

        var result = PretrainedModel.LoadWithReport(source);
        result.Architecture.Should().Be(architecture);
        var model = result.Model.Should().BeOfType<LlamaForCausalLM>().Subject;
        model.Config.ModelType.Should().Be(modelType);
        AssertBitwiseEqual(model.state_dict(), expected);

        string saved = Path.Combine(folder.Path, "saved");
        PretrainedModel.Save(model, saved);
        using var reloaded = PretrainedModel.Load<LlamaForCausalLM>(saved);
        AssertBitwiseEqual(reloaded.state_dict(), expected);
        using (torch.no_grad())
        {
            Tensor ids = torch.randint(0, 40, [2, 7], dtype: ScalarType.Int64);
            reloaded.forward(ids).eq(model.forward(ids)).all().item<bool>().Should().BeTrue();
        }

        model.Dispose();
    }

    [Fact]
    public void Load_BertHfFolderWrittenByTest_MatchesTheTensorsAndTheConfig()
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(3);
        using var reference = new BertForSequenceClassification(BertConfig.FromHuggingFaceJson(TinyBertConfig("BertForSequenceClassification")));
        var checkpoint = CheckpointFor(reference);
        WriteHfFolder(folder.Path, TinyBertConfig("BertForSequenceClassification"), checkpoint);

        using var model = PretrainedModel.Load<BertForSequenceClassification>(folder.Path);

        AssertBitwiseEqual(model.state_dict(), checkpoint);
        model.Config.Labels.Should().Equal("no", "yes");
        model.Config.HiddenSize.Should().Be(8);
    }

    [Fact]
    public void Load_HubQuirks_SkipsTiedCopiesLegacyBuffersAndPretrainingHeadsByRule()
    {
        // A bert-base-uncased style folder: "BertForMaskedLM" whose file also holds the pooler, the next-sentence head,
        // the position_ids buffer, a tied decoder copy, and pre-2019 LayerNorm names (gamma/beta).
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(4);
        using var reference = new BertForMaskedLM(BertConfig.FromHuggingFaceJson(TinyBertConfig()));
        var checkpoint = CheckpointFor(reference);
        var legacy = checkpoint.ToDictionary(
            kv => kv.Key.Replace("LayerNorm.weight", "LayerNorm.gamma", StringComparison.Ordinal).Replace("LayerNorm.bias", "LayerNorm.beta", StringComparison.Ordinal),
            kv => kv.Value);
        legacy["bert.pooler.dense.weight"] = torch.randn(8, 8);
        legacy["bert.pooler.dense.bias"] = torch.randn(8);
        legacy["cls.seq_relationship.weight"] = torch.randn(2, 8);
        legacy["cls.seq_relationship.bias"] = torch.randn(2);
        legacy["bert.embeddings.position_ids"] = torch.arange(16, dtype: ScalarType.Int64).unsqueeze(0);
        legacy["cls.predictions.decoder.weight"] = checkpoint["bert.embeddings.word_embeddings.weight"];
        WriteHfFolder(folder.Path, TinyBertConfig(), legacy);

        var result = PretrainedModel.LoadWithReport(folder.Path);

        AssertBitwiseEqual(result.Model.state_dict(), checkpoint);
        result.SkippedKeys.Should().BeEquivalentTo(
            "bert.pooler.dense.weight", "bert.pooler.dense.bias", "cls.seq_relationship.weight", "cls.seq_relationship.bias",
            "bert.embeddings.position_ids", "cls.predictions.decoder.weight");
        result.MissingKeys.Should().BeEmpty();
        result.Model.Dispose();
    }

    [Fact]
    public void Load_Gpt2ModelCheckpointWithoutPrefix_AddsTheBasePrefix()
    {
        // The original "gpt2" upload was saved from GPT2Model: no "transformer." prefix, and causal-mask buffers.
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(5);
        using var reference = new Gpt2LMHeadModel(Gpt2Config.FromHuggingFaceJson(TinyGpt2Config));
        var checkpoint = CheckpointFor(reference);
        var bare = checkpoint.ToDictionary(kv => kv.Key["transformer.".Length..], kv => kv.Value);
        bare["h.0.attn.bias"] = torch.ones(1, 1, 12, 12);
        bare["h.1.attn.masked_bias"] = torch.tensor(-1e4f);
        WriteHfFolder(folder.Path, TinyGpt2Config.Replace("GPT2LMHeadModel", "GPT2Model", StringComparison.Ordinal), bare);

        var result = PretrainedModel.LoadWithReport(folder.Path);

        result.Model.Should().BeOfType<Gpt2LMHeadModel>();
        AssertBitwiseEqual(result.Model.state_dict(), checkpoint);
        result.SkippedKeys.Should().BeEquivalentTo("h.0.attn.bias", "h.1.attn.masked_bias");
        result.Model.Dispose();
    }

    [Fact]
    public void LoadAsClassifier_MaskedLMCheckpoint_LoadsTheBodyAndInitializesTheNewHead()
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(6);
        using var reference = new BertForMaskedLM(BertConfig.FromHuggingFaceJson(TinyBertConfig()));
        var checkpoint = CheckpointFor(reference);
        checkpoint["bert.pooler.dense.weight"] = torch.randn(8, 8);
        checkpoint["bert.pooler.dense.bias"] = torch.randn(8);
        WriteHfFolder(folder.Path, TinyBertConfig(), checkpoint);

        var result = PretrainedModel.LoadWithReport(folder.Path, new PretrainedLoadOptions { Architecture = "BertForSequenceClassification", LabelCount = 4 });
        using var viaType = PretrainedModel.Load<BertForSequenceClassification>(folder.Path, new PretrainedLoadOptions { LabelCount = 4 });

        var model = (BertForSequenceClassification)result.Model;
        model.Config.ResolvedLabelCount.Should().Be(4);
        result.NewlyInitializedKeys.Should().BeEquivalentTo("classifier.weight", "classifier.bias");
        result.SkippedKeys.Should().OnlyContain(k => k.StartsWith("cls.predictions.", StringComparison.Ordinal)).And.HaveCount(5);
        Same(model.state_dict()["bert.encoder.layer.1.output.dense.weight"], checkpoint["bert.encoder.layer.1.output.dense.weight"]).Should().BeTrue();
        Same(model.state_dict()["bert.pooler.dense.weight"], checkpoint["bert.pooler.dense.weight"]).Should().BeTrue();
        Same(viaType.state_dict()["bert.pooler.dense.weight"], checkpoint["bert.pooler.dense.weight"]).Should().BeTrue();
        result.Model.Dispose();
    }

    [Fact]
    public void LoadAsClassifier_BareBertModelCheckpoint_AddsThePrefixIncludingThePooler()
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(13);
        using var reference = new BertModel(BertConfig.FromHuggingFaceJson(TinyBertConfig("BertModel")));
        var checkpoint = CheckpointFor(reference);
        WriteHfFolder(folder.Path, TinyBertConfig("BertModel"), checkpoint);

        var result = PretrainedModel.LoadWithReport(folder.Path, new PretrainedLoadOptions { Architecture = "BertForSequenceClassification" });

        var state = result.Model.state_dict();
        foreach (var (name, tensor) in checkpoint)
        {
            Same(state["bert." + name], tensor).Should().BeTrue(name);
        }

        result.NewlyInitializedKeys.Should().BeEquivalentTo("classifier.weight", "classifier.bias");
        result.SkippedKeys.Should().BeEmpty();
        result.Model.Dispose();
    }

    [Fact]
    public void LoadAsBertModel_MaskedLMCheckpoint_StripsThePrefixAndSkipsTheHead()
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(7);
        using var reference = new BertForMaskedLM(BertConfig.FromHuggingFaceJson(TinyBertConfig()));
        var checkpoint = CheckpointFor(reference);
        WriteHfFolder(folder.Path, TinyBertConfig(), checkpoint);

        var result = PretrainedModel.LoadWithReport(folder.Path, new PretrainedLoadOptions { Architecture = "BertModel" });

        Same(result.Model.state_dict()["encoder.layer.0.attention.self.key.weight"], checkpoint["bert.encoder.layer.0.attention.self.key.weight"]).Should().BeTrue();
        result.NewlyInitializedKeys.Should().BeEquivalentTo("pooler.dense.weight", "pooler.dense.bias");
        result.SkippedKeys.Should().HaveCount(5).And.OnlyContain(k => k.StartsWith("cls.", StringComparison.Ordinal));
        result.Model.Dispose();
    }

    [Fact]
    public void Save_AboveShardSize_WritesHfIndexAndLoadsBack()
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(8);
        using var model = new BertForMaskedLM(BertConfig.FromHuggingFaceJson(TinyBertConfig()));
        BertModelTests.Randomize(model);
        var weights = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        long total = weights.Values.Sum(t => t.NumberOfElements * 4);

        PretrainedModel.Save(model, folder.Path, new PretrainedSaveOptions { MaxShardSize = 2048 });

        var shards = Directory.GetFiles(folder.Path, "model-*-of-*.safetensors").Select(Path.GetFileName).OrderBy(f => f, StringComparer.Ordinal).ToArray();
        shards.Length.Should().BeGreaterThan(2);
        shards[0].Should().Be($"model-00001-of-{shards.Length:D5}.safetensors");
        File.Exists(Path.Combine(folder.Path, "model.safetensors")).Should().BeFalse();
        using var index = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder.Path, "model.safetensors.index.json")));
        index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64().Should().Be(total);
        var weightMap = index.RootElement.GetProperty("weight_map").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
        weightMap.Keys.Should().BeEquivalentTo(weights.Keys);
        weightMap.Values.Distinct().Should().BeEquivalentTo(shards);
        foreach (var shard in shards)
        {
            // Every shard is a standalone safetensors file (PyBridge reads it) holding what the index says.
            Safetensors.LoadStateDict(Path.Combine(folder.Path, shard!)).Keys.Should().BeEquivalentTo(weightMap.Where(kv => kv.Value == shard).Select(kv => kv.Key));
        }

        using var loaded = PretrainedModel.Load<BertForMaskedLM>(folder.Path);
        AssertBitwiseEqual(loaded.state_dict(), weights);
    }

    [Theory]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    public void Load_HalfPrecisionCheckpoint_ConvertsToFloat32Exactly(ScalarType stored)
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(9);
        using var reference = new BertModel(BertConfig.FromHuggingFaceJson(TinyBertConfig("BertModel")));
        var checkpoint = CheckpointFor(reference, stored);
        WriteHfFolder(folder.Path, TinyBertConfig("BertModel"), checkpoint);

        var result = PretrainedModel.LoadWithReport(folder.Path);

        result.CheckpointDtypes.Should().Equal(stored);
        var state = result.Model.state_dict();
        foreach (var (name, tensor) in checkpoint)
        {
            state[name].dtype.Should().Be(ScalarType.Float32);
            // Every bf16/f16 value is exactly representable in f32.
            Same(state[name], tensor.to_type(ScalarType.Float32)).Should().BeTrue(name);
        }

        result.Model.Dispose();
    }

    [Fact]
    public void Save_AsBFloat16_HalvesTheFileAndLoadsBackAsTheRoundedWeights()
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(14);
        using var model = new BertModel(BertConfig.FromHuggingFaceJson(TinyBertConfig("BertModel")));
        BertModelTests.Randomize(model);
        string full = Path.Combine(folder.Path, "f32"), half = Path.Combine(folder.Path, "bf16");

        PretrainedModel.Save(model, full);
        PretrainedModel.Save(model, half, new PretrainedSaveOptions { Dtype = ScalarType.BFloat16 });
        var result = PretrainedModel.LoadWithReport(half);

        static long DataBytes(string file)
        {
            byte[] bytes = File.ReadAllBytes(file);
            return bytes.Length - 8 - (long)BitConverter.ToUInt64(bytes, 0);
        }

        DataBytes(Path.Combine(half, "model.safetensors")).Should().Be(DataBytes(Path.Combine(full, "model.safetensors")) / 2);
        File.ReadAllText(Path.Combine(half, "config.json")).Should().Contain("\"torch_dtype\": \"bfloat16\"");
        result.CheckpointDtypes.Should().Equal(ScalarType.BFloat16);
        foreach (var (name, tensor) in model.state_dict())
        {
            Same(result.Model.state_dict()[name], tensor.to_type(ScalarType.BFloat16).to_type(ScalarType.Float32)).Should().BeTrue(name);
        }

        FluentActions.Invoking(() => PretrainedModel.Save(model, half, new PretrainedSaveOptions { Dtype = ScalarType.Int8 })).Should().Throw<ArgumentException>().WithMessage("*Int8*floating-point*");
        result.Model.Dispose();
    }

    [Fact]
    public void Load_RequestedBFloat16_BuildsABFloat16ModelThatRuns()
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        using var reference = new BertForMaskedLM(BertConfig.FromHuggingFaceJson(TinyBertConfig()));
        var checkpoint = CheckpointFor(reference);
        WriteHfFolder(folder.Path, TinyBertConfig(), checkpoint);

        using var model = PretrainedModel.Load<BertForMaskedLM>(folder.Path, new PretrainedLoadOptions { Dtype = ScalarType.BFloat16 });

        model.parameters().Should().OnlyContain(p => p.dtype == ScalarType.BFloat16);
        Same(model.Bert.WordEmbeddingWeight, checkpoint["bert.embeddings.word_embeddings.weight"].to_type(ScalarType.BFloat16)).Should().BeTrue();
        Same(model.state_dict()["cls.predictions.bias"], checkpoint["cls.predictions.bias"].to_type(ScalarType.BFloat16)).Should().BeTrue();
        model.OutputWeight.Handle.Should().Be(model.Bert.WordEmbeddingWeight.Handle, "the tie survives the dtype change");
        model.eval();
        model.forward(torch.tensor(new long[,] { { 1, 2, 3 } }), null).dtype.Should().Be(ScalarType.BFloat16);
    }

    [Fact]
    public void Load_MissingAndUnexpectedKeys_ThrowListingEveryName()
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        using var reference = new BertForMaskedLM(BertConfig.FromHuggingFaceJson(TinyBertConfig()));
        var checkpoint = CheckpointFor(reference);
        checkpoint.Remove("bert.encoder.layer.1.intermediate.dense.bias");
        checkpoint.Remove("cls.predictions.bias");
        checkpoint["bert.encoder.layer.2.output.dense.weight"] = torch.randn(8, 12);
        WriteHfFolder(folder.Path, TinyBertConfig(), checkpoint);

        var strict = () => PretrainedModel.Load(folder.Path);
        var lenient = PretrainedModel.LoadWithReport(folder.Path, new PretrainedLoadOptions { AllowMissingKeys = true, AllowUnexpectedKeys = true });

        var error = strict.Should().Throw<PretrainedModelException>().Which;
        error.MissingKeys.Should().BeEquivalentTo("bert.encoder.layer.1.intermediate.dense.bias", "cls.predictions.bias");
        error.UnexpectedKeys.Should().Equal("bert.encoder.layer.2.output.dense.weight");
        error.Message.Should().Contain("bert.encoder.layer.1.intermediate.dense.bias").And.Contain("cls.predictions.bias")
            .And.Contain("bert.encoder.layer.2.output.dense.weight").And.Contain("AllowMissingKeys").And.Contain(folder.Path);
        lenient.MissingKeys.Should().BeEquivalentTo(error.MissingKeys);
        lenient.UnexpectedKeys.Should().Equal(error.UnexpectedKeys);
        lenient.Model.Dispose();
    }

    [Fact]
    public void Load_ShapeMismatch_NamesTensorExpectedAndActualShape()
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        using var reference = new BertForMaskedLM(BertConfig.FromHuggingFaceJson(TinyBertConfig(vocab: 31)));
        WriteHfFolder(folder.Path, TinyBertConfig(vocab: 30), CheckpointFor(reference));

        var load = () => PretrainedModel.Load(folder.Path);

        var error = load.Should().Throw<PretrainedModelException>().Which;
        error.ShapeMismatches.Should().HaveCount(2);
        error.Message.Should().Contain("'bert.embeddings.word_embeddings.weight': the model expects [30, 8] but the checkpoint has [31, 8]")
            .And.Contain("'cls.predictions.bias': the model expects [30] but the checkpoint has [31]");
    }

    [Fact]
    public void Load_PickleOnly_RefusedByDefaultAndReadWhenOptedIn()
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(10);
        using var reference = new Gpt2LMHeadModel(Gpt2Config.FromHuggingFaceJson(TinyGpt2Config));
        var checkpoint = CheckpointFor(reference);
        File.WriteAllText(Path.Combine(folder.Path, "config.json"), TinyGpt2Config);
        PyTorchPickler.PickleStateDict(Path.Combine(folder.Path, "pytorch_model.bin"), new Hashtable(checkpoint));

        var refused = () => PretrainedModel.Load(folder.Path);
        using var model = PretrainedModel.Load<Gpt2LMHeadModel>(folder.Path, new PretrainedLoadOptions { AllowPickle = true });

        refused.Should().Throw<NotSupportedException>().WithMessage("*pytorch_model.bin*pickle*arbitrary code*AllowPickle*");
        AssertBitwiseEqual(model.state_dict(), checkpoint);
    }

    [Fact]
    public void Load_FolderProblems_ThrowClearExceptions()
    {
        using var folder = new TempFolder();
        string missing = Path.Combine(folder.Path, "nope");
        string noConfig = Directory.CreateDirectory(Path.Combine(folder.Path, "no-config")).FullName;
        string noWeights = Directory.CreateDirectory(Path.Combine(folder.Path, "no-weights")).FullName;
        File.WriteAllText(Path.Combine(noWeights, "config.json"), TinyGpt2Config);
        string unknown = Directory.CreateDirectory(Path.Combine(folder.Path, "t5")).FullName;
        File.WriteAllText(Path.Combine(unknown, "config.json"), """{ "model_type": "t5", "architectures": ["T5ForConditionalGeneration"] }""");
        string badConfig = Directory.CreateDirectory(Path.Combine(folder.Path, "bad")).FullName;
        File.WriteAllText(Path.Combine(badConfig, "config.json"), """{ "model_type": "gpt2", "n_embd": 10, "n_head": 3 }""");
        Safetensors.SaveStateDict(Path.Combine(badConfig, "model.safetensors"), new Dictionary<string, Tensor>());

        FluentActions.Invoking(() => PretrainedModel.Load(missing)).Should().Throw<DirectoryNotFoundException>().WithMessage("*nope*");
        FluentActions.Invoking(() => PretrainedModel.Load(noConfig)).Should().Throw<FileNotFoundException>().WithMessage("*config.json*");
        FluentActions.Invoking(() => PretrainedModel.Load(noWeights)).Should().Throw<FileNotFoundException>().WithMessage("*model.safetensors*");
        FluentActions.Invoking(() => PretrainedModel.Load(unknown)).Should().Throw<NotSupportedException>().WithMessage("*T5ForConditionalGeneration*BertForMaskedLM*");
        FluentActions.Invoking(() => PretrainedModel.Load(badConfig)).Should().Throw<InvalidDataException>().WithMessage("*config.json*EmbeddingSize (10)*HeadCount (3)*");
        File.WriteAllText(Path.Combine(badConfig, "config.json"), """{ "model_type": "gpt2", "n_layer": "two" }""");
        FluentActions.Invoking(() => PretrainedModel.Load(badConfig)).Should().Throw<InvalidDataException>().WithMessage($"*{Path.Combine(badConfig, "config.json")}*'n_layer'*\"two\"*");
        File.WriteAllText(Path.Combine(badConfig, "config.json"), """{ "model_type": "gpt2", "activation_function": "relu" }""");
        FluentActions.Invoking(() => PretrainedModel.Load(badConfig)).Should().Throw<NotSupportedException>().WithMessage($"*{Path.Combine(badConfig, "config.json")}*'relu'*");
        FluentActions.Invoking(() => PretrainedModel.Load(noWeights, new PretrainedLoadOptions { Dtype = ScalarType.Int64 })).Should().Throw<ArgumentException>().WithMessage("*Int64*floating-point*");
    }

    [Fact]
    public void Save_FailureMidway_LeavesThePreviousFolderIntact()
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        string target = Path.Combine(folder.Path, "model");
        torch.manual_seed(11);
        using var first = new BertForMaskedLM(BertConfig.FromHuggingFaceJson(TinyBertConfig()));
        PretrainedModel.Save(first, target, new PretrainedSaveOptions { MaxShardSize = 2048 });
        File.WriteAllText(Path.Combine(target, "tokenizer.json"), "{}");
        var before = Directory.GetFiles(target).ToDictionary(f => Path.GetFileName(f)!, File.ReadAllBytes);
        using var second = new BertForMaskedLM(BertConfig.FromHuggingFaceJson(TinyBertConfig()));
        BertModelTests.Randomize(second);
        int written = 0;
        var failing = new PretrainedSaveOptions
        {
            MaxShardSize = 2048,
            AfterFileWrittenForTesting = file =>
            {
                if (++written == 3)
                {
                    throw new IOException("disk full (injected)");
                }
            },
        };

        var save = () => PretrainedModel.Save(second, target, failing);

        save.Should().Throw<IOException>().WithMessage("disk full (injected)");
        var after = Directory.GetFiles(target).ToDictionary(f => Path.GetFileName(f)!, File.ReadAllBytes);
        after.Keys.Should().BeEquivalentTo(before.Keys);
        foreach (var (name, bytes) in before)
        {
            after[name].Should().Equal(bytes, name);
        }

        Directory.GetDirectories(folder.Path).Should().Equal(target);

        // A save that succeeds replaces the weights (one file now: stale shards go) and keeps the tokenizer.
        PretrainedModel.Save(second, target);
        Directory.GetFiles(target).Select(Path.GetFileName).Should().BeEquivalentTo("config.json", "model.safetensors", "tokenizer.json");
        using var loaded = PretrainedModel.Load<BertForMaskedLM>(target);
        AssertBitwiseEqual(loaded.state_dict(), second.state_dict());
    }

    [Fact]
    public void Load_ShardedFolderWithMissingShardOrBadIndex_NamesTheProblem()
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        using var model = new BertModel(BertConfig.FromHuggingFaceJson(TinyBertConfig("BertModel")));
        PretrainedModel.Save(model, folder.Path, new PretrainedSaveOptions { MaxShardSize = 2048 });
        string index = Path.Combine(folder.Path, "model.safetensors.index.json");
        string indexText = File.ReadAllText(index);
        string shard = Directory.GetFiles(folder.Path, "model-00002-of-*.safetensors").Single();

        File.Move(shard, shard + ".moved");
        var missingShard = () => PretrainedModel.Load(folder.Path);
        missingShard.Should().Throw<InvalidDataException>().WithMessage($"*{Path.GetFileName(shard)}*does not exist*");
        File.Move(shard + ".moved", shard);

        File.WriteAllText(index, indexText.Replace("\"embeddings.LayerNorm.bias\": \"model-00001", "\"embeddings.LayerNorm.bias\": \"../model-00001", StringComparison.Ordinal));
        var escaping = () => PretrainedModel.Load(folder.Path);
        escaping.Should().Throw<InvalidDataException>().WithMessage("*embeddings.LayerNorm.bias*not a file name in the same folder*");

        File.WriteAllText(index, "{ \"metadata\": {} }");
        var noMap = () => PretrainedModel.Load(folder.Path);
        noMap.Should().Throw<InvalidDataException>().WithMessage("*weight_map*");
    }

    [Fact]
    public void DocsSnippet_LoadMaskedLMAsClassifierFineTuneAndSave_Works()
    {
        // The code of docs/models-loading.md, on a tiny folder.
        using var folder = new TempFolder();
        torch.manual_seed(12);
        string source = Path.Combine(folder.Path, "bert-base-uncased");
        using (var pretrained = new BertForMaskedLM(BertConfig.FromHuggingFaceJson(TinyBertConfig())))
        {
            PretrainedModel.Save(pretrained, source);
        }

        var train = Enumerable.Range(0, 8).Select(i => new NicheTune.Training.TokenExample([1, 2 + i, 3 + (i % 3)], Label: i % 3)).ToList();

        nn.Module model = PretrainedModel.Load(source);
        using var classifier = PretrainedModel.Load<BertForSequenceClassification>(source, new PretrainedLoadOptions { LabelCount = 3 });
        FineTuner.For(classifier).WithObjective(NicheTune.Training.Objectives.SequenceClassification()).WithEpochs(1).WithBatchSize(4).Fit(train);
        PretrainedModel.Save(classifier, Path.Combine(folder.Path, "my-classifier"));

        model.Should().BeOfType<BertForMaskedLM>();
        model.Dispose();
        using var reloaded = PretrainedModel.Load<BertForSequenceClassification>(Path.Combine(folder.Path, "my-classifier"));
        reloaded.Config.ResolvedLabelCount.Should().Be(3);
        AssertBitwiseEqual(reloaded.state_dict(), classifier.state_dict());
    }

    [Fact]
    public void Save_UnsupportedModelOrSubfolder_Throws()
    {
        using var folder = new TempFolder();
        using var tiny = new TinyCausalLm(10);
        using var bert = new BertModel(BertConfig.FromHuggingFaceJson(TinyBertConfig("BertModel")));
        Directory.CreateDirectory(Path.Combine(folder.Path, "checkpoint-1"));

        FluentActions.Invoking(() => PretrainedModel.Save(tiny, Path.Combine(folder.Path, "x"))).Should().Throw<NotSupportedException>().WithMessage("*TinyCausalLm*BertModel*");
        FluentActions.Invoking(() => PretrainedModel.Save(bert, folder.Path)).Should().Throw<IOException>().WithMessage("*checkpoint-1*");
    }

    [Fact]
    public void Gpt2Config_HuggingFaceJson_RoundTripsAndRejectsUnsupportedVariants()
    {
        var config = new Gpt2Config { VocabularySize = 30, ContextLength = 12, EmbeddingSize = 8, LayerCount = 2, HeadCount = 2, InnerSize = 20, TieWordEmbeddings = false, LayerNormEpsilon = 1e-6 };

        Gpt2Config.FromHuggingFaceJson(config.ToHuggingFaceJson()).Should().BeEquivalentTo(config);
        Gpt2Config.FromHuggingFaceJson("{}").Should().BeEquivalentTo(new Gpt2Config());
        FluentActions.Invoking(() => Gpt2Config.FromHuggingFaceJson("""{ "activation_function": "relu" }""")).Should().Throw<NotSupportedException>().WithMessage("*'relu'*gelu_new*");
        FluentActions.Invoking(() => Gpt2Config.FromHuggingFaceJson("""{ "scale_attn_by_inverse_layer_idx": true }""")).Should().Throw<NotSupportedException>().WithMessage("*scale_attn_by_inverse_layer_idx*");
        FluentActions.Invoking(() => Gpt2Config.FromHuggingFaceJson("""{ "n_layer": 2.5 }""")).Should().Throw<InvalidDataException>().WithMessage("*'n_layer'*2.5*");
        FluentActions.Invoking(() => Gpt2Config.FromHuggingFaceJson("[1]")).Should().Throw<InvalidDataException>().WithMessage("*JSON object*");
    }
}
