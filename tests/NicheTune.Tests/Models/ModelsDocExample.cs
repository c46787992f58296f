using NicheTune.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Tests.Models;

/// <summary>The code shown in docs/models.md; <see cref="ModelsDocExampleTests"/> checks the page shows exactly this.</summary>
internal static class ModelsDocExample
{
    public static (GeneratedSequence Sampled, long[] Greedy) Run(string configJson, int[] promptIds)
    {
        // DOC-GENERATE-BEGIN
        LlamaConfig config = LlamaConfig.FromHuggingFaceJson(configJson);
        torch.manual_seed(0);
        using var model = new LlamaForCausalLM(config);
        // Load the checkpoint's tensors into model.named_parameters() by name here.

        var options = new GenerationOptions
        {
            MaxNewTokens = 20,
            Sample = true,
            Temperature = 0.8,
            TopK = 50,
            TopP = 0.95,
            RepetitionPenalty = 1.1,
            StopTokenIds = config.EosTokenIds,
            Seed = 42,
        };
        GeneratedSequence result = TextGenerator.Generate(model, promptIds, options);
        // result.Tokens: the new ids (ending with an EOS id when result.StopReason is StopToken)
        // DOC-GENERATE-END

        // DOC-CACHE-BEGIN
        model.eval();
        var greedy = new List<long>();
        using (torch.no_grad())
        using (var cache = new KeyValueCache(model.LayerCount))
        {
            long[] next = promptIds.Select(id => (long)id).ToArray();
            for (var i = 0; i < 5; i++)
            {
                using var step = torch.NewDisposeScope();
                Tensor ids = torch.tensor(next, [1, next.Length]);
                Tensor logits = model.NextTokenLogits(ids, cache); // [1, V]; the cache grows by next.Length
                long id = logits.argmax(-1).item<long>();
                greedy.Add(id);
                next = [id];
            }
        }
        // DOC-CACHE-END

        return (result, greedy.ToArray());
    }
}
