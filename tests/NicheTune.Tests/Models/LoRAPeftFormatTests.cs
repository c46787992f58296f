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
public sealed class LoRAPeftFormatTests
{
    [Fact]
    public void Save_Gpt2_WritesPeftKeyNamesAndNothingElse()
    {
        using var scope = torch.NewDisposeScope();
        using var folder = new TempFolder();
        torch.manual_seed(31);
        using var model = new Gpt2LMHeadModel(LoRATestSupport.Gpt2());
        LoRAAdapter adapter = LoRA.Apply(model, new LoRAOptions { Rank = 4, Targets = ["c_attn"] });
        string target = Path.Combine(folder.Path, "adapter");

        adapter.Save(target);

        Directory.GetFiles(target).Select(Path.GetFileName).Should().BeEquivalentTo("adapter_config.json", "adapter_model.safetensors");
        var tensors = Safetensors.LoadStateDict(Path.Combine(target, "adapter_model.safetensors"));
        tensors.Keys.Should().BeEquivalentTo(
            "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight", "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight",
            "base_model.model.transformer.h.1.attn.c_attn.lora_A.weight", "base_model.model.transformer.h.1.attn.c_attn.lora_B.weight");
        tensors["base_model.model.transformer.h.1.attn.c_attn.lora_A.weight"].shape.Should().Equal(4, 16);
        tensors["base_model.model.transformer.h.1.attn.c_attn.lora_B.weight"].shape.Should().Equal(48, 4);
        Directory.GetDirectories(folder.Path).Should().ContainSingle("the temporary folder is renamed into place");
    }

    [Fact]
    public void Save_WritesPeftsAdapterConfigFields()
    {
        using var scope = torch.NewDisposeScope();
        using var folder = new TempFolder();
        using var model = new Gpt2LMHeadModel(LoRATestSupport.Gpt2());
        LoRAAdapter adapter = LoRA.Apply(model, new LoRAOptions { Rank = 4, Alpha = 16, Dropout = 0.05, Targets = ["c_attn", "c_fc"], BaseModelNameOrPath = "gpt2" });

        adapter.Save(folder.Path);

        using JsonDocument config = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder.Path, "adapter_config.json")));
        JsonElement root = config.RootElement;
        root.GetProperty("peft_type").GetString().Should().Be("LORA");
        root.GetProperty("r").GetInt32().Should().Be(4);
        root.GetProperty("lora_alpha").GetRawText().Should().Be("16", "PEFT declares lora_alpha an int");
        root.GetProperty("lora_dropout").GetDouble().Should().Be(0.05);
        root.GetProperty("target_modules").EnumerateArray().Select(e => e.GetString()).Should().Equal("c_attn", "c_fc");
        root.GetProperty("bias").GetString().Should().Be("none");
        root.GetProperty("fan_in_fan_out").GetBoolean().Should().BeTrue("GPT-2's Conv1D stores its weight [in, out]");
        root.GetProperty("task_type").GetString().Should().Be("CAUSAL_LM");
        root.GetProperty("base_model_name_or_path").GetString().Should().Be("gpt2");
        root.GetProperty("modules_to_save").ValueKind.Should().Be(JsonValueKind.Null);
        root.GetProperty("use_rslora").GetBoolean().Should().BeFalse();
        root.EnumerateObject().Select(p => p.Name).Should().BeInAscendingOrder(StringComparer.Ordinal, "PEFT writes its config with sorted keys");
    }

    [Fact]
    public void Save_LinearModelWithBiasesAndModulesToSave_UsesPeftsBaseLayerAndModuleKeys()
    {
        using var scope = torch.NewDisposeScope();
        using var folder = new TempFolder();
        using var model = new TinyProjections();
        LoRAAdapter adapter = LoRA.Apply(model, new LoRAOptions
        {
            Targets = ["q_proj"], Bias = LoRABias.LoRAOnly, ModulesToSave = ["score"], TaskType = LoRATaskType.SequenceClassification,
        });

        adapter.Save(folder.Path);

        Safetensors.LoadStateDict(Path.Combine(folder.Path, "adapter_model.safetensors")).Keys.Should().BeEquivalentTo(
            "base_model.model.q_proj.lora_A.weight", "base_model.model.q_proj.lora_B.weight", "base_model.model.q_proj.base_layer.bias",
            "base_model.model.score.weight", "base_model.model.score.bias");
        using JsonDocument config = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder.Path, "adapter_config.json")));
        config.RootElement.GetProperty("fan_in_fan_out").GetBoolean().Should().BeFalse();
        config.RootElement.GetProperty("task_type").GetString().Should().Be("SEQ_CLS");
        config.RootElement.GetProperty("bias").GetString().Should().Be("lora_only");
        config.RootElement.GetProperty("modules_to_save").EnumerateArray().Select(e => e.GetString()).Should().Equal("score");
    }

    [Fact]
    public void SaveThenLoad_RestoresTheAdapterBitForBit()
    {
        using var scope = torch.NewDisposeScope();
        using var folder = new TempFolder();
        Tensor ids = LoRATestSupport.Ids();
        torch.manual_seed(37);
        using var trained = new Gpt2LMHeadModel(LoRATestSupport.Gpt2());
        trained.eval();
        LoRAAdapter adapter = LoRA.Apply(trained, new LoRAOptions { Rank = 4, Alpha = 12, Targets = ["c_attn", "c_proj"], Bias = LoRABias.LoRAOnly });
        LoRATestSupport.Randomise(adapter);
        using (torch.no_grad())
        {
            adapter.Layers[0].BaseBias!.add_(0.5);
        }

        adapter.Save(folder.Path);
        Tensor expected = trained.forward(ids);
        torch.manual_seed(37);
        using var fresh = new Gpt2LMHeadModel(LoRATestSupport.Gpt2());
        fresh.eval();

        LoRAAdapter loaded = LoRA.Load(fresh, folder.Path);

        loaded.Options.Rank.Should().Be(4);
        loaded.Options.Alpha.Should().Be(12);
        loaded.Options.Bias.Should().Be(LoRABias.LoRAOnly);
        loaded.AdaptedModules.Should().Equal(adapter.AdaptedModules);
        var saved = adapter.StateDict();
        var restored = loaded.StateDict();
        restored.Keys.Should().BeEquivalentTo(saved.Keys);
        restored.Should().OnlyContain(kv => LoRATestSupport.Same(kv.Value, saved[kv.Key]));
        LoRATestSupport.Same(fresh.forward(ids), expected).Should().BeTrue();
    }

    [Fact]
    public void Load_WeightsOfAnotherShape_ThrowsAndLeavesTheModelUnadapted()
    {
        using var scope = torch.NewDisposeScope();
        using var folder = new TempFolder();
        using var wide = new Gpt2LMHeadModel(LoRATestSupport.Gpt2(width: 32));
        LoRA.Apply(wide, new LoRAOptions { Rank = 4, Targets = ["c_attn"] }).Save(folder.Path);
        using var narrow = new Gpt2LMHeadModel(LoRATestSupport.Gpt2(width: 16));
        var names = narrow.named_parameters().Select(p => p.name).ToList();

        Action load = () => LoRA.Load(narrow, folder.Path);

        load.Should().Throw<InvalidDataException>().WithMessage("*'base_model.model.transformer.h.0.attn.c_attn.lora_A.weight' has shape [4, 32] but the model expects [4, 16]*");
        narrow.named_parameters().Select(p => p.name).Should().Equal(names);
        LoRA.AdapterOf(narrow).Should().BeNull();
    }

    [Fact]
    public void Load_ConfigOfAnotherMethod_IsRefusedWithTheReason()
    {
        using var scope = torch.NewDisposeScope();
        using var folder = new TempFolder();
        using var model = new TinyProjections();
        File.WriteAllText(Path.Combine(folder.Path, "adapter_config.json"), """{"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": "q_proj|v_proj", "use_dora": true}""");

        Action load = () => LoRA.Load(model, folder.Path);

        load.Should().Throw<InvalidDataException>().WithMessage("*use_dora*target_modules given as a regular expression*");
    }
}
