using System;
using System.Collections.Generic;
using System.Linq;
using FluentAssertions;
using NicheTune.Models;
using NicheTune.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace NicheTune.Tests.Models;

public sealed class TextGeneratorTests
{
    private static readonly int[] Prompt = [3, 14, 15, 9];

    /// <summary>Greedy decoding written the slow way: the whole sequence through forward() for every new token.</summary>
    private static List<int> NaiveGreedy(ICausalLanguageModel model, IReadOnlyList<int> prompt, int count)
    {
        var tokens = prompt.ToList();
        using var noGrad = torch.no_grad();
        for (var i = 0; i < count; i++)
        {
            using var scope = torch.NewDisposeScope();
            var ids = torch.tensor(tokens.Select(t => (long)t).ToArray(), [1, tokens.Count]);
            var logits = ((nn.Module<Tensor, Tensor>)model).forward(ids);
            tokens.Add((int)logits[0, -1].argmax().item<long>());
        }

        return tokens.Skip(prompt.Count).ToList();
    }

    [Theory]
    [InlineData("gpt2-untied")]
    [InlineData("llama-gqa")]
    [InlineData("qwen2-tied")]
    public void Generate_Greedy_EqualsArgmaxOfFullForwardEachStep(string kind)
    {
        torch.manual_seed(41);
        var model = KeyValueCacheTests.CreateModel(kind);
        using var disposeModel = (nn.Module)model;

        var result = TextGenerator.Generate(model, Prompt, new GenerationOptions { MaxNewTokens = 10 });

        result.Tokens.Should().Equal(NaiveGreedy(model, Prompt, 10));
        result.StopReason.Should().Be(GenerationStopReason.MaxNewTokens);
    }

    [Fact]
    public void Generate_ModelInTrainingMode_IsDeterministicAndRestoresTrainingMode()
    {
        torch.manual_seed(42);
        var model = KeyValueCacheTests.CreateModel("gpt2-tied");
        var module = (nn.Module)model;
        using var disposeModel = module;
        module.train();

        var first = TextGenerator.Generate(model, Prompt, new GenerationOptions { MaxNewTokens = 8 });
        var second = TextGenerator.Generate(model, Prompt, new GenerationOptions { MaxNewTokens = 8 });

        first.Tokens.Should().Equal(second.Tokens, because: "dropout must be off while generating");
        module.training.Should().BeTrue();
        module.eval();
        TextGenerator.Generate(model, Prompt, new GenerationOptions { MaxNewTokens = 2 });
        module.training.Should().BeFalse();
    }

    [Fact]
    public void Generate_SampleWithSameSeed_IsReproducibleAndOtherSeedsDiffer()
    {
        torch.manual_seed(43);
        var model = KeyValueCacheTests.CreateModel("llama-gqa");
        using var disposeModel = (nn.Module)model;
        GenerationOptions Options(int seed) => new() { Sample = true, Temperature = 1.5, MaxNewTokens = 24, Seed = seed };

        var first = TextGenerator.Generate(model, Prompt, Options(7));
        var again = TextGenerator.Generate(model, Prompt, Options(7));
        var other = TextGenerator.Generate(model, Prompt, Options(8));

        again.Tokens.Should().Equal(first.Tokens);
        other.Tokens.Should().NotEqual(first.Tokens);
        first.Tokens.Should().NotEqual(TextGenerator.Generate(model, Prompt, new GenerationOptions { MaxNewTokens = 24 }).Tokens, because: "sampling at temperature 1.5 is not greedy");
    }

    [Theory]
    [InlineData("gpt2-tied")]
    [InlineData("llama-gqa")]
    public void Generate_SampleWithTopKOne_EqualsGreedy(string kind)
    {
        torch.manual_seed(44);
        var model = KeyValueCacheTests.CreateModel(kind);
        using var disposeModel = (nn.Module)model;

        var sampled = TextGenerator.Generate(model, Prompt, new GenerationOptions { Sample = true, TopK = 1, Temperature = 3, MaxNewTokens = 12, Seed = 1 });
        var greedy = TextGenerator.Generate(model, Prompt, new GenerationOptions { MaxNewTokens = 12 });

        sampled.Tokens.Should().Equal(greedy.Tokens);
    }

    [Fact]
    public void Generate_StopToken_EndsRightAfterItsFirstOccurrence()
    {
        torch.manual_seed(45);
        var model = KeyValueCacheTests.CreateModel("llama-gqa");
        using var disposeModel = (nn.Module)model;
        var free = TextGenerator.Generate(model, Prompt, new GenerationOptions { MaxNewTokens = 10 }).Tokens;
        var stop = free[3];
        var firstIndex = free.ToList().IndexOf(stop);

        var stopped = TextGenerator.Generate(model, Prompt, new GenerationOptions { MaxNewTokens = 10, StopTokenIds = [stop] });

        stopped.Tokens.Should().Equal(free.Take(firstIndex + 1));
        stopped.StopReason.Should().Be(GenerationStopReason.StopToken);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    public void Generate_MaxNewTokens_ProducesExactlyThatMany(int count)
    {
        var model = new FixedLogitsModel([0f, 1f, 3f, 2f]);

        var result = TextGenerator.Generate(model, [0], new GenerationOptions { MaxNewTokens = count });

        result.Tokens.Should().HaveCount(count).And.OnlyContain(t => t == 2);
        result.StopReason.Should().Be(GenerationStopReason.MaxNewTokens);
        model.Calls.Should().Be(count, because: "the token chosen last is never fed back");
    }

    [Fact]
    public void Generate_RepetitionPenalty_UserModelFollowsHuggingFaceDefinition()
    {
        // Logits 3 → 2.0 and 4 → 1.5. With penalty 2: after 3 is seen, 3 → 1.0 < 1.5 so 4 wins; once both are
        // seen, 3 → 1.0 > 4 → 0.75. Without a penalty, 3 always wins.
        var model = new FixedLogitsModel([-1f, -1f, -1f, 2f, 1.5f]);

        var penalized = TextGenerator.Generate(model, [0], new GenerationOptions { MaxNewTokens = 4, RepetitionPenalty = 2 });
        var plain = TextGenerator.Generate(model, [0], new GenerationOptions { MaxNewTokens = 4 });

        penalized.Tokens.Should().Equal(3, 4, 3, 3);
        plain.Tokens.Should().Equal(3, 3, 3, 3);
    }

    [Theory]
    [InlineData("gpt2-untied")]
    [InlineData("llama-gqa")]
    public void GenerateBatch_EachRowEqualsItsPromptAloneAndStopsIndependently(string kind)
    {
        torch.manual_seed(46);
        var model = KeyValueCacheTests.CreateModel(kind);
        using var disposeModel = (nn.Module)model;
        int[][] prompts = [[3, 14, 15], [9, 2, 6], [5, 3, 5]];
        var alone = prompts.Select(p => TextGenerator.Generate(model, p, new GenerationOptions { MaxNewTokens = 8 }).Tokens).ToList();
        var stop = alone[1][2];

        var batch = TextGenerator.GenerateBatch(model, prompts, new GenerationOptions { MaxNewTokens = 8 });
        var withStop = TextGenerator.GenerateBatch(model, prompts, new GenerationOptions { MaxNewTokens = 8, StopTokenIds = [stop] });

        batch.Select(r => r.Tokens).Should().BeEquivalentTo(alone, o => o.WithStrictOrdering());
        for (var b = 0; b < prompts.Length; b++)
        {
            var index = alone[b].ToList().IndexOf(stop);
            var expected = index < 0 ? alone[b] : alone[b].Take(index + 1).ToList();
            withStop[b].Tokens.Should().Equal(expected, because: $"row {b}");
            withStop[b].StopReason.Should().Be(index < 0 ? GenerationStopReason.MaxNewTokens : GenerationStopReason.StopToken);
        }
    }

    [Fact]
    public void GenerateBatch_PromptsOfDifferentLengths_EachEqualsItsPromptAloneInOrder()
    {
        torch.manual_seed(48);
        var model = KeyValueCacheTests.CreateModel("llama-gqa");
        using var disposeModel = (nn.Module)model;
        int[][] prompts = [[3, 14, 15], [9, 2], [5, 3, 5], [7]];

        var batch = TextGenerator.GenerateBatch(model, prompts, new GenerationOptions { MaxNewTokens = 6 });

        for (var b = 0; b < prompts.Length; b++)
        {
            batch[b].Tokens.Should().Equal(TextGenerator.Generate(model, prompts[b], new GenerationOptions { MaxNewTokens = 6 }).Tokens, because: $"row {b}");
        }
    }

    [Fact]
    public void Generate_PromptPlusNewTokensBeyondContext_ThrowsWithLengthsAndFix()
    {
        var model = new FixedLogitsModel([0f, 1f], context: 10);

        var act = () => TextGenerator.Generate(model, [0, 1, 0, 1, 0, 1, 0], new GenerationOptions { MaxNewTokens = 4 });

        act.Should().Throw<ArgumentException>().WithMessage("*7 tokens*MaxNewTokens (4)*context length (10)*at most 6*");
    }

    [Fact]
    public void GenerateBatch_InvalidPrompts_ThrowNamingPrompts()
    {
        var model = new FixedLogitsModel([0f, 1f]);

        var empty = () => TextGenerator.Generate(model, Array.Empty<int>());
        var outside = () => TextGenerator.Generate(model, [0, 2]);
        var none = () => TextGenerator.GenerateBatch(model, Array.Empty<int[]>());

        empty.Should().Throw<ArgumentException>().WithMessage("*empty*").Which.ParamName.Should().Be("prompts");
        outside.Should().Throw<ArgumentException>().WithMessage("*prompts[0][1] is 2*[0, 2)*").Which.ParamName.Should().Be("prompts");
        none.Should().Throw<ArgumentException>().Which.ParamName.Should().Be("prompts");
    }

    [Theory]
    [InlineData(nameof(GenerationOptions.Temperature))]
    [InlineData(nameof(GenerationOptions.TopP))]
    [InlineData(nameof(GenerationOptions.TopK))]
    [InlineData(nameof(GenerationOptions.MaxNewTokens))]
    [InlineData(nameof(GenerationOptions.RepetitionPenalty))]
    public void Validate_OutOfRangeOption_ThrowsNamingTheProperty(string property)
    {
        var options = property switch
        {
            nameof(GenerationOptions.Temperature) => new GenerationOptions { Temperature = 0 },
            nameof(GenerationOptions.TopP) => new GenerationOptions { TopP = 1.5 },
            nameof(GenerationOptions.TopK) => new GenerationOptions { TopK = 0 },
            nameof(GenerationOptions.MaxNewTokens) => new GenerationOptions { MaxNewTokens = 0 },
            _ => new GenerationOptions { RepetitionPenalty = double.NaN },
        };

        var act = options.Validate;

        act.Should().Throw<ArgumentException>().WithMessage($"*{property}*").Which.ParamName.Should().Be(property);
    }

    [Fact]
    public void Validate_SeveralProblems_ReportsAllInOneException()
    {
        var options = new GenerationOptions { Temperature = -1, TopP = 0 };

        var act = options.Validate;

        act.Should().Throw<ArgumentException>().WithMessage("*Temperature (-1)*TopP (0)*(0, 1]*");
    }

    [Fact]
    public void RepetitionPenalty_HandMadeLogits_DividesPositiveAndMultipliesNegativeSeenScores()
    {
        using var scope = torch.NewDisposeScope();
        var scores = torch.tensor(new[] { 2f, -2f, 0.5f, -0.5f, 1f, 0f }).unsqueeze(0);
        var seen = torch.tensor(new[] { true, true, true, false, false, true }).unsqueeze(0);

        var penalized = LogitsFilters.RepetitionPenalty(scores, seen, 2.0);

        penalized[0].data<float>().ToArray().Should().Equal(1f, -4f, 0.25f, -0.5f, 1f, 0f);
    }

    [Fact]
    public void TopK_KeepsTheKLargestAndTiesWithTheKth()
    {
        using var scope = torch.NewDisposeScope();
        var scores = torch.tensor(new[] { 1f, 5f, 3f, 3f, 0f }).unsqueeze(0);

        var filtered = LogitsFilters.TopK(scores, 2)[0].data<float>().ToArray();

        filtered.Should().Equal(float.NegativeInfinity, 5f, 3f, 3f, float.NegativeInfinity);
    }

    [Fact]
    public void TopP_KeepsTheSmallestSetReachingP()
    {
        using var scope = torch.NewDisposeScope();
        // Probabilities 0.5, 0.3, 0.15, 0.05: the two most likely reach 0.75; top_p = 0.01 keeps only the best.
        var scores = torch.tensor(new[] { 0.15f, 0.5f, 0.05f, 0.3f }).log().unsqueeze(0);

        var kept = LogitsFilters.TopP(scores, 0.75)[0].isfinite().data<bool>().ToArray();
        var best = LogitsFilters.TopP(scores, 0.01)[0].isfinite().data<bool>().ToArray();
        var all = LogitsFilters.TopP(scores, 1.0)[0].isfinite().data<bool>().ToArray();

        kept.Should().Equal(false, true, false, true);
        best.Should().Equal(false, true, false, false);
        all.Should().Equal(true, true, true, true);
    }

    [Fact]
    public void SampleIndex_FollowsTheProbabilitiesAndNeverPicksZero()
    {
        var random = new Random(5);
        float[] probabilities = [0f, 0.25f, 0f, 0.75f];
        var counts = new int[4];
        for (var i = 0; i < 4000; i++)
        {
            counts[LogitsFilters.SampleIndex(probabilities, random)]++;
        }

        counts[0].Should().Be(0);
        counts[2].Should().Be(0);
        counts[1].Should().BeInRange(850, 1150);
        counts[3].Should().BeInRange(2850, 3150);
    }

    /// <summary>A user's own model (not a TorchSharp module) that always returns the same logits.</summary>
    private sealed class FixedLogitsModel(float[] logits, int context = 64) : ICausalLanguageModel
    {
        public int Calls { get; private set; }

        public int VocabularySize => logits.Length;

        public int ContextLength => context;

        public int LayerCount => 1;

        public Tensor NextTokenLogits(Tensor inputIds, KeyValueCache? cache = null)
        {
            Calls++;
            using var row = torch.tensor(logits).unsqueeze(0);
            return row.expand(inputIds.size(0), logits.Length).clone();
        }
    }
}

[Collection(TorchCollection.Name)]
public sealed class TextGeneratorDisposeScopeTests
{
    [Theory]
    [InlineData("gpt2-tied", false)]
    [InlineData("llama-gqa", true)]
    public void Generate_WithoutCallerScope_LeavesNoLiveTensors(string kind, bool sample)
    {
        torch.manual_seed(47);
        var model = KeyValueCacheTests.CreateModel(kind);
        using var disposeModel = (nn.Module)model;

        DisposeScopeManager.Statistics.Reset();
        var result = TextGenerator.Generate(model, [1, 2, 3], new GenerationOptions
        {
            MaxNewTokens = 6, Sample = sample, TopK = 10, TopP = 0.9, Temperature = 0.8, RepetitionPenalty = 1.3, Seed = 3,
        });

        result.Tokens.Should().HaveCount(6);
        DisposeScopeManager.Statistics.ThreadTotalLiveCount.Should().Be(0, because: DisposeScopeManager.Statistics.ToString());
    }
}
