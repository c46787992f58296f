using System.Collections.Immutable;
using NicheTune.Deployment;
using NicheTune.Evaluation;
using NicheTune.Models;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Tests.Deployment;

/// <summary>
/// Trains a tiny FOLDOC-category classifier (a mean-pooled byte-level GPT-2) for a few seconds and exports it, plus a
/// tiny causal LM package; every deployment test serves these instead of training its own.
/// </summary>
public sealed class DeploymentFixture : IDisposable
{
    public const int Bytes = 48;

    private readonly TempFolder _folder = new();

    public DeploymentFixture()
    {
        TorchBackend.EnsureAvailable();
        torch.manual_seed(7);
        Labels = new LabelMap(FoldocCategories.Labels);
        var (train, validation, test) = FoldocCategories.Split(train: 240, test: 40, validation: 40, seed: 3);
        TestTexts = [.. test.Select(t => t.Text)];
        List<TokenExample> Tokenize(IEnumerable<NicheTune.Augmentation.LabeledText> examples)
            => [.. examples.Select(e => new TokenExample(Truncate(Tokenizer.Encode(e.Text)), Labels.IdOf(e.Label)))];

        Classifier = new MeanPoolClassifier(new Gpt2LMHeadModel(Config), Labels.Count, dropout: 0.0);
        Result = FineTuner.For(Classifier)
            .WithObjective(Objectives.SequenceClassification())
            .WithLearningRate(3e-3)
            .WithBatchSize(16)
            .WithMaxSteps(60)
            .LogEvery(5)
            .Evaluate(Metrics.Accuracy())
            .Fit(Tokenize(train), Tokenize(validation), new TokenCollator(ByteTokenizer.PaddingId, Bytes));
        Classifier.eval();
        ClassifierFolder = Path.Combine(_folder.Path, "foldoc-classifier");
        ModelPackage.Export(Classifier, ClassifierFolder, new ModelPackageOptions
        {
            Tokenizer = Tokenizer,
            Labels = Labels,
            MaxLength = Bytes,
            Name = "foldoc-categories",
            Version = "0.1.0",
            Result = Result,
            Card = new ModelCard
            {
                TrainingData = "240 FOLDOC entries (tests/data/foldoc-categories.jsonl, GNU FDL), first 48 bytes each.",
                HyperParameters = ImmutableSortedDictionary.CreateRange<string, string>(StringComparer.Ordinal, [new("learning rate", "3e-3"), new("steps", "60")]),
                BiasChecks = ["No group attributes in the data; none run."],
                IntendedUse = "Tests.",
            },
        });

        torch.manual_seed(11);
        LanguageModel = new Gpt2LMHeadModel(Config);
        LanguageModel.eval();
        LanguageModelFolder = Path.Combine(_folder.Path, "causal-lm");
        ModelPackage.Export(LanguageModel, LanguageModelFolder, new ModelPackageOptions
        {
            Tokenizer = Tokenizer,
            Labels = Labels,
            PromptTemplate = new NicheTune.Prompting.PromptTemplate("{text}\nCategory:"),
        });
    }

    public static Gpt2Config Config { get; } = new()
    {
        VocabularySize = ByteTokenizer.VocabularySize,
        ContextLength = 64,
        EmbeddingSize = 32,
        LayerCount = 2,
        HeadCount = 2,
        ResidualDropout = 0,
        EmbeddingDropout = 0,
        AttentionDropout = 0,
    };

    public ByteTokenizer Tokenizer { get; } = new();

    public LabelMap Labels { get; }

    public MeanPoolClassifier Classifier { get; }

    public FineTuneResult Result { get; }

    public string ClassifierFolder { get; }

    public Gpt2LMHeadModel LanguageModel { get; }

    public string LanguageModelFolder { get; }

    public IReadOnlyList<string> TestTexts { get; }

    public string Scratch => _folder.Path;

    public static int[] Truncate(int[] ids) => ids.Length <= Bytes ? ids : ids[..Bytes];

    /// <summary>The in-memory classifier's probabilities for one text (no batching, no package).</summary>
    public float[] ReferenceProbabilities(string text)
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        int[] ids = Truncate(Tokenizer.Encode(text));
        Tensor input = torch.tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Length]);
        Tensor logits = Classifier.forward(input, torch.ones_like(input));
        return nn.functional.softmax(logits, 1)[0].data<float>().ToArray();
    }

    /// <summary>The in-memory language model's log-likelihood of a text's tokens after the first.</summary>
    public double ReferenceLogLikelihood(string text)
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        int[] ids = Tokenizer.Encode(text);
        Tensor input = torch.tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Length]);
        Tensor logProbabilities = nn.functional.log_softmax(LanguageModel.forward(input), -1)[0];
        double sum = 0;
        for (int t = 1; t < ids.Length; t++)
        {
            sum += logProbabilities[t - 1, ids[t]].item<float>();
        }

        return sum;
    }

    public void Dispose()
    {
        Classifier.Dispose();
        LanguageModel.Dispose();
        _folder.Dispose();
    }
}
