using FluentAssertions;
using Microsoft.Extensions.Logging;
using NicheTune.Models;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace NicheTune.Tests.Training;

[Collection(TorchCollection.Name)]
public sealed class PrecisionTests
{
    private static Gpt2LMHeadModel Model(int seed)
    {
        torch.manual_seed(seed);
        return new Gpt2LMHeadModel(new Gpt2Config
        {
            VocabularySize = ByteTokenizer.VocabularySize, ContextLength = 32, EmbeddingSize = 32, LayerCount = 2, HeadCount = 2,
            TieWordEmbeddings = false, ResidualDropout = 0, EmbeddingDropout = 0, AttentionDropout = 0,
        });
    }

    [Theory]
    [InlineData("fpu vme avx512f avx512_bf16 avx512_vnni", true)]
    [InlineData("fpu vme amx_tile amx_bf16", true)]
    [InlineData("fpu vme avx2 avx512f", false)]
    [InlineData("", false)]
    public void IsSupported_Cpu_FollowsTheBf16Flags(string flags, bool expected)
    {
        MixedPrecision.CpuFlagsOverride = flags;
        try
        {
            MixedPrecision.IsSupported(Precision.BFloat16, torch.CPU, out string reason).Should().Be(expected);
            reason.Should().NotBeNullOrWhiteSpace();
            MixedPrecision.IsSupported(Precision.Float32, torch.CPU, out _).Should().BeTrue();
        }
        finally
        {
            MixedPrecision.CpuFlagsOverride = null;
        }
    }

    [Fact]
    public void Fit_Bf16OnACpuWithoutIt_RunsFp32AndLogsWhy()
    {
        var data = TestData.FoldocLanguageModeling(length: 32, trainEntries: 16, validationEntries: 0).Train;
        using var model = Model(seed: 3);
        var logs = new ListLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.AddProvider(logs));
        MixedPrecision.CpuFlagsOverride = "fpu avx2";
        FineTuneResult result;
        try
        {
            result = FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling()).WithPrecision(Precision.BFloat16)
                .WithBatchSize(4).WithMaxSteps(2).WithLogging(factory).Fit(data);
        }
        finally
        {
            MixedPrecision.CpuFlagsOverride = null;
        }

        result.Precision.Should().Be(Precision.Float32);
        logs.Messages.Should().Contain(m => m.Contains("runs in fp32") && m.Contains("AVX512-BF16"));
    }

    [Fact]
    public void Fit_Bf16_LearnsLikeFp32OnFoldoc()
    {
        var (train, validation) = TestData.FoldocLanguageModeling(length: 32, trainEntries: 120, validationEntries: 24);
        (double Before, double After, Precision Ran) Run(Precision precision)
        {
            using var model = Model(seed: 4);
            MixedPrecision.CpuFlagsOverride = "avx512_bf16";
            try
            {
                FineTuneResult result = FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling()).WithPrecision(precision)
                    .WithLearningRate(3e-3).WithBatchSize(8).WithMaxSteps(60).WithSeed(5).EvaluateEvery(60).Fit(train, validation);
                return (result.Evaluations[0].Metrics["validation.loss"], result.FinalMetrics["validation.loss"], result.Precision);
            }
            finally
            {
                MixedPrecision.CpuFlagsOverride = null;
            }
        }

        var fp32 = Run(Precision.Float32);
        var bf16 = Run(Precision.BFloat16);

        bf16.Ran.Should().Be(Precision.BFloat16);
        bf16.After.Should().BeLessThan(4.0, "the bf16 run learns (an untrained byte model starts near ln 256 = 5.5)");
        Math.Abs(bf16.After - fp32.After).Should().BeLessThan(0.02 * fp32.After, "bf16 products must not cost more than 2 % of the loss");
        bf16.After.Should().NotBe(fp32.After, "the bf16 run really used bf16 products");
    }

    [Fact]
    public void Enter_IsThreadLocalAndRestoresThePreviousType()
    {
        MixedPrecision.MatmulType.Should().BeNull();
        using (MixedPrecision.Enter(ScalarType.BFloat16))
        {
            MixedPrecision.MatmulType.Should().Be(ScalarType.BFloat16);
            ScalarType? other = ScalarType.Float32;
            var thread = new Thread(() => other = MixedPrecision.MatmulType);
            thread.Start();
            thread.Join();
            other.Should().BeNull();
        }

        MixedPrecision.MatmulType.Should().BeNull();
    }

    [Fact]
    public void WithPrecision_UndefinedValue_NamesTheChoices()
    {
        using var model = Model(seed: 6);
        var act = () => FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling()).WithPrecision((Precision)7);
        act.Should().Throw<ArgumentOutOfRangeException>().WithParameterName("precision").WithMessage("*BFloat16*");
    }
}
