using FluentAssertions;
using Microsoft.Extensions.Logging;
using NicheTune.Models;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace NicheTune.Tests.Models;

[Collection(TorchCollection.Name)]
public sealed class LoRATrainingTests(ITestOutputHelper output)
{
    private static readonly (List<TokenExample> Train, List<TokenExample> Validation) Foldoc = TestData.FoldocLanguageModeling(length: 32, trainEntries: 120, validationEntries: 30);

    [Fact]
    public void Fit_WithLoRA_TrainsOnlyTheLowRankMatricesAndLeavesTheBaseBitIdentical()
    {
        torch.manual_seed(41);
        using var model = new Gpt2LMHeadModel(LoRATestSupport.Gpt2(vocabulary: ByteTokenizer.VocabularySize, context: 32));
        var baseWeights = Weights.Snapshot(model);
        using var logs = new StateLoggerProvider();

        FineTuneResult result = FineTuner.For(model)
            .WithObjective(Objectives.CausalLanguageModeling())
            .WithLoRA(rank: 4, alpha: 8, dropout: 0.1, "c_attn", "c_fc")
            .Regularize(r => r.WeightDecay(0.01))
            .WithLearningRate(1e-2).WithBatchSize(8).WithMaxSteps(6)
            .WithLogging(logs)
            .Fit(Foldoc.Train);

        LoRAAdapter adapter = LoRA.AdapterOf(model)!;
        adapter.Should().NotBeNull("the adapter stays on the model after Fit, to be saved or merged");
        result.Steps.Should().Be(6);
        var after = Weights.Snapshot(model);
        Weights.Equal(baseWeights, after.Where(kv => baseWeights.ContainsKey(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value))
            .Should().BeTrue("frozen base weights must not move, not even through weight decay");
        adapter.Layers.Should().OnlyContain(l => torch.count_nonzero(l.B).item<long>() > 0, "every B left zero after training");
        model.named_parameters().Where(p => baseWeights.ContainsKey(p.name)).Select(p => (NoGrad: p.parameter.grad is null, p.parameter.requires_grad))
            .Should().OnlyContain(p => p.NoGrad && !p.requires_grad, "base parameters never had a gradient");
        logs.Values("TrainingStarted", "TrainableParameters").Should().Equal([adapter.AdapterParameterCount], "the optimizer holds the low-rank matrices and nothing else");
    }

    [Fact]
    public void Fit_Gpt2OnFoldocWithLoRA_LowersValidationLoss()
    {
        // The niche-adaptation story in miniature: a base model trained on general English (WordNet glosses), then adapted
        // to computing definitions (FOLDOC) through LoRA alone. A randomly initialised frozen base would not do: its tied,
        // frozen output layer caps how peaked the predictions can become.
        var tokenizer = new ByteTokenizer();
        List<TokenExample> general = SequencePacking.Pack(TestData.WordNetGlosses().Take(800).Select(tokenizer.Encode), 32, ByteTokenizer.EndOfTextId);
        torch.manual_seed(43);
        using var model = new Gpt2LMHeadModel(new Gpt2Config
        {
            VocabularySize = ByteTokenizer.VocabularySize, ContextLength = 32, EmbeddingSize = 64, LayerCount = 2, HeadCount = 4,
            ResidualDropout = 0, EmbeddingDropout = 0, AttentionDropout = 0,
        });
        FineTuneResult pretraining = FineTuner.For(model).WithObjective(Objectives.CausalLanguageModeling()).WithLearningRate(3e-3).WithBatchSize(16).WithMaxSteps(PretrainSteps).Fit(general);
        output.WriteLine($"pretraining: {pretraining.Steps} steps in {pretraining.WallTime.TotalSeconds:F1} s, {general.Count} sequences");
        var pretrained = Weights.Snapshot(model);
        FineTunePlan<TokenBatch> plan = FineTuner.For(model)
            .WithObjective(Objectives.CausalLanguageModeling())
            .WithLoRA(rank: 8, alpha: 16, dropout: 0.0, "c_attn", "c_proj", "c_fc")
            .WithLearningRate(1e-2).WithBatchSize(16).WithMaxSteps(LoRASteps).LogEvery(20)
            .Build();
        double before = plan.Evaluate(Foldoc.Validation)["validation.loss"];

        FineTuneResult result = plan.Fit(Foldoc.Train, Foldoc.Validation);

        double after = result.FinalMetrics["validation.loss"];
        LoRAAdapter adapter = LoRA.AdapterOf(model)!;
        adapter.TrainableParameterCount.Should().BeLessThan(adapter.TotalParameterCount / 5);
        Weights.Equal(pretrained, Weights.Snapshot(model).Where(kv => pretrained.ContainsKey(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value)).Should().BeTrue();
        output.WriteLine($"FOLDOC validation loss with LoRA on a WordNet-trained base: {before:F3} -> {after:F3} in {LoRASteps} steps ({result.WallTime.TotalSeconds:F1} s); {adapter.Describe()}");
        after.Should().BeLessThan(before - Margin, $"LoRA alone must adapt the general model to FOLDOC (validation loss {before:F3} → {after:F3})");

        // Then the tuned model writes: sampling with a seed is reproducible, another seed gives another text.
        int[] prompt = tokenizer.Encode("A compiler");
        var options = new GenerationOptions { MaxNewTokens = 16, Sample = true, Temperature = 0.8, TopP = 0.95, Seed = 7 };
        GeneratedSequence first = TextGenerator.Generate(model, prompt, options);
        GeneratedSequence again = TextGenerator.Generate(model, prompt, options);
        GeneratedSequence other = TextGenerator.Generate(model, prompt, new GenerationOptions { MaxNewTokens = 16, Sample = true, Temperature = 0.8, TopP = 0.95, Seed = 8 });
        output.WriteLine($"generated: \"A compiler{tokenizer.Decode(first.Tokens)}\"");
        first.Tokens.Should().HaveCount(16).And.Equal(again.Tokens);
        other.Tokens.Should().NotEqual(first.Tokens);
        model.training.Should().BeTrue("generation restores the training mode it found");
    }

    private const int PretrainSteps = 100;
    private const int LoRASteps = 60;
    private const double Margin = 0.1;

    [Fact]
    public void ResumeFrom_LoRACheckpoint_EndsWhereTheUninterruptedRunEnds()
    {
        using var folder = new TempFolder();
        using var uninterrupted = Model(seed: 59);
        Plan(uninterrupted).SaveCheckpoints(folder.Path, everySteps: 3, keepLast: 5).Fit(Foldoc.Train);
        using var resumed = Model(seed: 59);

        FineTuneResult result = Plan(resumed).ResumeFrom(Path.Combine(folder.Path, "checkpoint-00000003")).Fit(Foldoc.Train);

        result.Steps.Should().Be(6);
        var expected = LoRA.AdapterOf(uninterrupted)!.StateDict();
        LoRA.AdapterOf(resumed)!.StateDict().Should().OnlyContain(kv => LoRATestSupport.Same(kv.Value, expected[kv.Key]));

        static Gpt2LMHeadModel Model(int seed)
        {
            torch.manual_seed(seed);
            return new Gpt2LMHeadModel(LoRATestSupport.Gpt2(vocabulary: ByteTokenizer.VocabularySize, context: 32));
        }

        static FineTunerBuilder<TokenBatch> Plan(Gpt2LMHeadModel model) => FineTuner.For(model)
            .WithObjective(Objectives.CausalLanguageModeling())
            .WithLoRA(rank: 4, alpha: 8, dropout: 0.1, "c_attn", "c_fc")
            .WithLearningRate(1e-2).WithBatchSize(8).WithMaxSteps(6).WithSeed(5);
    }

    [Fact]
    public void Fit_SequenceClassificationWithModulesToSave_TrainsTheHeadInFullAndSavesItAsSeqCls()
    {
        using var folder = new TempFolder();
        torch.manual_seed(67);
        using var model = new TinyTokenClassifier(vocabulary: 20, classes: 2);
        var random = new Random(3);
        List<TokenExample> examples = [.. Enumerable.Range(0, 64).Select(i =>
        {
            int[] ids = [.. Enumerable.Range(0, 6).Select(_ => random.Next(2, 20))];
            return new TokenExample(ids, ids.Count(id => id < 10) >= 3 ? 1 : 0);
        })];
        var before = Weights.Snapshot(model);

        FineTuner.For(model)
            .WithObjective(Objectives.SequenceClassification())
            .WithLoRA(new LoRAOptions { Rank = 2, Alpha = 4, Targets = ["dense"], ModulesToSave = ["score"] })
            .WithLearningRate(1e-2).WithBatchSize(16).WithMaxSteps(4)
            .Fit(examples);
        LoRAAdapter adapter = LoRA.AdapterOf(model)!;
        adapter.Save(folder.Path);

        var after = Weights.Snapshot(model);
        LoRATestSupport.Same(after["dense.weight"], before["dense.weight"]).Should().BeTrue();
        LoRATestSupport.Same(after["embed.weight"], before["embed.weight"]).Should().BeTrue();
        LoRATestSupport.Same(after["score.weight"], before["score.weight"]).Should().BeFalse("the head is a module to save: it trains in full");
        string config = File.ReadAllText(Path.Combine(folder.Path, "adapter_config.json"));
        config.Should().Contain("\"task_type\": \"SEQ_CLS\"", "the task type follows the objective").And.Contain("\"modules_to_save\": [");
        adapter.Remove();
        LoRATestSupport.Same(model.named_parameters().First(p => p.name == "score.weight").parameter, before["score.weight"]).Should().BeTrue("Remove restores the original head");
    }

    [Fact]
    public void Fit_ModelThatCallsForwardDirectly_FailsInsteadOfTrainingNothing()
    {
        torch.manual_seed(47);
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);

        Action fit = () => FineTuner.For(model)
            .WithObjective(Objectives.CausalLanguageModeling())
            .WithLoRA(rank: 2, alpha: 4, dropout: 0, "hidden")
            .WithMaxSteps(2).WithBatchSize(8)
            .Fit(Foldoc.Train);

        fit.Should().Throw<InvalidOperationException>().WithMessage("*'hidden'*forward(x), which skips TorchSharp's forward hooks*call(x)*");
    }

    [Fact]
    public void Build_LoRATargetNotFound_IsReportedWithEveryOtherProblem()
    {
        using var model = new Gpt2LMHeadModel(LoRATestSupport.Gpt2());
        var names = model.named_parameters().Select(p => p.name).ToList();

        Action build = () => FineTuner.For(model)
            .WithObjective(Objectives.CausalLanguageModeling())
            .WithLoRA(rank: 4, alpha: 8, dropout: 0, "q_proj")
            .WithBatchSize(0)
            .Build();

        build.Should().Throw<FineTunePlanException>()
            .Which.Problems.Should().Contain(p => p.Contains("'q_proj' matches no module", StringComparison.Ordinal))
            .And.Contain(p => p.Contains("Batch size", StringComparison.Ordinal));
        model.named_parameters().Select(p => p.name).Should().Equal(names);
    }

    [Fact]
    public void Build_OtherSettingInvalid_TakesTheAppliedAdapterOffAgain()
    {
        using var model = new Gpt2LMHeadModel(LoRATestSupport.Gpt2());
        var names = model.named_parameters().Select(p => p.name).ToList();

        Action build = () => FineTuner.For(model)
            .WithObjective(Objectives.CausalLanguageModeling())
            .WithLoRA(rank: 4, alpha: 8, dropout: 0, "c_attn")
            .WithLearningRate(-1)
            .Build();

        build.Should().Throw<FineTunePlanException>().Which.Problems.Should().ContainSingle();
        LoRA.AdapterOf(model).Should().BeNull();
        model.named_parameters().Select(p => p.name).Should().Equal(names);
        model.parameters().Should().OnlyContain(p => p.requires_grad);
    }

    /// <summary>Keeps the structured values of every log event (e.g. TrainingStarted's TrainableParameters).</summary>
    private sealed class StateLoggerProvider : ILoggerFactory, ILogger
    {
        private readonly List<(string Event, IReadOnlyList<KeyValuePair<string, object?>> State)> _events = [];

        public IEnumerable<object?> Values(string eventName, string key)
        {
            lock (_events)
            {
                return [.. _events.Where(e => e.Event == eventName).SelectMany(e => e.State.Where(kv => kv.Key == key).Select(kv => kv.Value))];
            }
        }

        public ILogger CreateLogger(string categoryName) => this;

        public void AddProvider(ILoggerProvider provider)
        {
        }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (state is IReadOnlyList<KeyValuePair<string, object?>> values)
            {
                lock (_events)
                {
                    _events.Add((eventId.Name ?? string.Empty, [.. values]));
                }
            }
        }

        public void Dispose()
        {
        }
    }
}
