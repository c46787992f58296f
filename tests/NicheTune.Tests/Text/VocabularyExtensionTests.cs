using FluentAssertions;
using NicheTune;
using NicheTune.Models;
using NicheTune.Training;
using NicheTune.Tests.Support;
using NicheTune.Text;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace NicheTune.Tests.Text;

[Collection(TorchCollection.Name)]
public sealed class VocabularyExtensionTests
{
    private static Gpt2LMHeadModel TinyByteModel(bool tied)
    {
        torch.manual_seed(7);
        var model = new Gpt2LMHeadModel(new Gpt2Config
        {
            VocabularySize = ByteTokenizer.VocabularySize,
            ContextLength = 16,
            EmbeddingSize = 8,
            HeadCount = 2,
            LayerCount = 1,
            TieWordEmbeddings = tied,
        });
        model.eval();
        return model;
    }

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    private static Dictionary<string, Parameter> Parameters(nn.Module model) => model.named_parameters().ToDictionary(p => p.name, p => p.parameter);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Extend_Gpt2_OldRowsKeptNewRowsAreSubTokenMeans(bool tied)
    {
        using var scope = torch.NewDisposeScope();
        using var model = TinyByteModel(tied);
        var tokenizer = new ByteTokenizer();
        using var before = model.OutputWeight.detach().clone();
        using var embeddingBefore = Parameters(model)["transformer.wte.weight"].detach().clone();

        var result = VocabularyExtension.Extend(model, tokenizer, ["kernel", "inode", "kernel", "x"]);

        result.Added.Select(a => (a.Term, a.Id)).Should().Equal(("kernel", 258), ("inode", 259));
        result.Skipped.Should().Equal("kernel", "x");
        (result.PreviousRows, result.Rows).Should().Be((258, 260));
        result.ResizedParameters.Should().Equal(tied ? ["transformer.wte.weight"] : ["transformer.wte.weight", "lm_head.weight"]);
        model.Config.VocabularySize.Should().Be(260, "the model's config must follow its embedding");

        var parameters = Parameters(model);
        var embedding = parameters["transformer.wte.weight"];
        embedding.shape.Should().Equal(260, 8);
        Same(embedding.narrow(0, 0, 258), embeddingBefore).Should().BeTrue("old tokens keep their ids and vectors");
        var kernelPieces = torch.tensor(tokenizer.Encode("kernel").Select(i => (long)i).ToArray());
        torch.allclose(embedding[258], embeddingBefore.index_select(0, kernelPieces).mean([0]), 1e-6, 1e-6).Should().BeTrue();
        model.OutputWeight.shape.Should().Equal(260, 8);
        Same(model.OutputWeight.narrow(0, 0, 258), before).Should().BeTrue();
        if (!tied)
        {
            torch.allclose(model.OutputWeight[258], before.index_select(0, kernelPieces).mean([0]), 1e-6, 1e-6).Should().BeTrue("the untied head's new row is the mean of its own sub-token rows");
        }
        else
        {
            parameters.Should().NotContainKey("lm_head.weight");
            Same(model.OutputWeight, embedding).Should().BeTrue("a tied head is the embedding");
        }

        int[] ids = result.Tokenizer.Encode("the kernel and the inode");
        ids.Should().Contain([258, 259]);
        Tokenizers.EnsureFits(result.Tokenizer, model.Config.VocabularySize);
        var logits = model.forward(torch.tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0));
        logits.shape.Should().Equal(1, ids.Length, 260);
        logits.isfinite().all().item<bool>().Should().BeTrue();
        result.Tokenizer.Decode(ids).Should().Be("the kernel and the inode");
    }

    [Fact]
    public void Extend_Gpt2Bpe_AddsTermsAsSingleTokensThatTrain()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(3);
        using var model = new Gpt2LMHeadModel(new Gpt2Config { VocabularySize = 50257, ContextLength = 32, EmbeddingSize = 8, HeadCount = 2, LayerCount = 1 });
        var gpt2 = TextFixtures.Gpt2Bpe;
        gpt2.Encode(" Kubernetes", addSpecialTokens: false).Length.Should().BeGreaterThan(1);

        var result = VocabularyExtension.Extend(model, gpt2, [" Kubernetes", " kubectl", " the"]);

        result.Skipped.Should().Equal(" the");
        result.Added.Select(a => a.Id).Should().Equal(50257, 50258);
        int[] ids = result.Tokenizer.Encode("Deploy it with kubectl on Kubernetes.");
        ids.Should().Equal([.. gpt2.Encode("Deploy it with"), 50258, .. gpt2.Encode(" on"), 50257, .. gpt2.Encode(".")]);

        // One optimizer step: the new rows get gradients like any other.
        var input = torch.tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0);
        var loss = nn.functional.cross_entropy(model.forward(input)[0, ..^1], input[0, 1..]);
        loss.backward();
        model.OutputWeight.grad!.shape.Should().Equal(50259, 8);
        model.OutputWeight.grad![50257].abs().sum().item<float>().Should().BeGreaterThan(0);
    }

    [Fact]
    public void Extend_ThenFineTuneOnFoldocBlocks_NewRowsLearn()
    {
        using var model = TinyByteModel(tied: false);
        model.train();
        var result = VocabularyExtension.Extend(model, new ByteTokenizer(), [" operating system", " programming language", " protocol"]);
        var texts = TestData.FoldocEntries.Take(60).Select(e => e.Text);
        var blocks = TextDatasets.ToLanguageModelingBlocks(texts, result.Tokenizer, length: 16).ToList();
        blocks.SelectMany(b => b.InputIds).Should().Contain(result.Added.Select(a => a.Id), "FOLDOC uses the new terms");
        using var before = model.OutputWeight.detach().clone();

        var fit = FineTuner.For(model)
            .WithObjective(Objectives.CausalLanguageModeling())
            .WithLearningRate(1e-2)
            .WithBatchSize(4)
            .WithMaxSteps(3)
            .Fit(blocks);

        fit.Steps.Should().Be(3);
        using var changed = (model.OutputWeight - before).abs().sum(1);
        foreach (AddedTerm term in result.Added)
        {
            changed[term.Id].item<float>().Should().BeGreaterThan(0, "the row of '{0}' is trained like any other", term.Term);
        }
    }

    [Fact]
    public void Extend_AnyModuleByName_GrowsNativeEmbedding()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new EmbeddingOnly(258, 4);
        var result = VocabularyExtension.Extend(model, new ByteTokenizer(), ["ab"], new EmbeddingParameterNames("embed.weight"));
        var weight = model.Embed.weight!;
        weight.shape.Should().Equal(259, 4);
        torch.allclose(weight[258], (weight['a' + 2] + weight['b' + 2]) / 2, 1e-6, 1e-6).Should().BeTrue();
        model.Embed.forward(torch.tensor(new long[] { 258 })).shape.Should().Equal(1, 4);
        result.ResizedParameters.Should().Equal("embed.weight");
    }

    [Fact]
    public void Extend_UnknownEmbeddingName_ThrowsListingEmbeddingLikeNames()
    {
        using var model = new EmbeddingOnly(258, 4);
        var extend = () => VocabularyExtension.Extend(model, new ByteTokenizer(), ["ab"], EmbeddingParameterNames.Llama);
        extend.Should().Throw<ArgumentException>().WithMessage("*no [V, d] parameter named 'model.embed_tokens.weight'*present: embed.weight*");
    }

    [Fact]
    public void Extend_TokenizerLargerThanEmbedding_Throws()
    {
        using var model = new EmbeddingOnly(100, 4);
        var extend = () => VocabularyExtension.Extend(model, new ByteTokenizer(), ["ab"], new EmbeddingParameterNames("embed.weight"));
        extend.Should().Throw<InvalidOperationException>().WithMessage("*258 ids*100 rows*");
    }

    private sealed class EmbeddingOnly : nn.Module
    {
        [TorchSharp.Utils.ComponentName(Name = "embed")]
        private readonly Embedding _embed;

        public EmbeddingOnly(int rows, int width) : base(nameof(EmbeddingOnly))
        {
            _embed = nn.Embedding(rows, width);
            RegisterComponents();
        }

        public Embedding Embed => _embed;
    }
}
