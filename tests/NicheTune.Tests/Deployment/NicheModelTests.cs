using System.Collections.Concurrent;
using System.Text.Json;
using FluentAssertions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using NicheTune.DependencyInjection;
using NicheTune.Deployment;
using NicheTune.Models;
using NicheTune.Tests.Support;
using NicheTune.Text;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace NicheTune.Tests.Deployment;

[Collection(TorchCollection.Name)]
public sealed class NicheModelTests(DeploymentFixture fixture) : IClassFixture<DeploymentFixture>
{
    private sealed class ListObserver : IPredictionObserver
    {
        public ConcurrentQueue<PredictionRecord> Records { get; } = new();

        public void Observe(PredictionRecord record) => Records.Enqueue(record);
    }

    [Fact]
    public void Fit_TinyFoldocClassifier_LearnedSomething()
    {
        fixture.Result.TrainingLoss[^1].Loss.Should().BeLessThan(fixture.Result.TrainingLoss[0].Loss);
        fixture.Result.FinalMetrics["validation.accuracy"].Should().BeGreaterThan(1.0 / 8);
    }

    [Fact]
    public void Export_Classifier_WritesSelfDescribingFolder()
    {
        string[] files = [.. Directory.GetFiles(fixture.ClassifierFolder).Select(Path.GetFileName).Order()!];
        files.Should().Contain(["config.json", "evaluation.json", "labels.json", "model-card.md", "model.safetensors", "package.json"]);
        ModelPackageManifest manifest = ModelPackage.Verify(fixture.ClassifierFolder);
        manifest.Kind.Should().Be(ModelPackageKind.SequenceClassifier);
        manifest.Architecture.Should().Be("MeanPoolClassifier");
        manifest.BodyArchitecture.Should().Be("GPT2LMHeadModel");
        manifest.Labels.Should().Equal(FoldocCategories.Labels);
        manifest.Version.Should().Be("0.1.0");
        manifest.ContentHash.Should().HaveLength(64);
        manifest.Files.Keys.Should().NotContain("package.json");
        string card = File.ReadAllText(Path.Combine(fixture.ClassifierFolder, "model-card.md"));
        card.Should().Contain("## Training data").And.Contain("240 FOLDOC entries").And.Contain("| learning rate | 3e-3 |")
            .And.Contain("## Bias checks").And.Contain("validation.accuracy").And.Contain("## Limitations");
        LabelMap.FromJson(File.ReadAllText(Path.Combine(fixture.ClassifierFolder, "labels.json"))).Labels.Should().Equal(FoldocCategories.Labels);
    }

    [Fact]
    public void Load_Classifier_GivesTheInMemoryModelsAnswers()
    {
        using var served = NicheModel.Load(fixture.ClassifierFolder);
        foreach (string text in fixture.TestTexts.Take(10))
        {
            float[] expected = fixture.ReferenceProbabilities(text);
            ClassificationResult answer = served.Classify(text);
            answer.Probabilities.Should().HaveCount(8);
            for (int c = 0; c < expected.Length; c++)
            {
                answer.Probabilities[c].Should().BeApproximately(expected[c], 1e-5f);
            }

            answer.Label.Should().Be(fixture.Labels.LabelOf(Array.IndexOf(expected, expected.Max())));
        }

        served.Embed(fixture.TestTexts[0]).Should().HaveCount(32);
        Action score = () => served.Score("text");
        score.Should().Throw<NotSupportedException>().WithMessage("*causal language model*");
    }

    [Fact]
    public void Load_CausalLm_ScoresGeneratesAndEmbedsLikeTheInMemoryModel()
    {
        using var served = NicheModel.Load(fixture.LanguageModelFolder);
        const string Text = "A protocol for sending mail between hosts.";
        served.Score(Text).LogLikelihood.Should().BeApproximately(fixture.ReferenceLogLikelihood(Text), 1e-3);
        served.Score(Text).TokenCount.Should().Be(fixture.Tokenizer.Encode(Text).Length);

        var greedy = new GenerationOptions { MaxNewTokens = 8 };
        GeneratedSequence expected = TextGenerator.Generate(fixture.LanguageModel, fixture.Tokenizer.Encode("The network"), greedy);
        served.Generate("The network", greedy).Should().Be(fixture.Tokenizer.Decode(expected.Tokens));

        // Zero-shot classification through the packaged prompt template scores each label after it.
        ClassificationResult zeroShot = served.Classify("A language with lazy evaluation.");
        zeroShot.Probabilities.Sum().Should().BeApproximately(1f, 1e-4f);
        served.Manifest.Objective.Should().Be("zero-shot-label-scoring");

        using (torch.no_grad())
        using (torch.NewDisposeScope())
        {
            int[] ids = fixture.Tokenizer.Encode(Text);
            Tensor hidden = fixture.LanguageModel.HiddenStates(torch.tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Length]));
            float[] mean = hidden.mean([1])[0].data<float>().ToArray();
            served.Embed(Text).Should().Equal(mean, (a, b) => Math.Abs(a - b) < 1e-5f);
        }
    }

    [Fact]
    public void Load_BertClassifierPackage_RoundTripsAndServes()
    {
        torch.manual_seed(5);
        var config = new BertConfig { VocabularySize = ByteTokenizer.VocabularySize, HiddenSize = 16, LayerCount = 1, HeadCount = 2, IntermediateSize = 32, MaxPositions = 64, LabelCount = 3 };
        using var bert = new BertForSequenceClassification(config);
        bert.eval();
        string folder = Path.Combine(fixture.Scratch, "bert");
        ModelPackage.Export(bert, folder, new ModelPackageOptions { Tokenizer = fixture.Tokenizer, Labels = new LabelMap(["a", "b", "c"]) });
        using var served = NicheModel.Load(folder);
        using var noGrad = torch.no_grad();
        foreach (string text in new[] { "short", "a somewhat longer text about routers" })
        {
            using var scope = torch.NewDisposeScope();
            int[] ids = fixture.Tokenizer.Encode(text);
            float[] expected = nn.functional.softmax(bert.forward(torch.tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Length]), null), 1)[0].data<float>().ToArray();
            served.Classify(text).Probabilities.Should().Equal(expected, (a, b) => Math.Abs(a - b) < 1e-5f);
        }

        // The package is also a plain Hugging Face folder.
        using var reloaded = PretrainedModel.Load<BertForSequenceClassification>(folder);
        reloaded.Config.ResolvedLabelCount.Should().Be(3);
    }

    [Fact]
    public void Export_LoRAModel_MergesIntoTheWeightsAndLeavesTheModelUnchanged()
    {
        torch.manual_seed(3);
        using var model = new Gpt2LMHeadModel(DeploymentFixture.Config);
        LoRAAdapter adapter = LoRA.Apply(model, new LoRAOptions { Rank = 2, Targets = ["c_attn"] });
        using (torch.no_grad())
        {
            foreach (var (name, parameter) in model.named_parameters().Where(p => p.name.Contains("lora_B", StringComparison.Ordinal)))
            {
                parameter.normal_(0, 0.5);
            }
        }

        model.eval();
        string merged = Path.Combine(fixture.Scratch, "lora-merged");
        string apart = Path.Combine(fixture.Scratch, "lora-apart");
        ModelPackage.Export(model, merged, new ModelPackageOptions { Tokenizer = fixture.Tokenizer }).LoRA.Should().Be("merged");
        adapter.IsMerged.Should().BeFalse();
        ModelPackage.Export(model, apart, new ModelPackageOptions { Tokenizer = fixture.Tokenizer, MergeLoRA = false }).LoRA.Should().Be("adapter");
        File.Exists(Path.Combine(apart, "adapter", "adapter_model.safetensors")).Should().BeTrue();

        const string Text = "Adapters change the attention.";
        double expected;
        using (torch.no_grad())
        using (torch.NewDisposeScope())
        {
            int[] ids = fixture.Tokenizer.Encode(Text);
            var logp = nn.functional.log_softmax(model.forward(torch.tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Length])), -1)[0];
            expected = Enumerable.Range(1, ids.Length - 1).Sum(t => (double)logp[t - 1, ids[t]].item<float>());
        }

        using var servedMerged = NicheModel.Load(merged);
        using var servedApart = NicheModel.Load(apart);
        servedMerged.Score(Text).LogLikelihood.Should().BeApproximately(expected, 1e-3);
        servedApart.Score(Text).LogLikelihood.Should().BeApproximately(expected, 1e-3);
    }

    [Fact]
    public void Load_TamperedWeights_ThrowsNamingTheFile()
    {
        string copy = CopyPackage(fixture.ClassifierFolder, "tampered");
        using (var stream = new FileStream(Path.Combine(copy, "model.safetensors"), FileMode.Open))
        {
            stream.Seek(-4, SeekOrigin.End);
            stream.WriteByte(0x7f);
        }

        Action load = () => NicheModel.Load(copy);
        load.Should().Throw<InvalidDataException>().WithMessage("*'model.safetensors' has changed*");
    }

    [Fact]
    public void Load_PartialFolder_ThrowsNamingTheMissingFile()
    {
        string copy = CopyPackage(fixture.ClassifierFolder, "partial");
        File.Delete(Path.Combine(copy, "labels.json"));
        Action load = () => NicheModel.Load(copy);
        load.Should().Throw<InvalidDataException>().WithMessage("*'labels.json' is missing*");

        File.Delete(Path.Combine(copy, "package.json"));
        load.Should().Throw<InvalidDataException>().WithMessage("*no package.json*");
    }

    [Fact]
    public void Export_FailsBeforeCommit_LeavesThePreviousPackageAndNoHalfFolder()
    {
        string target = CopyPackage(fixture.ClassifierFolder, "atomic");
        string before = ModelPackage.Verify(target).ContentHash;
        var options = new ModelPackageOptions
        {
            Tokenizer = fixture.Tokenizer,
            Labels = fixture.Labels,
            Version = "9.9.9",
            BeforeCommitForTesting = _ => throw new IOException("disk full (simulated)"),
        };
        Action export = () => ModelPackage.Export(fixture.Classifier, target, options);
        export.Should().Throw<IOException>().WithMessage("disk full*");
        ModelPackage.Verify(target).ContentHash.Should().Be(before);
        Directory.GetDirectories(Path.GetDirectoryName(target)!).Should().NotContain(d => Path.GetFileName(d).StartsWith("atomic.", StringComparison.Ordinal));

        string fresh = Path.Combine(fixture.Scratch, "never-written");
        Action first = () => ModelPackage.Export(fixture.Classifier, fresh, options);
        first.Should().Throw<IOException>();
        Directory.Exists(fresh).Should().BeFalse();
    }

    [Fact]
    public void Export_ClassifierWithoutLabels_ThrowsNamingTheFix()
    {
        Action export = () => ModelPackage.Export(fixture.Classifier, Path.Combine(fixture.Scratch, "x"), new ModelPackageOptions { Tokenizer = fixture.Tokenizer });
        export.Should().Throw<ArgumentException>().WithMessage("*8 classes*ModelPackageOptions.Labels*");
        Action wrongCount = () => ModelPackage.Export(fixture.Classifier, Path.Combine(fixture.Scratch, "x"), new ModelPackageOptions { Tokenizer = fixture.Tokenizer, Labels = new LabelMap(["a", "b"]) });
        wrongCount.Should().Throw<ArgumentException>().WithMessage("*2 labels but the classifier has 8 outputs*");
    }

    [Fact]
    public async Task ClassifyAsync_MicroBatched_EqualsOneByOne()
    {
        using var oneByOne = NicheModel.Load(fixture.ClassifierFolder, new NicheModelOptions { MaxBatchSize = 1 });
        using var batched = NicheModel.Load(fixture.ClassifierFolder, new NicheModelOptions { MaxBatchSize = 64, BatchWindow = TimeSpan.FromMilliseconds(50) });
        string[] texts = [.. fixture.TestTexts.Take(24)];
        ClassificationResult[] single = [.. texts.Select(oneByOne.Classify)];
        ClassificationResult[] together = await Task.WhenAll(texts.Select(t => batched.ClassifyAsync(t)));
        for (int i = 0; i < texts.Length; i++)
        {
            together[i].Label.Should().Be(single[i].Label);
            together[i].Probabilities.Should().Equal(single[i].Probabilities, (a, b) => Math.Abs(a - b) < 1e-5f);
        }

        batched.RequestCount.Should().Be(24);
        batched.BatchCount.Should().BeLessThan(24, "requests arriving within the window share a forward pass");
        oneByOne.BatchCount.Should().Be(24);

        using var lmSingle = NicheModel.Load(fixture.LanguageModelFolder, new NicheModelOptions { MaxBatchSize = 1 });
        using var lmBatched = NicheModel.Load(fixture.LanguageModelFolder, new NicheModelOptions { MaxBatchSize = 64, BatchWindow = TimeSpan.FromMilliseconds(50) });
        string[] snippets = [.. texts.Select(t => t[..Math.Min(t.Length, 40)])];
        TextScore[] scores = await Task.WhenAll(snippets.Select(t => lmBatched.ScoreAsync(t)));
        float[][] embeddings = [.. (await Task.WhenAll(snippets.Select(t => lmBatched.EmbedAsync(t)))).Select(e => e.ToArray())];
        for (int i = 0; i < snippets.Length; i++)
        {
            scores[i].LogLikelihood.Should().BeApproximately(lmSingle.Score(snippets[i]).LogLikelihood, 1e-3);
            embeddings[i].Should().Equal(lmSingle.Embed(snippets[i]), (a, b) => Math.Abs(a - b) < 1e-4f);
        }
    }

    [Fact]
    public void Classify_SixteenConcurrentCallers_EveryAnswerIsItsOwn()
    {
        string[] texts = [.. fixture.TestTexts.Take(16)];
        using var served = NicheModel.Load(fixture.ClassifierFolder, new NicheModelOptions { MaxBatchSize = 8 });
        ClassificationResult[] expected = [.. texts.Select(served.Classify)];
        var failures = new ConcurrentBag<string>();
        Parallel.For(0, 16, new ParallelOptions { MaxDegreeOfParallelism = 16 }, caller =>
        {
            for (int round = 0; round < 5; round++)
            {
                int i = (caller + round) % texts.Length;
                ClassificationResult answer = served.Classify(texts[i]);
                if (answer.Label != expected[i].Label || Math.Abs(answer.Confidence - expected[i].Confidence) > 1e-5f)
                {
                    failures.Add($"caller {caller} text {i}: {answer.Label} {answer.Confidence} vs {expected[i].Label} {expected[i].Confidence}");
                }
            }
        });
        failures.Should().BeEmpty();
        served.RequestCount.Should().Be(16 + 80);
    }

    [Fact]
    public async Task Dispose_PendingRequestsFailWithObjectDisposed_AndLaterCallsThrow()
    {
        var served = NicheModel.Load(fixture.ClassifierFolder, new NicheModelOptions { MaxBatchSize = 64, BatchWindow = TimeSpan.FromMilliseconds(900) });
        Task<ClassificationResult>[] pending = [.. fixture.TestTexts.Take(5).Select(t => served.ClassifyAsync(t))];
        await Task.Delay(50);
        await served.DisposeAsync();
        foreach (var task in pending)
        {
            Func<Task> wait = () => task;
            await wait.Should().ThrowAsync<ObjectDisposedException>();
        }

        Action later = () => served.Classify("text");
        later.Should().Throw<ObjectDisposedException>();
        served.Dispose();
    }

    [Fact]
    public async Task Observers_FromOptionsAndAddObserver_ReceiveOneRecordPerRequest()
    {
        var fromOptions = new ListObserver();
        var added = new ListObserver();
        var options = new NicheModelOptions();
        options.Observers.Add(fromOptions);
        using var served = NicheModel.Load(fixture.ClassifierFolder, options);
        served.AddObserver(added);
        string[] texts = [.. fixture.TestTexts.Take(6)];
        ClassificationResult[] answers = await Task.WhenAll(texts.Select(t => served.ClassifyAsync(t)));
        await served.EmbedAsync(texts[0]);
        await served.DisposeAsync();

        fromOptions.Records.Should().HaveCount(7);
        added.Records.Should().HaveCount(7);
        PredictionRecord[] classified = [.. added.Records.Where(r => r.Kind == PredictionKind.Classify)];
        classified.Select(r => r.Input).Should().BeEquivalentTo(texts);
        foreach (PredictionRecord record in classified)
        {
            ClassificationResult answer = answers[Array.IndexOf(texts, record.Input)];
            record.PredictedLabel.Should().Be(answer.Label);
            record.Probabilities.Should().Equal(answer.Probabilities);
            record.TokenCount.Should().Be(Math.Min(DeploymentFixture.Bytes, fixture.Tokenizer.Encode(record.Input).Length));
            record.Latency.Should().BePositive();
        }

        added.Records.Single(r => r.Kind == PredictionKind.Embed).Embedding.Should().HaveCount(32);
    }

    [Fact]
    public void Load_BFloat16_AnswersCloseToFloat32()
    {
        using var full = NicheModel.Load(fixture.ClassifierFolder);
        using var half = NicheModel.Load(fixture.ClassifierFolder, new NicheModelOptions { UseBFloat16 = true });
        string text = fixture.TestTexts[1];
        half.Classify(text).Probabilities.Should().Equal(full.Classify(text).Probabilities, (a, b) => Math.Abs(a - b) < 0.05f);
    }

    [Fact]
    public void Load_InvalidOptions_ThrowsNamingTheValue()
    {
        Action load = () => NicheModel.Load(fixture.ClassifierFolder, new NicheModelOptions { MaxBatchSize = 0, BatchWindow = TimeSpan.FromSeconds(5) });
        load.Should().Throw<ArgumentException>().WithMessage("*MaxBatchSize is 0*BatchWindow is 00:00:05*");
    }

    [Fact]
    public void AddNicheModel_ResolvesByKeyWithOptionsAndRegisteredObservers()
    {
        var observer = new ListObserver();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<IPredictionObserver>(observer);
        services.AddNicheModel("foldoc", fixture.ClassifierFolder, o => o.MaxBatchSize = 4);
        services.AddNicheModel("lm", fixture.LanguageModelFolder);
        services.AddNicheModel("missing", Path.Combine(fixture.Scratch, "nothing-here"));
        using (ServiceProvider provider = services.BuildServiceProvider(validateScopes: true))
        {
            NicheModel model = provider.GetRequiredKeyedService<NicheModel>("foldoc");
            model.Should().BeSameAs(provider.GetRequiredKeyedService<NicheModel>("foldoc"));
            model.Options.MaxBatchSize.Should().Be(4);
            model.Classify(fixture.TestTexts[0]).Label.Should().BeOneOf(FoldocCategories.Labels);
            provider.GetRequiredKeyedService<NicheModel>("lm").CanGenerate.Should().BeTrue();
            observer.Records.Should().ContainSingle();

            Action missing = () => provider.GetRequiredService<IOptionsMonitor<NicheModelOptions>>().Get("missing");
            missing.Should().Throw<OptionsValidationException>().WithMessage("*'missing'*no package.json*");
        }
    }

    private string CopyPackage(string source, string name)
    {
        string target = Path.Combine(fixture.Scratch, name + "-" + Guid.NewGuid().ToString("N")[..6], name);
        Directory.CreateDirectory(target);
        foreach (string file in Directory.GetFiles(source))
        {
            File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        }

        return target;
    }
}
