using FluentAssertions;
using NicheTune.Augmentation;
using NicheTune.Models;
using NicheTune.Prompting;
using NicheTune.Tests.Support;
using NicheTune.Text;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace NicheTune.Tests.Prompting;

/// <summary>
/// A hand-made "language model" over bytes: next-token logits are 0 except a few bonuses — after a space, 'n' (+8); after a
/// space, 'h' (+<c>hBias</c>); once an 'R' has been seen, 'n' after a space gets +2 more; once a 'D' has been seen, 'h' +2.
/// Every log-likelihood can be computed by hand from these rules.
/// </summary>
internal sealed class StubLm(double nBias = 8, double hBias = 0) : nn.Module<Tensor, Tensor>("StubLm")
{
    private static readonly int Space = Id(' ');
    private static readonly int N = Id('n');
    private static readonly int H = Id('h');

    public static int Id(char c) => c + 2;

    public int Calls { get; private set; }

    public override Tensor forward(Tensor ids)
    {
        Calls++;
        long b = ids.shape[0], t = ids.shape[1];
        using var scope = torch.NewDisposeScope();
        Tensor afterSpace = ids.eq(Space).to_type(ScalarType.Float32);
        Tensor seenR = ids.eq(Id('R')).cumsum(1).gt(0).to_type(ScalarType.Float32);
        Tensor seenD = ids.eq(Id('D')).cumsum(1).gt(0).to_type(ScalarType.Float32);
        Tensor logits = torch.zeros(b, t, ByteTokenizer.VocabularySize);
        logits[TensorIndex.Ellipsis, N] = afterSpace * (nBias + 2 * seenR);
        logits[TensorIndex.Ellipsis, H] = afterSpace * (hBias + 2 * seenD);
        return logits.MoveToOuterDisposeScope();
    }

    /// <summary>The reference: Σ log softmax by hand, in double precision.</summary>
    public double Reference(string prompt, string continuation)
    {
        int[] ids = new ByteTokenizer().Encode(prompt + continuation);
        int start = new ByteTokenizer().Encode(prompt).Length;
        double total = 0;
        bool r = false, d = false;
        for (int t = 0; t < ids.Length - 1; t++)
        {
            r |= ids[t] == Id('R');
            d |= ids[t] == Id('D');
            var logits = new double[ByteTokenizer.VocabularySize];
            if (ids[t] == Space)
            {
                logits[N] = nBias + (r ? 2 : 0);
                logits[H] = hBias + (d ? 2 : 0);
            }

            if (t + 1 >= start)
            {
                double logSum = Math.Log(logits.Sum(Math.Exp));
                total += logits[ids[t + 1]] - logSum;
            }
        }

        return total;
    }
}

[Collection(TorchCollection.Name)]
public sealed class LabelScoringTests
{
    private static readonly ByteTokenizer Tokenizer = new();
    private static readonly string[] Labels = ["networking", "hardware"];

    [Fact]
    public void Score_StubModel_EqualsHandComputedLogLikelihoods()
    {
        var model = new StubLm();
        var scorer = new LabelScorer(model, Tokenizer.Encode, new LabelScorerOptions { BatchSize = 3 });
        string[] prompts = ["Text: a Router\nCategory:", "Text: Disk\nCategory:"];
        string[] endings = [" networking", " hardware"];

        double[][] scores = scorer.Score(prompts, endings);

        for (int p = 0; p < prompts.Length; p++)
        {
            for (int e = 0; e < endings.Length; e++)
            {
                scores[p][e].Should().BeApproximately(model.Reference(prompts[p], endings[e]), 1e-3);
            }
        }

        model.Calls.Should().Be(2, "4 pairs in batches of 3");
    }

    [Fact]
    public void Predict_SumVersusLengthNormalised_FollowsTheHandComputation()
    {
        // Sum: " networking" pays for two more near-uniform tokens (2 × ln 258 ≈ 11.1) than its +8 bonus earns, so "hardware"
        // wins; per token, "networking" wins.
        var model = new StubLm();
        var prompt = new PromptTemplate("Text: {text}\nCategory:");
        var plain = new ZeroShotClassifier(new LabelScorer(model, Tokenizer.Encode), prompt, Labels);
        var normalised = new ZeroShotClassifier(new LabelScorer(model, Tokenizer.Encode, new LabelScorerOptions { LengthNormalize = true }), prompt, Labels);

        plain.Predict("cable").Label.Should().Be("hardware");
        normalised.Predict("cable").Label.Should().Be("networking");
        normalised.Predict("cable").Scores[0].Should().BeApproximately(model.Reference("Text: cable\nCategory:", " networking") / 11, 1e-4);
    }

    [Fact]
    public void Predict_Calibrated_SubtractsTheContentFreePrior()
    {
        // The model prefers 'h' after a space (+3 over 'n'); an 'R' in the text adds +2 to 'n', a 'D' +2 to 'h'. Uncalibrated it
        // always says hardware; calibrated against "N/A" it follows the evidence.
        var model = new StubLm(nBias: 0, hBias: 3);
        var prompt = new PromptTemplate("Text: {text}\nCategory:");
        LabelScoringOptions options = new() { Verbalizations = [" n", " h"] };
        var plain = new ZeroShotClassifier(new LabelScorer(model, Tokenizer.Encode), prompt, Labels, options);
        var calibrated = new ZeroShotClassifier(new LabelScorer(model, Tokenizer.Encode), prompt, Labels, options with { Calibrate = true });

        plain.PredictAll(["Router", "Disk"]).Select(p => p.Label).Should().Equal("hardware", "hardware");
        calibrated.PredictAll(["Router", "Disk"]).Select(p => p.Label).Should().Equal("networking", "hardware");
        calibrated.Prior![1].Should().BeApproximately(model.Reference("Text: N/A\nCategory:", " h"), 1e-4);
    }

    [Fact]
    public void Score_Gpt2_BatchedWithPaddingEqualsOneByOne()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(3);
        var model = new Gpt2LMHeadModel(new Gpt2Config { VocabularySize = ByteTokenizer.VocabularySize, ContextLength = 128, EmbeddingSize = 16, HeadCount = 2, LayerCount = 1 });
        string[] endings = [" networking", " hardware", " jargon"];
        double[] batched = new LabelScorer(model, Tokenizer.Encode, new LabelScorerOptions { BatchSize = 8 }).Score("Category:", endings);
        double[] single = new LabelScorer(model, Tokenizer.Encode, new LabelScorerOptions { BatchSize = 1 }).Score("Category:", endings);
        batched.Should().Equal(single, (a, b) => Math.Abs(a - b) < 1e-4);
        model.training.Should().BeTrue("the scorer restores the model's mode");
    }

    [Fact]
    public void InContext_SimilarDemonstrations_ClosestLastAndPromptLayout()
    {
        LabeledText[] pool =
        [
            new("routers forward packets", "networking"),
            new("disks store blocks", "hardware"),
            new("routers forward frames quickly", "networking"),
            new("fans cool the CPU", "hardware"),
        ];
        var classifier = new InContextClassifier(
            new LabelScorer(new StubLm(), Tokenizer.Encode),
            pool,
            new PromptTemplate("Text: {text}\nCategory: {label}"),
            new PromptTemplate("Text: {text}\nCategory:"),
            Labels,
            new InContextOptions { K = 2 });

        classifier.Demonstrations("routers forward frames").Select(d => d.Text).Should().Equal("routers forward packets", "routers forward frames quickly")
            .And.Subject.Should().HaveCount(2);
        classifier.BuildPrompt("routers forward frames").Should().Be(
            "Text: routers forward packets\nCategory: networking\n\nText: routers forward frames quickly\nCategory: networking\n\nText: routers forward frames\nCategory:");
        classifier.Predict("x").Label.Should().BeOneOf(Labels);
    }

    [Fact]
    public void InContext_Calibrated_PredictAllEqualsOneByOneAndUsesSameDemonstrationsForPrior()
    {
        // The stub prefers 'h' (+3); an 'R' in the prompt adds +2 to 'n'. Demonstrations without R or D keep the prior the same.
        LabeledText[] pool = [new("cables", "networking"), new("fans", "hardware"), new("plugs", "hardware")];
        var scorer = new LabelScorer(new StubLm(nBias: 0, hBias: 3), Tokenizer.Encode, new LabelScorerOptions { BatchSize = 5 });
        var classifier = new InContextClassifier(scorer, pool, new PromptTemplate("{text}: {label}"), new PromptTemplate("{text}:"), Labels,
            new InContextOptions { K = 2, Scoring = new LabelScoringOptions { Verbalizations = [" n", " h"], Calibrate = true } });

        IReadOnlyList<LabelPrediction> all = classifier.PredictAll(["Router", "Disk"]);

        all.Select(p => p.Label).Should().Equal("networking", "hardware");
        all.Select(p => p.Scores).Should().BeEquivalentTo(new[] { classifier.Predict("Router").Scores, classifier.Predict("Disk").Scores });
    }

    [Fact]
    public void InContext_RandomSelection_SameDemonstrationsForEveryQuery_StratifiedByLabel()
    {
        LabeledText[] pool = [.. Enumerable.Range(0, 20).Select(i => new LabeledText($"text {i}", i % 2 == 0 ? "networking" : "hardware"))];
        var classifier = new InContextClassifier(new LabelScorer(new StubLm(), Tokenizer.Encode), pool,
            new PromptTemplate("{text} => {label}"), new PromptTemplate("{text} =>"), Labels, new InContextOptions { K = 4, Selection = DemonstrationSelection.Random });
        IReadOnlyList<LabeledText> first = classifier.Demonstrations("a");
        first.Should().Equal(classifier.Demonstrations("b"));
        first.Count(d => d.Label == "networking").Should().Be(2);
    }

    [Fact]
    public void ZeroShot_TemplateWithoutText_Throws()
    {
        var act = () => new ZeroShotClassifier(new LabelScorer(new StubLm(), Tokenizer.Encode), new PromptTemplate("As a {role}: {input}"), Labels);
        act.Should().Throw<ArgumentException>().WithMessage("*exactly one slot, {text}*role, input*");
    }
}
