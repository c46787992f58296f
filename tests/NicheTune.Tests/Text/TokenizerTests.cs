using FluentAssertions;
using Microsoft.ML.Tokenizers;
using NicheTune.Tests.Support;
using NicheTune.Text;
using Xunit;

namespace NicheTune.Tests.Text;

public sealed class TokenizerTests
{
    [Fact]
    public void WriteGpt2Folder_ClosesItsFiles_SoTheyOpenExclusivelyAndParseWhole()
    {
        // vocab.json was once written through a Utf8JsonWriter that did not own its file: the file stayed open (locked,
        // last buffer unwritten) until a finalizer ran, and a test reading it first failed with "used by another process".
        string folder = TextFixtures.NewFolder("gpt2-write");
        TiktokenConversion.WriteGpt2Folder(folder);

        foreach (string name in new[] { "vocab.json", "merges.txt" })
        {
            using var exclusive = new FileStream(Path.Combine(folder, name), FileMode.Open, FileAccess.ReadWrite, FileShare.None);
            exclusive.Length.Should().BeGreaterThan(0, name);
        }

        var vocabulary = System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(Path.Combine(folder, "vocab.json")))!;
        vocabulary.Should().HaveCount(50257);
        vocabulary["<|endoftext|>"].Should().Be(50256);
    }

    [Fact]
    public void ByteLevelBpe_HelloWorld_EncodesAsGpt2()
    {
        var gpt2 = TextFixtures.Gpt2Bpe;
        gpt2.Encode("Hello world").Should().Equal(15496, 995);
        gpt2.VocabularySize.Should().Be(50257);
        gpt2.SpecialTokens.EndOfSequence.Should().Be(50256);
        gpt2.SpecialTokens.Padding.Should().BeNull("GPT-2 defines no padding token");
        gpt2.TokenToId("Ġworld").Should().Be(995);
    }

    [Fact]
    public void ByteLevelBpe_FoldocText_MatchesTiktokenGpt2AndRoundTrips()
    {
        var gpt2 = TextFixtures.Gpt2Bpe;
        var reference = Tokenizers.FromMicrosoftML(TiktokenTokenizer.CreateForModel("gpt2"), 50257);
        foreach (var entry in TestData.FoldocEntries.Take(300))
        {
            string text = entry.Term + "\n" + entry.Text;
            int[] ids = gpt2.Encode(text);
            ids.Should().Equal(reference.Encode(text), "the vocab.json/merges.txt BPE must tokenise exactly like GPT-2 ({0})", entry.Term);
            gpt2.Decode(ids).Should().Be(text);
        }
    }

    [Fact]
    public void ByteLevelBpe_EndOfText_IsOneTokenAndSkippedOnDecode()
    {
        var gpt2 = TextFixtures.Gpt2Bpe;
        int[] ids = gpt2.Encode("a<|endoftext|>b");
        ids.Should().Equal(64, 50256, 65);
        gpt2.Decode(ids).Should().Be("ab");
        gpt2.Decode(ids, skipSpecialTokens: false).Should().Be("a<|endoftext|>b");
    }

    [Fact]
    public void ByteLevelBpe_IdOutsideVocabulary_ThrowsNamingId()
    {
        var decode = () => TextFixtures.Gpt2Bpe.Decode([15496, 50257]);
        decode.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*50257*outside the vocabulary*");
    }

    [Fact]
    public void ByteLevelBpe_BadMergeLine_ThrowsNamingFileAndLine()
    {
        string folder = TextFixtures.NewFolder("bad-merges");
        File.WriteAllText(Path.Combine(folder, "vocab.json"), """{"a": 0, "b": 1, "ab": 2}""");
        File.WriteAllText(Path.Combine(folder, "merges.txt"), "#version: 0.2\na b\nab\n");
        var load = () => ByteLevelBpeTokenizer.FromFolder(folder);
        load.Should().Throw<InvalidDataException>().WithMessage("*merges.txt' line 3*two tokens*");
    }

    [Fact]
    public void ByteLevelBpe_MissingVocabulary_ThrowsFileNotFound()
    {
        string folder = TextFixtures.NewFolder("no-vocab");
        var load = () => ByteLevelBpeTokenizer.FromFolder(folder);
        load.Should().Throw<FileNotFoundException>().WithMessage("*vocab.json*does not exist*");
    }

    [Fact]
    public void WordPiece_Unaffable_SplitsIntoUnAffAble()
    {
        var bert = BertWordPieceTokenizer.FromVocabulary(Path.Combine(TextFixtures.WriteWordPieceFolder(), "vocab.txt"));
        bert.Tokenize("unaffable").Should().Equal("un", "##aff", "##able");
        bert.Encode("unaffable").Should().Equal(2, 5, 6, 7, 3);
        bert.Encode("unaffable", addSpecialTokens: false).Should().Equal(5, 6, 7);
        (bert.ClassificationId, bert.SeparatorId, bert.PaddingId, bert.UnknownId, bert.MaskId).Should().Be((2, 3, 0, 1, 4));
        bert.VocabularySize.Should().Be(TextFixtures.WordPieceVocabulary.Length);
    }

    [Fact]
    public void WordPiece_LowerCasing_DecidesWhetherCapitalisedWordsAreKnown()
    {
        string vocab = Path.Combine(TextFixtures.WriteWordPieceFolder(), "vocab.txt");
        BertWordPieceTokenizer.FromVocabulary(vocab, lowerCase: true).Tokenize("The KERNEL runs, Café?").Should().Equal("the", "kernel", "run", "##s", ",", "cafe", "?");
        BertWordPieceTokenizer.FromVocabulary(vocab, lowerCase: false).Tokenize("The kernel").Should().Equal("[UNK]", "kernel");
    }

    [Fact]
    public void WordPiece_EncodePair_GivesSegmentIds()
    {
        var bert = BertWordPieceTokenizer.FromVocabulary(Path.Combine(TextFixtures.WriteWordPieceFolder(), "vocab.txt"));
        EncodedPair pair = bert.EncodePair("hello world", "the kernel");
        pair.InputIds.Should().Equal(2, 19, 20, 3, 8, 9, 3);
        pair.TokenTypeIds.Should().Equal(0, 0, 0, 0, 1, 1, 1);
    }

    [Fact]
    public void WordPiece_VocabularyWithoutSpecialTokens_ThrowsNamingThem()
    {
        string folder = TextFixtures.NewFolder("bad-wordpiece");
        File.WriteAllLines(Path.Combine(folder, "vocab.txt"), ["[PAD]", "[UNK]", "hello"]);
        var load = () => BertWordPieceTokenizer.FromFolder(folder);
        load.Should().Throw<InvalidDataException>().WithMessage("*[CLS], [SEP], [MASK]*");
    }

    [Fact]
    public void SentencePiece_TinyBpeModel_EncodesWithBosAndRoundTrips()
    {
        string path = TextFixtures.WriteSentencePieceModel(TextFixtures.NewFolder("spm"));
        var llama = SentencePieceModelTokenizer.FromFile(path);
        llama.VocabularySize.Should().Be(TextFixtures.SentencePieces.Length);
        llama.SpecialTokens.Should().Be(new SpecialTokenIds { BeginningOfSequence = 1, EndOfSequence = 2, Unknown = 0 });
        int[] ids = llama.Encode("hello world");
        ids.Should().Equal(1, 15, 16, 17, 6, 10);
        llama.Decode(ids).Should().Be("hello world");
        llama.Encode("hello", addSpecialTokens: false).Should().Equal(15);
        llama.AddSpecialTokens([15]).Should().Equal(1, 15);
    }

    [Fact]
    public void SentencePiece_MissingFile_ThrowsFileNotFound()
    {
        var load = () => SentencePieceModelTokenizer.FromFile(Path.Combine(TextFixtures.NewFolder("spm-missing"), "tokenizer.model"));
        load.Should().Throw<FileNotFoundException>().WithMessage("*tokenizer.model*does not exist*");
    }

    [Fact]
    public void SentencePiece_CorruptFile_ThrowsInvalidDataNamingFile()
    {
        string path = Path.Combine(TextFixtures.NewFolder("spm-corrupt"), "tokenizer.model");
        File.WriteAllBytes(path, [0xFF, 0xFF, 0xFF, 0x12, 0x00, 0x7F]);
        var load = () => SentencePieceModelTokenizer.FromFile(path);
        load.Should().Throw<InvalidDataException>().WithMessage($"*{path}*is not a SentencePiece model*");
    }

    [Fact]
    public void FromFolder_PicksTokenizerByFiles()
    {
        Tokenizers.FromFolder(TextFixtures.Gpt2Folder).Should().BeOfType<ByteLevelBpeTokenizer>();
        var bert = Tokenizers.FromFolder(TextFixtures.WriteWordPieceFolder("""{"do_lower_case": false, "tokenizer_class": "BertTokenizer"}"""));
        bert.Should().BeOfType<BertWordPieceTokenizer>().Which.LowerCase.Should().BeFalse();
        string spm = TextFixtures.NewFolder("spm-folder");
        TextFixtures.WriteSentencePieceModel(spm);
        File.WriteAllText(Path.Combine(spm, "tokenizer_config.json"), """{"add_bos_token": false, "add_eos_token": true}""");
        Tokenizers.FromFolder(spm).Encode("hello").Should().Equal(15, 2);
    }

    [Fact]
    public void FromFolder_RobertaStyleBpe_FramesWithSAndSlashSAndKeepsMaskWhole()
    {
        string folder = TextFixtures.NewFolder("roberta");
        var vocabulary = System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(Path.Combine(TextFixtures.Gpt2Folder, "vocab.json")))!;
        string[] specials = ["<s>", "</s>", "<pad>", "<unk>", "<mask>"];
        for (int i = 0; i < specials.Length; i++)
        {
            vocabulary[specials[i]] = 50257 + i;
        }

        File.WriteAllText(Path.Combine(folder, "vocab.json"), System.Text.Json.JsonSerializer.Serialize(vocabulary));
        File.Copy(Path.Combine(TextFixtures.Gpt2Folder, "merges.txt"), Path.Combine(folder, "merges.txt"));
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """
            {"tokenizer_class": "RobertaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>",
             "unk_token": "<unk>", "mask_token": {"content": "<mask>", "lstrip": true}}
            """);

        var roberta = Tokenizers.FromFolder(folder);
        roberta.Encode("Hello world").Should().Equal(50257, 15496, 995, 50258);
        roberta.Encode("Hello<mask>", addSpecialTokens: false).Should().Equal(15496, 50261);
        roberta.SpecialTokens.Should().Be(new SpecialTokenIds { BeginningOfSequence = 50257, EndOfSequence = 50258, Padding = 50259, Unknown = 50260 });
        roberta.Decode(roberta.Encode("Hello world")).Should().Be("Hello world");
    }

    [Fact]
    public void FromFolder_NoTokenizerFiles_ThrowsListingWhatIsThere()
    {
        string folder = TextFixtures.NewFolder("empty-model");
        File.WriteAllText(Path.Combine(folder, "config.json"), "{}");
        var load = () => Tokenizers.FromFolder(folder);
        load.Should().Throw<FileNotFoundException>().WithMessage("*vocab.json + merges.txt*vocab.txt*tokenizer.model*Files present: config.json*");
    }

    [Fact]
    public void FromFolder_AddedTokensFile_MatchesThemBeforeTheBaseTokenizer()
    {
        string folder = TextFixtures.WriteWordPieceFolder();
        File.WriteAllText(Path.Combine(folder, "added_tokens.json"), """{"Kubernetes": 22}""");
        var tokenizer = Tokenizers.FromFolder(folder);
        tokenizer.Should().BeOfType<AddedTokensTokenizer>();
        tokenizer.VocabularySize.Should().Be(23);
        tokenizer.Encode("the Kubernetes kernel").Should().Equal(2, 8, 22, 9, 3);
    }

    [Fact]
    public void AddedTokens_OverlappingTerms_LongestMatchWins()
    {
        var tokenizer = new AddedTokensTokenizer(new ByteTokenizer(), [new("Kube", 258), new("Kubernetes", 259)]);
        tokenizer.Encode("Kubernetes Kube").Should().Equal(259, ' ' + 2, 258);
        tokenizer.Decode([259, ' ' + 2, 258]).Should().Be("Kubernetes Kube");
        tokenizer.VocabularySize.Should().Be(260);
    }

    [Fact]
    public void AddedTokens_IdTakenByBaseVocabulary_ThrowsNamingFirstFreeId()
    {
        var create = () => new AddedTokensTokenizer(new ByteTokenizer(), [new("Kubernetes", 100)]);
        create.Should().Throw<ArgumentException>().WithMessage("*\"Kubernetes\" has id 100*from 258 on*");
    }

    [Fact]
    public void EnsureFits_VocabularyLargerThanEmbedding_ThrowsWithBothSizes()
    {
        var tokenizer = new AddedTokensTokenizer(new ByteTokenizer(), [new("Kubernetes", 258), new("kubectl", 259)]);
        Tokenizers.EnsureFits(tokenizer, 260);
        var check = () => Tokenizers.EnsureFits(tokenizer, 258);
        check.Should().Throw<InvalidOperationException>().WithMessage("*260 ids, 2 of them added tokens,*258 rows*ids 258…259*VocabularyExtension*");
    }

    [Fact]
    public void ByteTokenizer_AsITextTokenizer_ReportsItsVocabularyAndSpecialIds()
    {
        ITextTokenizer tokenizer = new ByteTokenizer();
        tokenizer.VocabularySize.Should().Be(258);
        tokenizer.SpecialTokens.EndOfSequence.Should().Be(ByteTokenizer.EndOfTextId);
        tokenizer.SpecialTokens.Padding.Should().Be(ByteTokenizer.PaddingId);
        tokenizer.Decode(tokenizer.Encode("naïve")).Should().Be("naïve");
    }
}
