using NicheTune.Models;
using NicheTune.Training;

namespace NicheTune.Tests.Models;

/// <summary>The code of docs/lora.md, compiled and run by <see cref="LoRADocTests"/>.</summary>
public static class LoRADocExample
{
    public static (FineTuneResult Result, string Description) TrainSaveAndDeploy(
        Gpt2LMHeadModel model, Gpt2LMHeadModel freshBase, List<TokenExample> train, List<TokenExample> validation, string adapterFolder, int steps)
    {
        // DOC-TRAIN-BEGIN
        FineTuneResult result = FineTuner.For(model)
            .WithObjective(Objectives.CausalLanguageModeling())
            .WithLoRA(rank: 8, alpha: 16, dropout: 0.05, "c_attn", "c_proj", "c_fc")
            .WithLearningRate(1e-2)
            .WithBatchSize(16)
            .WithMaxSteps(steps)
            .Fit(train, validation);

        LoRAAdapter adapter = LoRA.AdapterOf(model)!;
        string description = adapter.Describe();   // "trainable params: 16,384 || all params: … || trainable%: …"
        adapter.Save(adapterFolder);               // adapter_config.json + adapter_model.safetensors, PEFT's layout
        // DOC-TRAIN-END

        // DOC-DEPLOY-BEGIN
        LoRAAdapter loaded = LoRA.Load(freshBase, adapterFolder);   // the same base weights, then the adapter
        loaded.MergeAndRemove();                                    // plain GPT-2 again, the update baked into c_attn/c_proj/c_fc
        // DOC-DEPLOY-END
        return (result, description);
    }
}
