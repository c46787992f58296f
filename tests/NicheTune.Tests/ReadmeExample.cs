// README-BEGIN
using NicheTune;
using NicheTune.Evaluation;
using NicheTune.Models;
using NicheTune.Text;
using NicheTune.Training;

public static class ReadmeExample
{
    public static FineTuneResult FineTuneOnFoldoc(IEnumerable<string> trainTexts, IEnumerable<string> validationTexts)
    {
        TorchBackend.EnsureAvailable();   // one clear message if libtorch cannot load
        var tokenizer = new ByteTokenizer();
        var train = SequencePacking.Pack(trainTexts.Select(tokenizer.Encode), length: 64, ByteTokenizer.EndOfTextId);
        var validation = SequencePacking.Pack(validationTexts.Select(tokenizer.Encode), length: 64, ByteTokenizer.EndOfTextId);

        using var model = new Gpt2LMHeadModel(new Gpt2Config
        {
            VocabularySize = ByteTokenizer.VocabularySize,
            ContextLength = 64,
            EmbeddingSize = 64,
            LayerCount = 2,
            HeadCount = 4,
        });

        return FineTuner.For(model)
            .WithObjective(Objectives.CausalLanguageModeling())
            .WithLearningRate(3e-3)
            .WithBatchSize(16)
            .WithEpochs(2)
            .Evaluate(Metrics.Perplexity())
            .EarlyStopping("validation.perplexity", patience: 3)
            .Fit(train, validation);
    }
}
// README-END
