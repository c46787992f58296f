using FluentAssertions;
using NicheTune.Tests.Support;
using Xunit;

namespace NicheTune.Tests;

[Collection(TorchCollection.Name)]
public sealed class ReadmeExampleTests
{
    [Fact]
    public void ReadmeExample_IsTheCompiledCodeAndItTrains()
    {
        string source = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "ReadmeExample.cs"));
        string readme = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "README.md"));

        string example = Between(source, "// README-BEGIN", "// README-END");
        Normalize(readme).Should().Contain(Normalize(example), "README.md must show exactly the example this test compiles");

        var texts = TestData.FoldocEntries.Select(e => e.Text).ToList();
        FineTuneResult result = ReadmeExample.FineTuneOnFoldoc(texts.Take(120), texts.Skip(120).Take(20));
        result.Steps.Should().BePositive();
        result.FinalMetrics.Should().ContainKey("validation.perplexity");
    }

    private static string Between(string text, string begin, string end)
    {
        int start = text.IndexOf(begin, StringComparison.Ordinal) + begin.Length;
        return text[start..text.IndexOf(end, start, StringComparison.Ordinal)];
    }

    // Indentation differs between a class body and a Markdown block; compare line contents.
    private static string Normalize(string text) => string.Join('\n', text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0));
}
