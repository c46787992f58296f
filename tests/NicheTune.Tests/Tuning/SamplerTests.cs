using System.Collections.Immutable;
using FluentAssertions;
using NicheTune.Tests.Support;
using NicheTune.Tuning;
using Xunit;
using Xunit.Abstractions;

namespace NicheTune.Tests.Tuning;

// Optimize with parallelism > 1 sets torch's process-wide thread count while it runs: not beside training tests.
[Collection(TorchCollection.Name)]
public sealed class SamplerTests(ITestOutputHelper output)
{
    [Fact]
    public void RandomSampler_FloatAndIntRanges_StaysInBoundsAndFillsThem()
    {
        var study = Study.Create("bounds", sampler: Samplers.Random(seed: 3), pruner: Pruners.None);
        var floats = new List<double>();
        var ints = new List<int>();
        study.Optimize(t =>
        {
            floats.Add(t.SuggestFloat("x", -2, 3));
            ints.Add(t.SuggestInt("n", 1, 4));
            return 0;
        }, trials: 300);

        floats.Should().OnlyContain(x => x >= -2 && x <= 3);
        floats.Min().Should().BeLessThan(-1.9);
        floats.Max().Should().BeGreaterThan(2.9);
        ints.Distinct().Order().Should().Equal(1, 2, 3, 4);
        ints.Count(n => n == 1).Should().BeInRange(50, 100, "the end points get a full share (uniform on [low − ½, high + ½] before rounding)");
    }

    [Fact]
    public void RandomSampler_LogScale_IsUniformInLogSpace()
    {
        var study = Study.Create("log", sampler: Samplers.Random(seed: 5), pruner: Pruners.None);
        var values = new List<double>();
        study.Optimize(t => { values.Add(t.SuggestFloat("lr", 1e-5, 1e-1, log: true)); return 0; }, trials: 400);

        values.Should().OnlyContain(v => v >= 1e-5 && v <= 1e-1);
        // Uniform in log space: each decade holds about a quarter of the draws; uniform in linear space would put ~90 % in the top decade.
        foreach (double decade in new[] { 1e-5, 1e-4, 1e-3, 1e-2 })
        {
            values.Count(v => v >= decade && v < decade * 10).Should().BeInRange(70, 130, $"decade {decade}");
        }
    }

    [Fact]
    public void SuggestFloatAndInt_WithStep_AreQuantised()
    {
        var study = Study.Create("step", sampler: Samplers.Random(seed: 9), pruner: Pruners.None);
        var floats = new List<double>();
        var ints = new List<int>();
        study.Optimize(t =>
        {
            floats.Add(t.SuggestFloat("dropout", 0.0, 0.5, step: 0.1));
            ints.Add(t.SuggestInt("width", 16, 128, step: 16));
            return 0;
        }, trials: 200);

        floats.Should().OnlyContain(x => Math.Abs(x * 10 - Math.Round(x * 10)) < 1e-9 && x >= 0 && x <= 0.5 + 1e-12);
        floats.Select(x => Math.Round(x, 6)).Distinct().Should().HaveCount(6);
        ints.Should().OnlyContain(n => n % 16 == 0 && n >= 16 && n <= 128);
        ints.Distinct().Should().HaveCount(8);
    }

    [Fact]
    public void IntDistribution_LogScale_FavoursSmallValues()
    {
        var study = Study.Create("intlog", sampler: Samplers.Random(seed: 1), pruner: Pruners.None);
        var values = new List<int>();
        study.Optimize(t => { values.Add(t.SuggestInt("width", 1, 1000, log: true)); return 0; }, trials: 300);

        values.Should().OnlyContain(v => v >= 1 && v <= 1000);
        values.Count(v => v <= 31).Should().BeInRange(110, 190, "half the log range lies below √1000 ≈ 31.6");
    }

    [Fact]
    public void Distributions_InvalidRanges_ThrowWithTheValueAndTheFix()
    {
        var log0 = () => new FloatDistribution(0, 1, log: true);
        log0.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*low > 0*0*");
        var swapped = () => new IntDistribution(5, 1);
        swapped.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*[5, 1]*");
        var both = () => new FloatDistribution(1e-5, 1, log: true, step: 0.1);
        both.Should().Throw<ArgumentException>().WithMessage("*log*step*");
        var duplicate = () => new CategoricalDistribution(["a", "b", "a"]);
        duplicate.Should().Throw<ArgumentException>().WithMessage("*'a'*twice*");
    }

    [Fact]
    public void Distribution_ToJsonFromJson_RoundTrips()
    {
        ParameterDistribution[] distributions =
        [
            new FloatDistribution(1e-5, 0.1, log: true), new FloatDistribution(0, 1, step: 0.25), new IntDistribution(1, 9, step: 2),
            new CategoricalDistribution(["adamw", "sgd"]),
        ];
        foreach (ParameterDistribution d in distributions)
        {
            ParameterDistribution.FromJson(d.ToJson()).Should().Be(d);
        }
    }

    [Fact]
    public void Suggest_SameNameWithAnotherDistribution_ThrowsNamingBoth()
    {
        var study = Study.Create("clash", pruner: Pruners.None);
        Trial trial = study.Ask();
        trial.SuggestFloat("lr", 1e-5, 1e-2, log: true);

        trial.SuggestFloat("lr", 1e-5, 1e-2, log: true).Should().Be(trial.Parameters["lr"].As<double>(), "asking again returns the same value");
        var clash = () => trial.SuggestFloat("lr", 1e-4, 1e-2, log: true);
        clash.Should().Throw<ArgumentException>().WithMessage("*'lr'*float [1E-05, 0.01] log*float [0.0001, 0.01] log*");
        var kind = () => trial.SuggestInt("lr", 1, 3);
        kind.Should().Throw<ArgumentException>().WithMessage("*'lr'*");
    }

    [Fact]
    public void Suggest_ConditionalParameter_ExistsOnlyWithItsParent()
    {
        var study = Study.Create("conditional", sampler: Samplers.Random(seed: 2), pruner: Pruners.None);
        study.Optimize(t =>
        {
            string optimizer = t.SuggestCategorical("optimizer", "adamw", "sgd");
            return optimizer == "sgd" ? t.SuggestFloat("momentum", 0.5, 0.99) : 1.0;
        }, trials: 30);

        foreach (FrozenTrial t in study.Trials)
        {
            t.Parameters.ContainsKey("momentum").Should().Be((string)t.Parameters["optimizer"] == "sgd");
        }

        study.Trials.Select(t => (string)t.Parameters["optimizer"]).Distinct().Should().HaveCount(2);
    }

    [Fact]
    public void GridSampler_TwoParameters_CoversEveryCombinationOnceThenStops()
    {
        var grid = new Dictionary<string, IReadOnlyList<object>>
        {
            ["lr"] = [1e-4, 1e-3, 1e-2],
            ["layers"] = [0, 1],
            ["activation"] = ["gelu", "relu"],
        };
        var study = Study.Create("grid", sampler: Samplers.Grid(grid, seed: 4), pruner: Pruners.None);

        IReadOnlyList<FrozenTrial> ran = study.Optimize(t =>
        {
            double lr = t.SuggestFloat("lr", 1e-5, 1e-1, log: true);
            int layers = t.SuggestInt("layers", 0, 3);
            string activation = t.SuggestCategorical("activation", "gelu", "relu", "tanh");
            return lr * (layers + 1) * (activation == "gelu" ? 1 : 2);
        }, trials: 100, parallelism: 3);

        ran.Should().HaveCount(12, "the grid has 3 × 2 × 2 points and the study stops there");
        study.Trials.Select(t => $"{t.Parameters["lr"]}/{t.Parameters["layers"]}/{t.Parameters["activation"]}").Should().OnlyHaveUniqueItems().And.HaveCount(12);
        study.Trials.Select(t => t.Number).Order().Should().Equal(Enumerable.Range(0, 12));
    }

    [Fact]
    public void RandomSampler_SameSeed_ReproducesTheSearch()
    {
        IReadOnlyList<double> Run() => Study.Create("repro", sampler: Samplers.Tpe(seed: 11), pruner: Pruners.None)
            .Optimize(t => Math.Pow(t.SuggestFloat("x", -5, 5) - 1, 2) + t.SuggestInt("k", 0, 4), trials: 25)
            .Select(t => t.Values[0]).ToList();

        Run().Should().Equal(Run());
    }

    [Fact]
    public void Tpe_TwoDimensionalQuadratic_BeatsRandomSearchOnMedianOfTenSeeds()
    {
        static double Quadratic(Trial t)
        {
            double x = t.SuggestFloat("x", -10, 10);
            double y = t.SuggestFloat("y", -10, 10);
            return Math.Pow(x - 2, 2) + Math.Pow(y + 3, 2);
        }

        (double tpe, double random) = MedianBest(Quadratic);
        output.WriteLine($"2-D quadratic, median best of 10 seeds after 60 trials: TPE {tpe:G4}, random {random:G4}");

        tpe.Should().BeLessThan(random, $"TPE's median best {tpe:G4} should beat random search's {random:G4}");
    }

    [Fact]
    public void Tpe_FiveDimensionalRosenbrock_BeatsRandomSearchOnMedianOfTenSeeds()
    {
        static double Rosenbrock(Trial t)
        {
            double[] x = Enumerable.Range(0, 5).Select(i => t.SuggestFloat($"x{i}", -2, 2)).ToArray();
            double sum = 0;
            for (int i = 0; i < 4; i++)
            {
                sum += 100 * Math.Pow(x[i + 1] - x[i] * x[i], 2) + Math.Pow(1 - x[i], 2);
            }

            return sum;
        }

        (double tpe, double random) = MedianBest(Rosenbrock);
        output.WriteLine($"5-D Rosenbrock, median best of 10 seeds after 60 trials: TPE {tpe:G4}, random {random:G4}");

        tpe.Should().BeLessThan(random, $"TPE's median best {tpe:G4} should beat random search's {random:G4}");
    }

    [Fact]
    public void Tpe_CategoricalWithOneGoodChoice_ConvergesOnIt()
    {
        var study = Study.Create("cat", sampler: Samplers.Tpe(seed: 3), pruner: Pruners.None);
        study.Optimize(t => t.SuggestCategorical("c", "a", "b", "c", "d", "e", "f") == "d" ? 0 : 1, trials: 60);

        study.Trials.Skip(30).Count(t => (string)t.Parameters["c"] == "d").Should().BeGreaterThan(15, "after the start-up trials TPE should mostly pick the good choice (random: 1 in 6)");
    }

    [Fact]
    public void ParzenEstimator_Density_IntegratesToOneOverTheRange()
    {
        var distribution = new FloatDistribution(-1, 3);
        var estimator = new ParzenEstimator(distribution, [0.2, 0.5, 2.5], new TpeOptions());
        const int Steps = 4000;
        double integral = 0;
        for (int i = 0; i < Steps; i++)
        {
            double x = -1 + (i + 0.5) * 4.0 / Steps;
            integral += Math.Exp(estimator.LogDensity(x)) * 4.0 / Steps;
        }

        integral.Should().BeApproximately(1.0, 1e-3);
        var intEstimator = new ParzenEstimator(new IntDistribution(0, 6, step: 2), [2, 2, 6], new TpeOptions());
        new[] { 0, 2, 4, 6 }.Sum(v => Math.Exp(intEstimator.LogDensity(v))).Should().BeApproximately(1.0, 1e-6);
    }

    [Fact]
    public void NormalMath_QuantileOfCdf_RoundTripsIntoTheTails()
    {
        foreach (double z in new[] { -8.0, -3.0, -1.0, 0.0, 0.5, 2.0 })
        {
            NormalMath.Quantile(NormalMath.Cdf(z)).Should().BeApproximately(z, 1e-5 * Math.Max(1, Math.Abs(z)));
        }

        NormalMath.Cdf(0).Should().BeApproximately(0.5, 1e-7);
        NormalMath.Cdf(1.959963985).Should().BeApproximately(0.975, 1e-7);
        var random = new Random(1);
        var far = Enumerable.Range(0, 500).Select(_ => NormalMath.SampleTruncated(random, mu: 0, sigma: 1, low: 6, high: 7)).ToList();
        far.Should().OnlyContain(x => x >= 6 && x <= 7);
        far.Average().Should().BeInRange(6.1, 6.25, "mass in [6, 7] of a standard normal is packed near 6 (mean ≈ 6.16)");
    }

    [Fact]
    public void TpeDefaults_GammaAndWeights_MatchOptuna()
    {
        TpeOptions.DefaultGamma(9).Should().Be(1);
        TpeOptions.DefaultGamma(11).Should().Be(2);
        TpeOptions.DefaultGamma(1000).Should().Be(25);
        TpeOptions.DefaultWeights(10).Should().OnlyContain(w => w == 1);
        double[] weights = TpeOptions.DefaultWeights(30);
        weights.Should().HaveCount(30);
        weights[0].Should().BeApproximately(1.0 / 30, 1e-12);
        weights[4].Should().BeApproximately(1.0, 1e-12);
        weights.Skip(5).Should().OnlyContain(w => w == 1);
    }

    private static (double Tpe, double Random) MedianBest(Func<Trial, double> objective)
    {
        var tpe = new List<double>();
        var random = new List<double>();
        for (int seed = 0; seed < 10; seed++)
        {
            tpe.Add(Best(Samplers.Tpe(seed), objective));
            random.Add(Best(Samplers.Random(seed), objective));
        }

        return (Median(tpe), Median(random));
    }

    private static double Best(ISampler sampler, Func<Trial, double> objective)
    {
        var study = Study.Create("closed-form", sampler: sampler, pruner: Pruners.None);
        study.Optimize(objective, trials: 60);
        return study.BestValue;
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        return 0.5 * (values[4] + values[5]);
    }
}
