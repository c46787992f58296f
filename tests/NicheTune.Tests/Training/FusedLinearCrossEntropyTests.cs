using FluentAssertions;
using NicheTune.Models;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;
using TorchSharp;
using Xunit;
using static NicheTune.Tests.Support.FusedLossCase;
using static TorchSharp.torch;

namespace NicheTune.Tests.Training;

[Collection(TorchCollection.Name)]
public sealed class FusedLinearCrossEntropyTests
{
    public static TheoryData<bool, bool, double, long> Cases() => new()
    {
        // bias, ignored rows, label smoothing, chunk elements (a chunk holds chunkElements / V rows)
        { false, false, 0.0, 1L << 20 },
        { false, true, 0.0, 5 * Vocabulary },
        { true, false, 0.0, 8 * Vocabulary },
        { true, true, 0.1, 3 * Vocabulary },
        { false, true, 0.2, 1 },
        { true, true, 0.05, 1L << 20 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Compute_Float32_EqualsUnfusedLossAndGradients(bool withBias, bool ignoreSome, double smoothing, long chunkElements)
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, weight, bias, targets) = Inputs(seed: 11, withBias, ignoreSome);

        Tensor fused = FusedLinearCrossEntropy.Compute(hidden, weight, bias, targets, smoothing, chunkElements: chunkElements);
        fused.backward();
        var fusedGrads = Grads(hidden, weight, bias);

        Tensor plain = nn.functional.cross_entropy(nn.functional.linear(hidden, weight, bias), targets, ignore_index: TokenBatch.IgnoreIndex, label_smoothing: smoothing);
        plain.backward();
        var plainGrads = Grads(hidden, weight, bias);

        RelativeError(fused, plain).Should().BeLessThan(1e-5);
        for (int i = 0; i < plainGrads.Count; i++)
        {
            RelativeError(fusedGrads[i], plainGrads[i]).Should().BeLessThan(1e-5, $"gradient {i} must match");
        }

        if (ignoreSome)
        {
            Tensor ignoredRows = targets.eq(TokenBatch.IgnoreIndex).nonzero().squeeze(1);
            fusedGrads[0].index_select(0, ignoredRows).abs().max().item<float>().Should().Be(0f, "ignored rows get no gradient");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Compute_BFloat16Products_StayWithinBf16RoundingOfTheFp32LossAndGradients(bool withBias, bool ignoreSome, double smoothing, long chunkElements)
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, weight, bias, targets) = Inputs(seed: 16, withBias, ignoreSome);

        Tensor low = FusedLinearCrossEntropy.Compute(hidden, weight, bias, targets, smoothing, chunkElements: chunkElements, matmulType: ScalarType.BFloat16);
        low.backward();
        var lowGrads = Grads(hidden, weight, bias);
        Tensor exact = FusedLinearCrossEntropy.Compute(hidden, weight, bias, targets, smoothing, chunkElements: chunkElements);
        exact.backward();
        var exactGrads = Grads(hidden, weight, bias);

        // bf16 keeps 8 significant bits (relative rounding 2^-9 ≈ 0.2 %); products of width 16 stay within a few of those.
        low.dtype.Should().Be(ScalarType.Float32);
        RelativeError(low, exact).Should().BeLessThan(1e-2);
        RelativeError(low, exact).Should().BeGreaterThan(0, "the products really ran in bf16");
        for (int i = 0; i < exactGrads.Count; i++)
        {
            lowGrads[i].dtype.Should().Be(ScalarType.Float32);
            RelativeError(lowGrads[i], exactGrads[i]).Should().BeLessThan(3e-2, $"gradient {i} must follow the fp32 one");
            Cosine(lowGrads[i], exactGrads[i]).Should().BeGreaterThan(0.999, $"gradient {i} must point the same way");
        }

        if (ignoreSome)
        {
            Tensor ignoredRows = targets.eq(TokenBatch.IgnoreIndex).nonzero().squeeze(1);
            lowGrads[0].index_select(0, ignoredRows).abs().max().item<float>().Should().Be(0f, "ignored rows get no gradient");
        }
    }

    private static double Cosine(Tensor a, Tensor b) =>
        (a.reshape(-1).dot(b.reshape(-1)) / (a.norm() * b.norm())).item<float>();

    [Fact]
    public void Compute_ScaledLoss_ScalesTheGradients()
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, weight, _, targets) = Inputs(seed: 12, withBias: false, ignoreSome: true);
        FusedLinearCrossEntropy.Compute(hidden, weight, null, targets, 0.0).backward();
        var once = Grads(hidden, weight, null);
        (FusedLinearCrossEntropy.Compute(hidden, weight, null, targets, 0.0) * 3.0).backward();
        var thrice = Grads(hidden, weight, null);

        RelativeError(thrice[0], once[0] * 3).Should().BeLessThan(1e-6);
        RelativeError(thrice[1], once[1] * 3).Should().BeLessThan(1e-6);
    }

    [Fact]
    public void Compute_FrozenWeight_GivesNoWeightGradientAndTheSameHiddenGradient()
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, weight, _, targets) = Inputs(seed: 13, withBias: false, ignoreSome: false);
        weight.requires_grad = false;
        FusedLinearCrossEntropy.Compute(hidden, weight, null, targets, 0.0).backward();
        Tensor fusedHidden = hidden.grad!.clone();
        hidden.grad = null;
        nn.functional.cross_entropy(nn.functional.linear(hidden, weight), targets).backward();

        weight.grad.Should().BeNull();
        RelativeError(fusedHidden, hidden.grad!).Should().BeLessThan(1e-5);
    }

    [Fact]
    public void Compute_UnderNoGrad_ReturnsTheLossWithoutAGraph()
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, weight, _, targets) = Inputs(seed: 14, withBias: false, ignoreSome: true);
        Tensor plain = nn.functional.cross_entropy(nn.functional.linear(hidden, weight), targets, ignore_index: TokenBatch.IgnoreIndex);
        using (torch.no_grad())
        {
            Tensor loss = FusedLinearCrossEntropy.Compute(hidden, weight, null, targets, 0.0);
            loss.requires_grad.Should().BeFalse();
            RelativeError(loss, plain).Should().BeLessThan(1e-5);
        }
    }

    [Fact]
    public void Compute_EveryTargetIgnored_IsNaNLikeTorch()
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, weight, _, _) = Inputs(seed: 15, withBias: false, ignoreSome: false);
        Tensor targets = torch.full(Rows, TokenBatch.IgnoreIndex, dtype: ScalarType.Int64);

        double fused = FusedLinearCrossEntropy.Compute(hidden, weight, null, targets, 0.0).item<float>();
        double plain = nn.functional.cross_entropy(nn.functional.linear(hidden, weight), targets, ignore_index: TokenBatch.IgnoreIndex).item<float>();

        double.IsNaN(plain).Should().BeTrue();
        double.IsNaN(fused).Should().BeTrue();
    }

    [Theory]
    [InlineData(2048, 50304, 32L << 20, 512)]   // limit 667 rows: 4 chunks of 512, not 3 × 667 + 47
    [InlineData(2048, 50304, 24L << 20, 410)]   // the default's limit, 500 rows: 5 chunks
    [InlineData(2048, 50304, 16L << 20, 293)]   // limit 333 rows: 7 chunks
    [InlineData(2048, 8192, 16L << 20, 2048)]   // everything fits in one chunk
    [InlineData(37, 128, 1, 1)]                 // a limit below one row still takes one row at a time
    [InlineData(1, 50304, 32L << 20, 1)]
    public void ChunkRows_FewestChunksUnderTheLimit_EvenedOut(long count, long stride, long limit, long expected)
    {
        long rows = FusedLinearCrossEntropy.ChunkRows(count, stride, limit);

        rows.Should().Be(expected);
        (rows * stride).Should().BeLessThanOrEqualTo(Math.Max(limit, stride), "a chunk never exceeds the limit (or one row)");
    }

    [Fact]
    public void Compute_MismatchedShapes_NamesTheShapes()
    {
        using var scope = torch.NewDisposeScope();
        var act = () => FusedLinearCrossEntropy.Compute(torch.zeros(4, 8), torch.zeros(10, 6), null, torch.zeros(4, dtype: ScalarType.Int64), 0.0);
        act.Should().Throw<ArgumentException>().WithMessage("*[4, 8]*[10, 6]*");
    }

    [Fact]
    public void Fit_Gpt2WithFusedLoss_FollowsTheUnfusedRunStepForStep()
    {
        var data = TestData.FoldocLanguageModeling(length: 32, trainEntries: 48, validationEntries: 0).Train;
        double[] Run(bool fused, double smoothing, int accumulate)
        {
            torch.manual_seed(21);
            using var model = new Gpt2LMHeadModel(new Gpt2Config
            {
                VocabularySize = ByteTokenizer.VocabularySize, ContextLength = 32, EmbeddingSize = 32, LayerCount = 2, HeadCount = 2,
                TieWordEmbeddings = false, ResidualDropout = 0, EmbeddingDropout = 0, AttentionDropout = 0,
            });
            var recorder = new LossRecorder();
            FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling(smoothing, fuseOutputLayer: fused))
                .WithLearningRate(3e-3).WithBatchSize(8 / accumulate).WithGradientAccumulation(accumulate).WithMaxSteps(12)
                .ShuffleTrainingData(false).LogEvery(1).ClipGradientNorm(1.0).WithCallback(recorder).Fit(data);
            return [.. recorder.Losses];
        }

        // With accumulation the fused loss's weight gradient reaches .grad after each micro-batch's backward, scaled by 1/2.
        foreach ((double smoothing, int accumulate) in new[] { (0.0, 1), (0.1, 1), (0.0, 2) })
        {
            double[] fused = Run(fused: true, smoothing, accumulate);
            double[] plain = Run(fused: false, smoothing, accumulate);
            fused.Should().HaveCount(12);
            for (int i = 0; i < fused.Length; i++)
            {
                fused[i].Should().BeApproximately(plain[i], 1e-4 * plain[i], $"step {i + 1} (ε = {smoothing}, accumulation {accumulate})");
            }

            fused[^1].Should().BeLessThan(fused[0], "the model learns");
        }
    }

    private sealed class LossRecorder : ITrainingCallback
    {
        public List<double> Losses { get; } = [];

        public void OnStepEnd(in StepEndArguments args)
        {
            if (args.Loss is { } loss)
            {
                Losses.Add(loss);
            }
        }
    }
}
