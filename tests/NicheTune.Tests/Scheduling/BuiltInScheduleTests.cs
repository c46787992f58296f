using FluentAssertions;
using NicheTune.Scheduling;
using Xunit;
using static NicheTune.Tests.Scheduling.ScheduleReference;

namespace NicheTune.Tests.Scheduling;

public sealed class BuiltInScheduleTests
{
    [Fact]
    public void Constant_AnyStep_IsOne()
    {
        // transformers.get_constant_schedule: λ(t) = 1
        Schedules.Constant().MatchesAtEveryStep(100, _ => 1.0);
        Schedules.Constant().HasAt(100, (0, 1.0), (99, 1.0));
    }

    [Fact]
    public void LinearWarmup_Steps_MatchesHfConstantScheduleWithWarmup()
    {
        // transformers.get_constant_schedule_with_warmup(num_warmup_steps=200)
        var schedule = Schedules.LinearWarmup(200);
        schedule.MatchesAtEveryStep(1000, t => HfConstantWithWarmup(t, 200));
        schedule.HasAt(1000, (0, 0.0), (100, 0.5), (199, 199.0 / 200), (200, 1.0), (999, 1.0));
    }

    [Fact]
    public void LinearWarmup_StartFactor_MatchesTorchLinearLr()
    {
        // torch.optim.lr_scheduler.LinearLR(start_factor=1/3, end_factor=1.0, total_iters=10)
        var schedule = Schedules.LinearWarmup(10, startFactor: 1.0 / 3);
        schedule.MatchesAtEveryStep(50, t => TorchLinearLr(t, 1.0 / 3, 1.0, 10));
        schedule.HasAt(50, (0, 1.0 / 3), (9, (1.0 / 3) + (2.0 / 3 * 0.9)), (10, 1.0), (49, 1.0));
    }

    [Theory]
    [InlineData(1000, 0.1)]
    [InlineData(1001, 0.1)]
    [InlineData(37, 0.06)]
    public void LinearWarmup_Fraction_ResolvesLikeHfWarmupRatio(long total, double ratio)
    {
        // transformers TrainingArguments.get_warmup_steps = ceil(num_training_steps · warmup_ratio)
        long w = HfWarmupSteps(total, ratio);
        var schedule = Schedules.LinearWarmup(ratio);
        schedule.StepsFor(total).Should().Be(w);
        schedule.MatchesAtEveryStep(total, t => HfConstantWithWarmup(t, w));
    }

    [Fact]
    public void LinearWarmup_FractionWithFloatingPointNoise_DoesNotAddAStep()
    {
        // 0.07 · 100 = 7.000000000000001 in binary floating point; the warm-up is 7 steps, not 8.
        Schedules.LinearWarmup(0.07).StepsFor(100).Should().Be(7);
        Schedules.LinearWarmup(0.07).HasAt(100, (6, 6.0 / 7), (7, 1.0));
    }

    [Fact]
    public void LinearDecay_Alone_MatchesHfLinearWithoutWarmupAndTorchLinearLr()
    {
        // transformers.get_linear_schedule_with_warmup(num_warmup_steps=0, num_training_steps=1000)
        Schedules.LinearDecay().MatchesAtEveryStep(1000, t => HfLinearWithWarmup(t, 0, 1000));
        Schedules.LinearDecay().HasAt(1000, (0, 1.0), (500, 0.5), (999, 0.001));

        // torch LinearLR(start_factor=1.0, end_factor=0.2, total_iters=1000)
        Schedules.LinearDecay(endFactor: 0.2).MatchesAtEveryStep(1000, t => TorchLinearLr(t, 1.0, 0.2, 1000));
    }

    [Fact]
    public void LinearWarmupThenLinear_MatchesHfLinearScheduleWithWarmup()
    {
        // transformers.get_linear_schedule_with_warmup(num_warmup_steps=200, num_training_steps=1000)
        var schedule = Schedules.LinearWarmup(200).ThenLinear();
        schedule.MatchesAtEveryStep(1000, t => HfLinearWithWarmup(t, 200, 1000));
        schedule.HasAt(1000, (0, 0.0), (199, 0.995), (200, 1.0), (201, 799.0 / 800), (600, 0.5), (999, 1.0 / 800));
    }

    [Fact]
    public void Cosine_Alone_MatchesHfCosineWithoutWarmupAndTorchCosineAnnealing()
    {
        // transformers.get_cosine_schedule_with_warmup(num_warmup_steps=0, num_training_steps=1000)
        Schedules.Cosine().MatchesAtEveryStep(1000, t => HfCosineWithWarmup(t, 0, 1000));
        Schedules.Cosine().HasAt(1000, (0, 1.0), (500, 0.5), (999, 0.5 * (1 + Math.Cos(Math.PI * 0.999))));

        // torch CosineAnnealingLR(T_max=1000, eta_min=0.1 · base)
        Schedules.Cosine(minFactor: 0.1).MatchesAtEveryStep(1000, t => TorchCosineAnnealing(t, 1000, 0.1));
    }

    [Fact]
    public void LinearWarmupThenCosine_MatchesHfCosineScheduleWithWarmup()
    {
        // transformers.get_cosine_schedule_with_warmup(num_warmup_steps=200, num_training_steps=1000)
        var schedule = Schedules.LinearWarmup(200).ThenCosine();
        schedule.MatchesAtEveryStep(1000, t => HfCosineWithWarmup(t, 200, 1000));
        schedule.HasAt(1000, (0, 0.0), (199, 0.995), (200, 1.0), (600, 0.5), (999, 0.5 * (1 + Math.Cos(Math.PI * 799 / 800))));
    }

    [Fact]
    public void LinearWarmupThenCosine_MinFactor_MatchesHfCosineWithMinLr()
    {
        // transformers.get_cosine_with_min_lr_schedule_with_warmup(num_warmup_steps=200, num_training_steps=1000, min_lr_rate=0.1)
        var schedule = Schedules.LinearWarmup(200).ThenCosine(minFactor: 0.1);
        schedule.MatchesAtEveryStep(1000, t => HfCosineWithMinLrWithWarmup(t, 200, 1000, 0.1));
        schedule.HasAt(1000, (200, 1.0), (600, 0.55));
    }

    [Fact]
    public void LinearWarmupFractionThenCosine_MatchesHfWithWarmupRatio()
    {
        // Trainer(warmup_ratio=0.1, lr_scheduler_type="cosine") over 1001 steps: warm-up ceil(100.1) = 101 steps.
        long w = HfWarmupSteps(1001, 0.1);
        Schedules.LinearWarmup(0.1).ThenCosine().MatchesAtEveryStep(1001, t => HfCosineWithWarmup(t, w, 1001));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void CosineWithHardRestarts_AfterWarmup_MatchesHf(int cycles)
    {
        // transformers.get_cosine_with_hard_restarts_schedule_with_warmup(100, 1000, num_cycles)
        var schedule = Schedules.LinearWarmup(100).Then(Schedules.CosineWithHardRestarts(cycles));
        schedule.MatchesAtEveryStep(1000, t => HfCosineHardRestartsWithWarmup(t, 100, 1000, cycles));
        schedule.HasAt(1000, (0, 0.0), (99, 0.99), (100, 1.0));
    }

    [Fact]
    public void CosineWithHardRestarts_ThreeCycles_RestartsAtEachThird()
    {
        // 900 decay steps, 3 cycles of 300: each starts back at 1, the middle of each is ½.
        var schedule = Schedules.LinearWarmup(100).Then(Schedules.CosineWithHardRestarts(3));
        schedule.HasAt(1000, (100, 1.0), (250, 0.5), (400, 1.0), (550, 0.5), (700, 1.0), (850, 0.5));
    }

    [Fact]
    public void CosineWithHardRestarts_MinFactor_ScalesBetweenFloorAndOne()
    {
        var plain = Schedules.CosineWithHardRestarts(2);
        var floored = Schedules.CosineWithHardRestarts(2, minFactor: 0.2);
        floored.MatchesAtEveryStep(500, t => 0.2 + (0.8 * HfCosineHardRestartsWithWarmup(t, 0, 500, 2)));
        floored.Multiplier(500, 500).Should().Be(0.2);
        plain.Multiplier(500, 500).Should().Be(0.0, "HF returns 0 once progress reaches 1");
    }

    [Fact]
    public void Exponential_MatchesTorchExponentialLrPerStep()
    {
        // torch ExponentialLR(gamma=0.99), scheduler.step() after every optimizer step
        var schedule = Schedules.Exponential(0.99);
        schedule.MatchesAtEveryStep(1000, t => TorchExponential(t, 0.99));
        schedule.HasAt(1000, (0, 1.0), (1, 0.99), (100, Math.Pow(0.99, 100)), (999, Math.Pow(0.99, 999)));
    }

    [Fact]
    public void Polynomial_AfterWarmup_MatchesHfPolynomialDecay()
    {
        // transformers.get_polynomial_decay_schedule_with_warmup(100, 1000, lr_end=1e-7, power=2.0) with lr_init = 1e-3
        var schedule = Schedules.LinearWarmup(100).Then(Schedules.Polynomial(power: 2.0, endFactor: 1e-7 / 1e-3));
        schedule.MatchesAtEveryStep(1000, t => HfPolynomialWithWarmup(t, 100, 1000, 1e-3, 1e-7, 2.0));
        schedule.HasAt(1000, (0, 0.0), (99, 0.99), (100, 1.0), (550, (0.9999 * 0.25) + 1e-4), (999, (0.9999 * Math.Pow(1.0 / 900, 2)) + 1e-4));
    }

    [Fact]
    public void Polynomial_Alone_MatchesTorchPolynomialLr()
    {
        // torch PolynomialLR(total_iters=400, power=0.5)
        Schedules.Polynomial(power: 0.5).MatchesAtEveryStep(400, t => TorchPolynomial(t, 400, 0.5));
        Schedules.Polynomial(power: 0.5).HasAt(400, (0, 1.0), (300, 0.5));
    }

    [Fact]
    public void StepDecay_MatchesTorchStepLr()
    {
        // torch StepLR(step_size=30, gamma=0.1)
        var schedule = Schedules.StepDecay(30, 0.1);
        schedule.MatchesAtEveryStep(100, t => TorchStep(t, 30, 0.1));
        schedule.HasAt(100, (0, 1.0), (29, 1.0), (30, 0.1), (59, 0.1), (60, Math.Pow(0.1, 2)), (99, Math.Pow(0.1, 3)));
    }

    [Fact]
    public void OneCycle_Defaults_MatchesTorchOneCycleLr()
    {
        // torch OneCycleLR(max_lr=1, total_steps=1000) defaults: pct_start 0.3, div 25, final_div 1e4, cos
        var schedule = Schedules.OneCycle();
        schedule.MatchesAtEveryStep(1000, t => TorchOneCycle(t, 1000, 1.0, 0.3, 25, 1e4, cos: true));
        schedule.HasAt(1000, (0, 1.0 / 25), (299, 1.0), (999, 1.0 / (25 * 1e4)));
    }

    [Fact]
    public void OneCycle_LinearAnnealFractionalPeak_MatchesTorchOneCycleLr()
    {
        // torch OneCycleLR(max_lr=2, total_steps=101, pct_start=0.25, div_factor=10, final_div_factor=100, anneal_strategy='linear'):
        // the rise ends at the non-integer step 0.25 · 101 − 1 = 24.25.
        var schedule = Schedules.OneCycle(maxFactor: 2.0, pctStart: 0.25, divFactor: 10, finalDivFactor: 100, cosineAnneal: false);
        schedule.MatchesAtEveryStep(101, t => TorchOneCycle(t, 101, 2.0, 0.25, 10, 100, cos: false));
        schedule.HasAt(101, (0, 0.2), (100, 0.002));
    }

    [Fact]
    public void Decays_StepsPastTheEnd_HoldTheirFinalValue()
    {
        Schedules.Cosine(0.1).Multiplier(1500, 1000).Should().BeApproximately(0.1, Tolerance);
        Schedules.LinearDecay(0.2).Multiplier(1500, 1000).Should().BeApproximately(0.2, Tolerance);
        Schedules.Polynomial(2, 0.1).Multiplier(1500, 1000).Should().Be(0.1);
        Schedules.OneCycle().Multiplier(1500, 1000).Should().BeApproximately(1.0 / (25 * 1e4), Tolerance);
    }

    [Fact]
    public void Sample_Run_ReturnsMultiplierAtEveryStep()
    {
        double[] curve = Schedules.LinearWarmup(2).ThenLinear().Sample(6);

        // HF linear with warm-up 2 of 6: 0, ½, then (6 − t) / 4.
        curve.Should().Equal(0.0, 0.5, 1.0, 0.75, 0.5, 0.25);
        Schedules.Constant().Sample(0).Should().BeEmpty();
    }
}
