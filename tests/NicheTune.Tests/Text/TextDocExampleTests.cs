using FluentAssertions;
using NicheTune.Models;
using NicheTune.Tests.Support;
using NicheTune.Text;
using TorchSharp;
using Xunit;

namespace NicheTune.Tests.Text;

[Collection(TorchCollection.Name)]
public sealed class TextDocExampleTests
{
    private static string RepositoryFile(string relative)
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            string candidate = Path.Combine(directory.FullName, relative);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException($"{relative} not found above {AppContext.BaseDirectory}.");
    }

    [Fact]
    public void TextPage_ShowsExactlyTheCompiledRegions()
    {
        int regions = DocSnippets.PageShowsEveryRegion(RepositoryFile("docs/text.md"), RepositoryFile("tests/NicheTune.Tests/Text/TextDocExample.cs"));

        regions.Should().Be(4);
    }

    [Fact]
    public void TextPage_RegionsRunOnRealFiles()
    {
        var (ids, text) = TextDocExample.Tokenize(TextFixtures.Gpt2Folder, 50257);
        ids.Should().Equal(15496, 995);
        text.Should().Be("Hello world");

        string labelsPath = Path.Combine(TextFixtures.NewFolder("doc-labels"), "labels.json");
        var (split, labels, train) = TextDocExample.Classification(Path.Combine(TestData.Folder, "foldoc-subset.jsonl"), TextFixtures.Gpt2Bpe, labelsPath);
        LabelMap.Load(labelsPath).Labels.Should().Equal(labels.Labels);
        train.Should().HaveCount(split.Train.Count).And.OnlyContain(e => e.InputIds.Length <= 128 && e.Label < labels.Count);

        string corpus = Path.Combine(TextFixtures.NewFolder("doc-corpus"), "corpus.txt");
        File.WriteAllLines(corpus, TestData.WordNetGlosses().Take(200).Select((g, i) => i % 4 == 3 ? string.Empty : g));
        TextDocExample.LanguageModeling(corpus, TextFixtures.Gpt2Bpe).Should().NotBeEmpty().And.OnlyContain(b => b.InputIds.Length == 128);

        using var scope = torch.NewDisposeScope();
        using var model = new Gpt2LMHeadModel(new Gpt2Config { VocabularySize = 50257, ContextLength = 16, EmbeddingSize = 8, HeadCount = 2, LayerCount = 1 });
        string folder = TextFixtures.NewFolder("doc-model");
        File.Copy(Path.Combine(TextFixtures.Gpt2Folder, "vocab.json"), Path.Combine(folder, "vocab.json"));
        File.Copy(Path.Combine(TextFixtures.Gpt2Folder, "merges.txt"), Path.Combine(folder, "merges.txt"));
        var result = TextDocExample.ExtendVocabulary(model, TextFixtures.Gpt2Bpe, folder);
        model.Config.VocabularySize.Should().Be(result.Rows).And.Be(50260);
        var reloaded = Tokenizers.FromFolder(folder);
        reloaded.Encode("run kubectl").Should().Equal(result.Tokenizer.Encode("run kubectl")).And.Contain(50258);
    }

    // Indentation differs between a method body and a Markdown block; compare line contents.
}
