using FluentAssertions;
using NicheTune.Scheduling;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;
using TorchSharp;
using Xunit;

namespace NicheTune.Tests.Scheduling;

[Collection(TorchCollection.Name)]
public sealed class ScheduleTrainingTests
{
    private static readonly List<TokenExample> Train = TestData.FoldocLanguageModeling(length: 32, trainEntries: 40, validationEntries: 0).Train;

    [Fact]
    public void Fit_WarmupThenCosine_AppliesTheScheduleToEveryGroupEachStep()
    {
        torch.manual_seed(1);
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);
        FineTuneResult result = FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling())
            .WithSchedule(Schedules.LinearWarmup(4).ThenCosine(minFactor: 0.1))
            .WithLearningRate(1e-2).RecordLearningRates().WithBatchSize(4).WithMaxSteps(20).Fit(Train);

        double[] expected = Schedules.LinearWarmup(4).ThenCosine(minFactor: 0.1).Sample(20);
        result.LearningRates.Should().HaveCount(20);
        for (int step = 0; step < 20; step++)
        {
            result.LearningRates[step].Rates.Should().OnlyContain(r => Math.Abs(r - 1e-2 * expected[step]) < 1e-15, $"step {step}");
        }

        result.LearningRates[0].Rates[0].Should().Be(0, "warm-up starts from zero");
        result.LearningRates[4].Rates[0].Should().BeApproximately(1e-2, 1e-15, "the first step after warm-up runs at the base rate");
    }

    [Fact]
    public void Build_WarmupLongerThanTheRun_IsReportedAtFit()
    {
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);
        var fit = () => FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling())
            .WithSchedule(Schedules.LinearWarmup(500).ThenCosine()).WithBatchSize(4).WithMaxSteps(30).Fit(Train);
        fit.Should().Throw<FineTunePlanException>().WithMessage("*Warm-up of 500 steps is longer than the run (30 steps)*");
    }

    [Fact]
    public void Fit_ReduceOnPlateau_CutsTheRateWhenValidationStopsImproving()
    {
        // Opposite validation labels: validation loss only rises, so every evaluation after the first is "no improvement".
        var train = Enumerable.Range(0, 64).Select(i => new TokenExample([2 + i % 50, 3 + i % 7], Label: i % 2)).ToList();
        var validation = train.Take(16).Select(e => e with { Label = 1 - e.Label }).ToList();
        torch.manual_seed(3);
        using var model = new TinyClassifier(64, 2);

        FineTuneResult result = FineTuner.For(model).WithObjective(Objectives.SequenceClassification())
            .WithSchedule(Schedules.ReduceOnPlateau(factor: 0.5, patience: 1)).WithLearningRate(5e-2).RecordLearningRates()
            .WithBatchSize(8).WithMaxSteps(8).EvaluateEvery(1).Fit(train, validation);

        double[] rates = [.. result.LearningRates.Select(r => r.Rates[0])];
        rates[0].Should().Be(5e-2);
        rates[^1].Should().BeLessThan(5e-2 * 0.5 + 1e-15, "patience 1 with a rising loss halves the rate at least once");
        rates.Zip(rates.Skip(1)).Should().OnlyContain(p => p.Second <= p.First, "the rate never goes back up");
    }

    [Fact]
    public void Fit_UserWrittenSchedule_PlugsInLikeABuiltIn()
    {
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);
        FineTuneResult result = FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling())
            .WithSchedule(new EveryOtherStepHalf()).WithLearningRate(1e-2).RecordLearningRates().WithBatchSize(4).WithMaxSteps(4).Fit(Train);

        result.LearningRates.Select(r => r.Rates[0]).Should().Equal(1e-2, 5e-3, 1e-2, 5e-3);
    }

    private sealed class EveryOtherStepHalf : ILearningRateSchedule
    {
        public double Multiplier(long step, long totalSteps) => step % 2 == 0 ? 1.0 : 0.5;
    }
}
