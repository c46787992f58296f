using System.Text.RegularExpressions;
using FluentAssertions;
using NicheTune.Augmentation;
using NicheTune.Evaluation;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;
using NicheTune.Tuning;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;

namespace NicheTune.Tests.Docs.Extending;

/// <summary>docs/extending.md shows exactly the code of ExtendingExamples.cs, and each example works plugged in like a built-in.</summary>
[Collection(TorchCollection.Name)]
public sealed class ExtendingDocTests(ITestOutputHelper output)
{
    private static readonly Lazy<(List<TokenExample> Train, List<TokenExample> Validation)> Data =
        new(() => TestData.FoldocLanguageModeling(length: 32, trainEntries: 80, validationEntries: 20));

    [Fact]
    public void ExtendingDoc_CodeBlocks_AreTheCompiledExamples()
    {
        string source = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "docs", "ExtendingExamples.cs"));
        string page = Normalize(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "docs", "extending.md")));
        var regions = Regex.Matches(source, @"// <extending:(?<name>[a-z]+)>\n(?<code>.*?)// </extending:\k<name>>", RegexOptions.Singleline);

        regions.Select(r => r.Groups["name"].Value).Should().BeEquivalentTo(["freeze", "schedule", "regularizer", "metric", "augmenter", "callback", "sampler", "pruner"]);
        foreach (Match region in regions)
        {
            page.Should().Contain(Normalize(region.Groups["code"].Value), $"docs/extending.md must show the '{region.Groups["name"].Value}' example exactly as ExtendingExamples.cs compiles it");
        }
    }

    [Fact]
    public void BiasesOnly_Fit_TrainsOnlyTheBiases()
    {
        using var model = NewModel();
        var before = Weights.Snapshot(model);

        Builder(model).Freeze(new BiasesOnly()).WithMaxSteps(5).Fit(Data.Value.Train);

        var after = Weights.Snapshot(model);
        foreach (string name in before.Keys)
        {
            bool changed = !before[name].allclose(after[name]);
            changed.Should().Be(name.EndsWith(".bias", StringComparison.Ordinal), $"only biases train under BiasesOnly ('{name}')");
        }
    }

    [Fact]
    public void InverseSquareRoot_Fit_WarmsUpThenDecaysAsOneOverRootStep()
    {
        using var model = NewModel();
        FineTuneResult result = Builder(model).WithSchedule(new InverseSquareRoot(warmupSteps: 4)).WithLearningRate(1e-2)
            .RecordLearningRates().WithMaxSteps(16).Fit(Data.Value.Train);

        double[] rates = [.. result.LearningRates.Select(r => r.Rates[0])];
        rates.Should().HaveCount(16);
        rates.Take(4).Should().BeInAscendingOrder();
        rates.Skip(4).Should().BeInDescendingOrder();
        rates.Max().Should().BeApproximately(1e-2, 1e-9);
        rates[^1].Should().BeApproximately(1e-2 * Math.Sqrt(4 / 16.0), 1e-9);
    }

    [Fact]
    public void InverseSquareRoot_NoWarmup_FailsValidationWithTheValue()
    {
        using var model = NewModel();
        var fit = () => Builder(model).WithSchedule(new InverseSquareRoot(warmupSteps: 0)).WithMaxSteps(4).Fit(Data.Value.Train);
        fit.Should().Throw<FineTunePlanException>().WithMessage("*got 0*");
    }

    [Fact]
    public void L1Penalty_Fit_ShrinksTheWeightMatrices()
    {
        double L1(TinyCausalLm model) => model.named_parameters().Where(p => p.name.EndsWith(".weight") && p.parameter.dim() == 2)
            .Sum(p => p.parameter.abs().sum().ToDouble());

        torch.manual_seed(3);
        using var plain = NewModel();
        torch.manual_seed(3);
        using var penalised = NewModel();
        Builder(plain).WithMaxSteps(20).Fit(Data.Value.Train);
        Builder(penalised).Regularize(r => r.Add(new L1Penalty(1e-3))).WithMaxSteps(20).Fit(Data.Value.Train);

        L1(penalised).Should().BeLessThan(L1(plain) * 0.99);
    }

    [Fact]
    public void BitsPerToken_Evaluate_IsTheLossInBase2()
    {
        using var model = NewModel();
        var metrics = Builder(model).Evaluate(new BitsPerToken()).WithMaxSteps(1).Build().Evaluate(Data.Value.Validation);

        metrics["validation.bits_per_token"].Should().BeApproximately(metrics["validation.loss"] / Math.Log(2), 1e-3);
    }

    [Fact]
    public void ExpandAbbreviations_AugmentAll_ExpandsOnlyTextsWithAnAbbreviation()
    {
        var augmenter = Augmenters.Sequence<string>(new ExpandAbbreviations(new Dictionary<string, string> { ["DB"] = "database", ["OS"] = "operating system" }));
        string[] texts = ["a DB stores rows", "the OS schedules a DB job", "no abbreviation here"];

        List<string> augmented = texts.AugmentAll(augmenter, seed: 1);

        augmented.Should().Contain(texts);
        augmented.Except(texts).Should().BeEquivalentTo(["a database stores rows", "the operating system schedules a DB job"]);
    }

    [Fact]
    public void StopAtLoss_Fit_StopsTheRunOnceTheTargetIsReached()
    {
        using var model = NewModel();
        var callback = new StopAtLoss(target: 5.0);

        FineTuneResult result = Builder(model).WithCallback(callback).WithLearningRate(1e-2).LogEvery(1).WithMaxSteps(400).Fit(Data.Value.Train);

        result.StopReason.Should().Be(StopReason.StoppedByCallback);
        result.StopMessage.Should().Contain("reached the target");
        callback.ReachedAt.Should().Be(result.Steps);
        result.Steps.Should().BeLessThan(400);
    }

    [Fact]
    public void AroundTheBest_Optimize_ClosesInOnTheMinimum()
    {
        var study = Study.Create("parabola", StudyDirection.Minimize, new AroundTheBest(seed: 1), Pruners.None);

        study.Optimize(trial => Math.Pow(trial.SuggestFloat("x", 0, 5) - 2, 2) + Math.Pow(trial.SuggestInt("n", 0, 20) - 7, 2), trials: 60);

        double bestRandom = study.Trials.Take(5).Min(t => t.Value!.Value);
        output.WriteLine($"best of the 5 random trials {bestRandom:F4}, best after 60 trials {study.BestValue:F4} at {string.Join(", ", study.BestParameters)}");
        study.BestValue.Should().BeLessThan(bestRandom / 4).And.BeLessThan(0.5);
    }

    [Fact]
    public void ThresholdPruner_Optimize_PrunesOnlyTrialsPastTheBound()
    {
        var study = Study.Create("threshold", StudyDirection.Minimize, Samplers.Random(seed: 2), new ThresholdPruner(upper: 10));

        study.Optimize(trial =>
        {
            double slope = trial.SuggestFloat("slope", 0, 4);
            for (long step = 1; step <= 5; step++)
            {
                trial.Report(step, slope * step);
                if (trial.ShouldPrune())
                {
                    throw new TrialPrunedException();
                }
            }

            return slope * 5;
        }, trials: 20);

        study.Trials.Should().OnlyContain(t => (t.State == TrialState.Pruned) == ((double)t.Parameters["slope"] * 5 > 10));
        study.Trials.Where(t => t.State == TrialState.Pruned).Should().NotBeEmpty()
            .And.OnlyContain(t => t.Attributes.ContainsKey("pruned_because"));
    }

    private static TinyCausalLm NewModel() => new(ByteTokenizer.VocabularySize, width: 16, dropoutRate: 0.0);

    private static FineTunerBuilder<TokenBatch> Builder(TinyCausalLm model) => FineTuner.For(model)
        .WithObjective(Objectives.CausalLanguageModeling())
        .WithLearningRate(3e-3)
        .WithBatchSize(8)
        .WithSeed(1);

    // Indentation differs between a file and a Markdown block; compare line contents.
    private static string Normalize(string text) => string.Join('\n', text.Replace("\r", "").Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0));
}
