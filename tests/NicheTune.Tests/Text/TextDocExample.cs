using NicheTune.Models;
using NicheTune.Text;
using NicheTune.Training;

namespace NicheTune.Tests.Text;

/// <summary>The code shown in docs/text.md, region by region; TextDocExampleTests runs it and checks the page shows it.</summary>
public static class TextDocExample
{
    public static (int[] Ids, string Text) Tokenize(string modelFolder, int embeddingRows)
    {
        // DOC-BEGIN tokenizers
        ITextTokenizer tokenizer = Tokenizers.FromFolder(modelFolder);  // vocab.json + merges.txt, vocab.txt or tokenizer.model
        Tokenizers.EnsureFits(tokenizer, embeddingRows);                 // throws if an id could index past the embedding
        int[] ids = tokenizer.Encode("Hello world");                     // GPT-2: [15496, 995]
        string text = tokenizer.Decode(ids);                             // "Hello world"
        // DOC-END
        return (ids, text);
    }

    public static (DatasetSplit<TextRecord> Split, LabelMap Labels, List<TokenExample> Train) Classification(string foldocJsonl, ITextTokenizer tokenizer, string labelsPath)
    {
        // DOC-BEGIN classification
        var records = TextDatasets.ReadJsonl(foldocJsonl, new JsonlOptions
        {
            TextFields = ["term", "text"],
            FieldSeparator = ": ",
            LabelField = "categories",   // an array: its first element is the label
            SkipUnlabelled = true,
        }).ToList();

        var labels = LabelMap.FromLabels(records.Select(r => r.Label));   // ordinal order: same ids every run
        labels.Save(labelsPath);                                           // {"id2label": …, "label2id": …}

        var split = DatasetSplits.Stratified(records, r => r.Label!, validationFraction: 0.1, testFraction: 0.1, seed: 42);
        List<TokenExample> train = [.. TextDatasets.ToClassificationExamples(split.Train, tokenizer, labels, maxLength: 128)];
        using TokenBatch batch = tokenizer.CreateCollator().Collate(train[..8]);   // padded to the longest, with attention mask
        // DOC-END
        return (split, labels, train);
    }

    public static List<TokenExample> LanguageModeling(string corpusPath, ITextTokenizer tokenizer)
    {
        // DOC-BEGIN language-modeling
        IEnumerable<TextRecord> documents = TextDatasets.ReadText(corpusPath, TextFileLayout.ParagraphPerDocument);  // lazy
        IEnumerable<TokenExample> blocks = TextDatasets.ToLanguageModelingBlocks(
            documents.Select(d => d.Text), tokenizer, length: 128);   // each document followed by end-of-text
        // DOC-END
        return [.. blocks];
    }

    public static VocabularyExtensionResult ExtendVocabulary(Gpt2LMHeadModel model, ITextTokenizer tokenizer, string modelFolder)
    {
        // DOC-BEGIN vocabulary
        VocabularyExtensionResult result = VocabularyExtension.Extend(model, tokenizer, [" Kubernetes", " kubectl", " inode"]);
        ITextTokenizer extended = result.Tokenizer;       // matches the new terms first, longest first
        result.Tokenizer.Save(modelFolder);                // added_tokens.json, read back by Tokenizers.FromFolder
        // model.Config.VocabularySize == result.Rows; build the optimizer (or FineTuner) after this call
        // DOC-END
        return result;
    }
}
