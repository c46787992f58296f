using FluentAssertions;
using NicheTune.Models;
using NicheTune.Tests.Support;
using NicheTune.Text;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace NicheTune.Tests.Models;

[Collection(TorchCollection.Name)]
public sealed class LoRADocTests
{
    [Fact]
    public void DocsLoRA_ShowsTheCompiledCodeAndItRuns()
    {
        string source = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "LoRADocExample.cs"));
        string page = Normalize(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "docs", "lora.md")));
        foreach (string part in new[] { "TRAIN", "DEPLOY" })
        {
            page.Should().Contain(Normalize(Between(source, $"// DOC-{part}-BEGIN", $"// DOC-{part}-END")), $"docs/lora.md must show the {part} code that this test compiles");
        }

        using var folder = new TempFolder();
        var (train, validation) = TestData.FoldocLanguageModeling(length: 32, trainEntries: 40, validationEntries: 10);
        using var model = Model(seed: 53);
        using var freshBase = Model(seed: 53);
        Tensor ids = torch.tensor(train[0].InputIds, dtype: ScalarType.Int64).unsqueeze(0);

        var (result, description) = LoRADocExample.TrainSaveAndDeploy(model, freshBase, train, validation, folder.Path, steps: 3);

        result.Steps.Should().Be(3);
        description.Should().StartWith("trainable params: 16,384 || all params: ");
        model.eval();
        freshBase.eval();
        using var noGrad = torch.no_grad();
        (freshBase.forward(ids) - model.forward(ids)).abs().max().item<float>().Should().BeLessThan(1e-5f, "the deployed merge equals the trained adapter");
        freshBase.named_parameters().Should().NotContain(p => p.name.Contains("lora_", StringComparison.Ordinal));
    }

    // 2 blocks of width 64: r = 8 on c_attn (64→192), attn.c_proj (64→64), c_fc (64→256) and mlp.c_proj (256→64) gives
    // 8 × (256 + 128 + 320 + 320) × 2 = 16,384 trainable weights.
    private static Gpt2LMHeadModel Model(int seed)
    {
        torch.manual_seed(seed);
        return new Gpt2LMHeadModel(new Gpt2Config
        {
            VocabularySize = ByteTokenizer.VocabularySize, ContextLength = 32, EmbeddingSize = 64, LayerCount = 2, HeadCount = 4,
        });
    }

    private static string Between(string text, string begin, string end)
    {
        int start = text.IndexOf(begin, StringComparison.Ordinal) + begin.Length;
        return text[start..text.IndexOf(end, start, StringComparison.Ordinal)];
    }

    private static string Normalize(string text) => string.Join('\n', text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0));
}
