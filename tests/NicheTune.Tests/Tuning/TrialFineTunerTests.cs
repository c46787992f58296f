using FluentAssertions;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;
using NicheTune.Tuning;
using TorchSharp;
using Xunit;

namespace NicheTune.Tests.Tuning;

[Collection(TorchCollection.Name)]
public sealed class TrialFineTunerTests
{
    [Fact]
    public void WithTrial_LearningRateSearch_ReportsEvaluationsAndStopsAPrunedTrialEarly()
    {
        var (train, validation) = TestData.FoldocLanguageModeling(length: 32, trainEntries: 40, validationEntries: 8);
        var grid = new Dictionary<string, IReadOnlyList<object>> { ["lr"] = [3e-2, 1e-6] };
        var study = Study.Create("lr", sampler: Samplers.Grid(grid), pruner: Pruners.Median(startupTrials: 1));
        var steps = new Dictionary<int, long>();

        study.Optimize(trial =>
        {
            using var scope = torch.NewDisposeScope();
            torch.manual_seed(1);
            using var model = new TinyCausalLm(ByteTokenizer.VocabularySize, dropoutRate: 0);
            FineTuneResult result = FineTuner.For(model)
                .WithObjective(Objectives.CausalLanguageModeling())
                .WithLearningRate(trial.SuggestFloat("lr", 1e-6, 1e-1, log: true))
                .WithBatchSize(8)
                .WithMaxSteps(8)
                .EvaluateEvery(2)
                .WithSeed(3)
                .WithTrial(trial)
                .Fit(train, validation);
            steps[trial.Number] = result.Steps;
            return result.FinalMetrics["validation.loss"];
        }, trials: 5);

        IReadOnlyList<FrozenTrial> trials = study.Trials;
        trials[0].State.Should().Be(TrialState.Complete);
        trials[0].IntermediateValues.Keys.Should().Equal(2, 4, 6, 8);
        steps[0].Should().Be(8);
        trials[1].State.Should().Be(TrialState.Pruned, "a learning rate of 1e-6 barely moves the loss: worse than the median at the first evaluation");
        steps[1].Should().Be(2, "the pruned trial stops at its first evaluation");
        trials[1].IntermediateValues.Should().HaveCount(1);
        trials[1].Values.Should().Equal(trials[1].IntermediateValues[2]);
        trials.Should().HaveCount(2, "the grid has two points");
        study.BestTrial.Number.Should().Be(0);
    }

    [Fact]
    public void WithTrial_UnknownMetric_FailsTheTrialNamingTheMetricsThere()
    {
        var (train, validation) = TestData.FoldocLanguageModeling(length: 32, trainEntries: 16, validationEntries: 4);
        var study = Study.Create("metric", pruner: Pruners.None);

        study.Optimize(trial =>
        {
            using var scope = torch.NewDisposeScope();
            using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);
            return FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling()).WithMaxSteps(2).EvaluateEvery(1)
                .WithTrial(trial, "validation.f1").Fit(train, validation).Steps;
        }, trials: 1);

        study.Trials[0].State.Should().Be(TrialState.Failed);
        study.Trials[0].Error.Should().Contain("'validation.f1'").And.Contain("'validation.loss'");
    }
}
