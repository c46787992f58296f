using System.Globalization;
using NicheTune.Benchmarks.Workload;
using NicheTune.Models;
using NicheTune.Scheduling;
using NicheTune.Text;
using NicheTune.Training;
using TorchSharp;

namespace NicheTune.Benchmarks.Guard;

/// <summary>
/// Does bf16 mixed precision learn as well as fp32? The benchmark model (GPT-2 BPE vocabulary, untied head) trains from
/// the same initial weights on the same FOLDOC blocks for the same steps once in fp32 and once with
/// <c>WithPrecision(Precision.BFloat16)</c>; both are evaluated in fp32 on the same held-out blocks. Target: the bf16
/// run's validation loss within 2 % of the fp32 run's.
/// </summary>
internal static class Bf16QualityGuard
{
    public const double MaxRelativeDifference = 0.02;

    public static (double Fp32Loss, double Bf16Loss) Run(int steps, TextWriter output)
    {
        ModelShape shape = ModelShape.Benchmark with { BatchSize = 8 };
        (ByteLevelBpeTokenizer tokenizer, List<string> texts) = TextPipelineWorkload.Load();
        List<TokenExample> blocks = [.. TextDatasets.ToLanguageModelingBlocks(texts, tokenizer, shape.ContextLength)];
        // Every tenth block is held out: the same split for both runs, spread over the whole subset.
        List<TokenExample> validation = [.. blocks.Where((_, i) => i % 10 == 0)];
        List<TokenExample> train = [.. blocks.Where((_, i) => i % 10 != 0)];
        output.WriteLine($"== bf16 quality: {shape.Describe()}; FOLDOC subset, {train.Count} training and {validation.Count} validation blocks, {steps} steps per precision");
        double fp32 = Train(shape, train, validation, steps, Precision.Float32, output);
        double bf16 = Train(shape, train, validation, steps, Precision.BFloat16, output);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"   validation loss fp32 {fp32:F4}, bf16 {bf16:F4} ({(bf16 - fp32) / fp32:+0.00%;-0.00%})"));
        return (fp32, bf16);
    }

    private static double Train(ModelShape shape, List<TokenExample> train, List<TokenExample> validation, int steps, Precision precision, TextWriter output)
    {
        torch.manual_seed(2026);
        using var model = new Gpt2LMHeadModel(shape.ToConfig());
        var started = DateTime.UtcNow;
        FineTuneResult result = FineTuner.For(model)
            .WithObjective(Objectives.CausalLanguageModeling())
            .WithPrecision(precision)
            .WithOptimizer(Optimizers.AdamW(weightDecay: 0.01))
            .WithLearningRate(1e-3)
            .WithSchedule(Schedules.LinearWarmup(30).ThenCosine(minFactor: 0.1))
            .WithBatchSize(shape.BatchSize)
            .WithMaxSteps(steps)
            .ClipGradientNorm(1.0)
            .WithSeed(7)
            .LogEvery(steps)
            .Fit(train, validation, new TokenCollator());
        double loss = result.FinalMetrics["validation.loss"];
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"   {precision,-8} ran as {result.Precision,-8} validation loss {loss:F4} (perplexity {Math.Exp(loss):F1}) in {(DateTime.UtcNow - started).TotalSeconds:F0} s"));
        return loss;
    }
}
