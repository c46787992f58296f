using System;
using System.IO;
using System.Linq;
using FluentAssertions;
using NicheTune.Models;
using NicheTune.Tests.Support;
using Xunit;

namespace NicheTune.Tests.Models;

[Collection(TorchCollection.Name)]
public sealed class ModelsDocExampleTests
{
    private const string TinyConfigJson = """
        {"model_type": "llama", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64, "rope_theta": 10000.0,
         "rms_norm_eps": 1e-05, "tie_word_embeddings": true, "bos_token_id": 1, "eos_token_id": 2}
        """;

    [Fact]
    public void ModelsPage_ShowsTheCompiledExamplesAndTheyRun()
    {
        var root = RepositoryRoot();
        var source = File.ReadAllText(Path.Combine(root, "tests", "NicheTune.Tests", "Models", "ModelsDocExample.cs"));
        var page = Normalize(File.ReadAllText(Path.Combine(root, "docs", "models.md")));

        page.Should().Contain(Normalize(Between(source, "// DOC-GENERATE-BEGIN", "// DOC-GENERATE-END")));
        page.Should().Contain(Normalize(Between(source, "// DOC-CACHE-BEGIN", "// DOC-CACHE-END")));

        var (sampled, greedy) = ModelsDocExample.Run(TinyConfigJson, [1, 5, 9]);

        sampled.Tokens.Should().NotBeEmpty().And.HaveCountLessThanOrEqualTo(20);
        sampled.Tokens.Should().OnlyContain(t => t >= 0 && t < 64);
        greedy.Should().HaveCount(5);
    }

    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "NicheTune.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("NicheTune.sln not found above " + AppContext.BaseDirectory);
    }

    private static string Between(string text, string begin, string end)
    {
        var start = text.IndexOf(begin, StringComparison.Ordinal) + begin.Length;
        return text[start..text.IndexOf(end, start, StringComparison.Ordinal)];
    }

    private static string Normalize(string text) => string.Join('\n', text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0));
}
