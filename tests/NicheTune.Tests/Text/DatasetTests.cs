using FluentAssertions;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;
using Xunit;

namespace NicheTune.Tests.Text;

public sealed class DatasetTests
{
    private static string FoldocPath => Path.Combine(TestData.Folder, "foldoc-subset.jsonl");

    private static string WriteFile(string name, string content)
    {
        string path = Path.Combine(TextFixtures.NewFolder("data"), name);
        File.WriteAllText(path, content);
        return path;
    }

    [Fact]
    public void ReadText_LinesAndParagraphs_CutDocumentsAndKeepLineNumbers()
    {
        string path = WriteFile("corpus.txt", "first line\n\n  \nsecond one\nstill second\n\n\nthird\n");
        TextDatasets.ReadText(path).Select(r => (r.Text, r.Line)).Should().Equal(("first line", 1), ("second one", 4), ("still second", 5), ("third", 8));
        TextDatasets.ReadText(path, TextFileLayout.ParagraphPerDocument).Select(r => (r.Text, r.Line))
            .Should().Equal(("first line", 1), ("second one\nstill second", 4), ("third", 8));
    }

    [Fact]
    public void ReadJsonl_Foldoc_TextAndPrimaryCategory()
    {
        var all = TextDatasets.ReadJsonl(FoldocPath, "text", "categories").ToList();
        all.Should().HaveCount(TestData.FoldocEntries.Count);
        all[0].Should().Be(new TextRecord(TestData.FoldocEntries[0].Text, "language", 1));
        all.Count(r => r.Label is null).Should().Be(TestData.FoldocEntries.Count(e => e.Categories.Length == 0));

        var labelled = TextDatasets.ReadJsonl(FoldocPath, new JsonlOptions { TextFields = ["term", "text"], FieldSeparator = ": ", LabelField = "categories", SkipUnlabelled = true }).ToList();
        labelled.Should().HaveCount(TestData.FoldocEntries.Count(e => e.Categories.Length > 0));
        labelled[0].Text.Should().Be("!!!Batch: " + TestData.FoldocEntries[0].Text);
    }

    [Fact]
    public void ReadJsonl_MissingField_ErrorNamesLineAndFieldsPresent()
    {
        string path = WriteFile("bad.jsonl", "{\"text\": \"ok\"}\n\n{\"body\": \"no text\", \"label\": \"x\"}\n");
        var read = () => TextDatasets.ReadJsonl(path).ToList();
        read.Should().Throw<InvalidDataException>().WithMessage("bad.jsonl line 3 has no field 'text'; fields present: body, label.*");
    }

    [Fact]
    public void ReadJsonl_InvalidJsonOrWrongType_ErrorNamesLine()
    {
        var broken = () => TextDatasets.ReadJsonl(WriteFile("broken.jsonl", "{\"text\": \"ok\"}\n{\"text\": \n")).ToList();
        broken.Should().Throw<InvalidDataException>().WithMessage("broken.jsonl line 2 is not valid JSON*");
        var number = () => TextDatasets.ReadJsonl(WriteFile("number.jsonl", "{\"text\": 42}\n")).ToList();
        number.Should().Throw<InvalidDataException>().WithMessage("number.jsonl line 1: field 'text' is a JSON Number*must be strings*");
        var objectLabel = () => TextDatasets.ReadJsonl(WriteFile("label.jsonl", "{\"text\": \"a\", \"y\": {}}\n"), "text", "y").ToList();
        objectLabel.Should().Throw<InvalidDataException>().WithMessage("label.jsonl line 1: label field 'y' is a JSON Object*");
    }

    [Fact]
    public void ReadCsv_Rfc4180Quoting_DelimitersQuotesAndLineBreaksInsideFields()
    {
        string csv = "id,text,label\r\n" +
                     "1,plain text,a\r\n" +
                     "2,\"comma, inside\",b\r\n" +
                     "3,\"say \"\"hi\"\"\",a\r\n" +
                     "4,\"two\r\nlines\",\r\n" +
                     "5,last,\"b\"";
        string path = WriteFile("data.csv", csv);
        var records = TextDatasets.ReadCsv(path, new CsvOptions { TextColumn = "text", LabelColumn = "label" }).ToList();
        records.Select(r => (r.Text, r.Label, r.Line)).Should().Equal(
            ("plain text", "a", 2), ("comma, inside", "b", 3), ("say \"hi\"", "a", 4), ("two\r\nlines", null, 5), ("last", "b", 7));
        TextDatasets.ReadCsv(path, new CsvOptions { TextColumn = 1 }).Select(r => r.Text).Should().HaveCount(5);
        TextDatasets.ReadCsv(() => new StringReader("x;y\n\"a;b\";c\n"), new CsvOptions { HasHeader = false, TextColumn = 0, LabelColumn = 1, Delimiter = ';' })
            .Should().Equal(new TextRecord("x", "y", 1), new TextRecord("a;b", "c", 2));
    }

    [Fact]
    public void ReadCsv_MalformedInput_ErrorsNameTheLine()
    {
        var unterminated = () => TextDatasets.ReadCsv(WriteFile("open.csv", "text\nfine\n\"never closed,\nmore\n")).ToList();
        unterminated.Should().Throw<InvalidDataException>().WithMessage("open.csv line 3: a quoted field is never closed*");
        var junk = () => TextDatasets.ReadCsv(WriteFile("junk.csv", "text\n\"quoted\"x\n")).ToList();
        junk.Should().Throw<InvalidDataException>().WithMessage("junk.csv line 2: character 'x' follows a closing quote*");
        var short_ = () => TextDatasets.ReadCsv(WriteFile("short.csv", "text,label\na,b\nonly\n"), new CsvOptions { LabelColumn = "label" }).ToList();
        short_.Should().Throw<InvalidDataException>().WithMessage("short.csv line 3 has 1 field(s) but 2 are needed*");
        var column = () => TextDatasets.ReadCsv(WriteFile("cols.csv", "body,label\na,b\n")).ToList();
        column.Should().Throw<InvalidDataException>().WithMessage("cols.csv: the header has no column 'text'; its columns are 'body', 'label'.");
    }

    [Fact]
    public void Readers_EndlessInput_ReadOnlyWhatIsEnumerated()
    {
        var text = new TextFixtures.EndlessReader(i => $"document {i}");
        TextDatasets.ReadText(() => text).Take(3).Select(r => r.Text).Should().Equal("document 0", "document 1", "document 2");
        text.CharactersRead.Should().BeLessThan(100);

        var jsonl = new TextFixtures.EndlessReader(i => $"{{\"text\": \"entry {i}\", \"label\": \"c{i % 3}\"}}");
        TextDatasets.ReadJsonl(() => jsonl, new JsonlOptions { LabelField = "label" }).Skip(1000).First().Should().Be(new TextRecord("entry 1000", "c1", 1001));
        jsonl.CharactersRead.Should().BeLessThan(50_000);

        var csv = new TextFixtures.EndlessReader(i => i == 0 ? "text,label" : $"\"row, {i}\",l");
        TextDatasets.ReadCsv(() => csv, new CsvOptions { LabelColumn = "label" }).Take(2).Select(r => r.Text).Should().Equal("row, 1", "row, 2");
        csv.CharactersRead.Should().BeLessThan(100);

        var blocks = TextDatasets.ToLanguageModelingBlocks(TextDatasets.ReadText(() => new TextFixtures.EndlessReader(i => "ab")).Select(r => r.Text), new ByteTokenizer(), length: 4);
        blocks.Take(2).Select(b => b.InputIds).Should().BeEquivalentTo(new[] { new[] { 99, 100, 1, 99 }, new[] { 100, 1, 99, 100 } }, o => o.WithStrictOrdering());
    }

    [Fact]
    public void ToLanguageModelingBlocks_Gpt2_EveryDocumentEndsWithEndOfText()
    {
        var gpt2 = TextFixtures.Gpt2Bpe;
        var texts = TestData.FoldocEntries.Take(40).Select(e => e.Text).ToList();
        var blocks = TextDatasets.ToLanguageModelingBlocks(texts, gpt2, length: 64, keepRemainder: true).ToList();
        blocks.Take(blocks.Count - 1).Should().OnlyContain(b => b.InputIds.Length == 64);
        int[] stream = [.. blocks.SelectMany(b => b.InputIds)];
        int[] expected = [.. texts.SelectMany(t => gpt2.Encode(t).Append(50256))];
        stream.Should().Equal(expected.Length - stream.Length == 1 ? expected[..^1] : expected, "blocks are the documents, each followed by <|endoftext|>, cut in order");
        stream.Count(id => id == 50256).Should().BeGreaterThanOrEqualTo(texts.Count - 1);
    }

    [Fact]
    public void PackLazily_SameWindowsAsPack()
    {
        int[][] documents = [[10, 11, 12], [20, 21], [30, 31, 32, 33, 34, 35, 36, 37, 38]];
        var lazy = SequencePacking.PackLazily(documents, 4, 1, keepRemainder: true).Select(e => e.InputIds).ToList();
        lazy.Should().BeEquivalentTo(SequencePacking.Pack(documents, 4, 1, keepRemainder: true).Select(e => e.InputIds), o => o.WithStrictOrdering());
        lazy.Should().BeEquivalentTo(new[] { new[] { 10, 11, 12, 1 }, new[] { 20, 21, 1, 30 }, new[] { 31, 32, 33, 34 }, new[] { 35, 36, 37, 38 } }, o => o.WithStrictOrdering(),
            "a remainder of one separator is not a trainable window");
        var bad = () => SequencePacking.PackLazily(documents, 1, 1);
        bad.Should().Throw<ArgumentOutOfRangeException>();
    }

    [Fact]
    public void LabelMap_FromLabels_OrderIndependentAndRoundTripsThroughJson()
    {
        var labels = TextDatasets.ReadJsonl(FoldocPath, "text", "categories").Select(r => r.Label).ToList();
        var map = LabelMap.FromLabels(labels);
        var reversed = LabelMap.FromLabels(Enumerable.Reverse(labels));
        reversed.Labels.Should().Equal(map.Labels, "ids must not depend on record order");
        map.Labels.Should().BeInAscendingOrder(StringComparer.Ordinal);
        map.IdOf("networking").Should().Be(map.Labels.ToList().IndexOf("networking"));

        string path = Path.Combine(TextFixtures.NewFolder("labels"), "labels.json");
        map.Save(path);
        File.ReadAllText(path).Should().Contain("\"id2label\"").And.Contain("\"label2id\"");
        var loaded = LabelMap.Load(path);
        loaded.Labels.Should().Equal(map.Labels);
        loaded.LabelOf(3).Should().Be(map.LabelOf(3));
    }

    [Fact]
    public void LabelMap_BadInput_ClearErrors()
    {
        var map = new LabelMap(["b", "a"]);
        map.IdOf("a").Should().Be(1);
        var unknown = () => map.IdOf("c");
        unknown.Should().Throw<KeyNotFoundException>().WithMessage("*'c'*known labels: b, a*");
        var duplicate = () => new LabelMap(["a", "b", "a"]);
        duplicate.Should().Throw<ArgumentException>().WithMessage("*'a' appears at ids 0 and 2*");
        var gap = () => LabelMap.FromJson("""{"id2label": {"0": "a", "2": "b"}}""");
        gap.Should().Throw<InvalidDataException>().WithMessage("*without gaps*");
        var disagree = () => LabelMap.FromJson("""{"id2label": {"0": "a", "1": "b"}, "label2id": {"a": 1, "b": 0}}""");
        disagree.Should().Throw<InvalidDataException>().WithMessage("*label2id maps 'a' to 1*gives it 0*");
    }

    [Fact]
    public void Stratified_FoldocCategories_EveryClassKeepsItsShareAndSeedDecides()
    {
        var records = TextDatasets.ReadJsonl(FoldocPath, new JsonlOptions { LabelField = "categories", SkipUnlabelled = true }).ToList();
        var split = DatasetSplits.Stratified(records, r => r.Label!, validationFraction: 0.1, testFraction: 0.2, seed: 42);

        (split.Train.Count + split.Validation.Count + split.Test.Count).Should().Be(records.Count);
        split.Train.Concat(split.Validation).Concat(split.Test).Select(r => r.Line).Should().OnlyHaveUniqueItems();
        foreach (var group in records.GroupBy(r => r.Label!))
        {
            int n = group.Count();
            int test = split.Test.Count(r => r.Label == group.Key);
            int validation = split.Validation.Count(r => r.Label == group.Key);
            test.Should().BeInRange((int)Math.Floor(n * 0.2) - 1, (int)Math.Ceiling(n * 0.2), "class {0} has {1} items", group.Key, n);
            validation.Should().BeInRange((int)Math.Floor(n * 0.1) - 1, (int)Math.Ceiling(n * 0.1), "class {0} has {1} items", group.Key, n);
            split.Train.Count(r => r.Label == group.Key).Should().BeGreaterThan(0);
        }

        int languages = records.Count(r => r.Label == "language");
        split.Test.Count(r => r.Label == "language").Should().Be((int)Math.Round(languages * 0.2, MidpointRounding.AwayFromZero));
        split.Train.Select(r => r.Line).Should().BeInAscendingOrder("each part keeps the file order");

        var again = DatasetSplits.Stratified(records, r => r.Label!, 0.1, 0.2, seed: 42);
        again.Test.Select(r => r.Line).Should().Equal(split.Test.Select(r => r.Line));
        var other = DatasetSplits.Stratified(records, r => r.Label!, 0.1, 0.2, seed: 43);
        other.Test.Select(r => r.Line).Should().NotEqual(split.Test.Select(r => r.Line));
    }

    [Fact]
    public void StreamingPart_Foldoc_PartitionsByKeyIndependentlyOfOrder()
    {
        var records = TextDatasets.ReadJsonl(FoldocPath).ToList();
        IEnumerable<TextRecord> Part(IEnumerable<TextRecord> items, SplitPart part, int seed = 7) =>
            DatasetSplits.StreamingPart(items, r => r.Text, part, validationFraction: 0.1, testFraction: 0.2, seed);

        var train = Part(records, SplitPart.Train).ToList();
        var validation = Part(records, SplitPart.Validation).ToList();
        var test = Part(records, SplitPart.Test).ToList();
        (train.Count + validation.Count + test.Count).Should().Be(records.Count);
        train.Concat(validation).Concat(test).Select(r => r.Line).Should().OnlyHaveUniqueItems();
        // Binomial(1501, p): three standard deviations are about ±35 (test) and ±35 (validation) items.
        test.Count.Should().BeInRange(300 - 47, 300 + 47);
        validation.Count.Should().BeInRange(150 - 35, 150 + 35);

        Part(Enumerable.Reverse(records), SplitPart.Test).Select(r => r.Line).Reverse().Should().Equal(test.Select(r => r.Line), "the part depends on the key, not the order");
        Part(records, SplitPart.Test, seed: 8).Select(r => r.Line).Should().NotEqual(test.Select(r => r.Line));

        var endless = new TextFixtures.EndlessReader(i => $"doc {i}");
        Part(TextDatasets.ReadText(() => endless), SplitPart.Validation).Take(5).Should().HaveCount(5);
        endless.CharactersRead.Should().BeLessThan(2_000);
    }

    [Fact]
    public void Splits_BadFractions_Throw()
    {
        int[] items = [1, 2, 3];
        var sum = () => DatasetSplits.Random(items, 0.5, 0.5, seed: 1);
        sum.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*must be below 1*");
        var negative = () => DatasetSplits.Random(items, -0.1, 0.1, seed: 1);
        negative.Should().Throw<ArgumentOutOfRangeException>().WithParameterName("validationFraction");
        DatasetSplits.Random(Enumerable.Range(0, 100).ToList(), 0.1, 0.1, seed: 5).Validation.Should().HaveCount(10);
    }

    [Fact]
    public void ToClassificationExamples_WordPiece_FramesTruncatesAndMapsLabels()
    {
        var bert = BertWordPieceTokenizer.FromVocabulary(Path.Combine(TextFixtures.WriteWordPieceFolder(), "vocab.txt"));
        var labels = new LabelMap(["os", "program"]);
        TextRecord[] records = [new("the kernel is a program", "os", 1), new("hello", "program", 2)];
        var examples = TextDatasets.ToClassificationExamples(records, bert, labels, maxLength: 4).ToList();
        examples[0].InputIds.Should().Equal(2, 8, 9, 3);
        examples[0].Label.Should().Be(0);
        examples[1].InputIds.Should().Equal(2, 19, 3);
        examples[1].Label.Should().Be(1);

        var unknown = () => TextDatasets.ToClassificationExamples([new TextRecord("x", "web", 17)], bert, labels).ToList();
        unknown.Should().Throw<InvalidDataException>().WithMessage("*line 17 has label 'web'*known labels: os, program*");
        var missing = () => TextDatasets.ToClassificationExamples([new TextRecord("x", null, 5)], bert, labels).ToList();
        missing.Should().Throw<InvalidDataException>().WithMessage("*line 5 has no label*");
    }

    [Fact]
    public void CreateCollator_PadsWithTheTokenizersPaddingIdAndMasksIt()
    {
        var bert = BertWordPieceTokenizer.FromVocabulary(Path.Combine(TextFixtures.WriteWordPieceFolder(), "vocab.txt"));
        using var bertBatch = bert.CreateCollator().Collate([new TokenExample(bert.Encode("hello world"), 1), new TokenExample(bert.Encode("hello"), 0)]);
        bertBatch.InputIds.data<long>().ToArray().Should().Equal(2, 19, 20, 3, 2, 19, 3, 0);
        bertBatch.AttentionMask.data<long>().ToArray().Should().Equal(1, 1, 1, 1, 1, 1, 1, 0);

        var gpt2 = TextFixtures.Gpt2Bpe;
        using var gptBatch = gpt2.CreateCollator(maxLength: 3).Collate([new TokenExample(gpt2.Encode("Hello world, again")), new TokenExample(gpt2.Encode("Hello"))]);
        gptBatch.InputIds.data<long>().ToArray().Should().Equal(15496, 995, 11, 15496, 50256, 50256);
        gptBatch.Labels.data<long>().ToArray().Should().Equal(15496, 995, 11, 15496, -100, -100);
        gptBatch.AttentionMask.data<long>().ToArray().Should().Equal(1, 1, 1, 1, 0, 0);
    }
}
