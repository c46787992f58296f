using FluentAssertions;
using NicheTune.Augmentation;
using NicheTune.Tests.Support;
using Xunit;

namespace NicheTune.Tests.Augmentation;

public sealed class SynonymReplacementTests
{
    [Fact]
    public void WordNet_BuiltInTable_HasLemmasPartsOfSpeechAndSynonyms()
    {
        SynonymTable table = SynonymTable.WordNet;
        table.Count.Should().BeGreaterThan(40_000);
        table.PartsOfSpeech("run")[0].Should().Be(PartOfSpeech.Verb);
        table.Synonyms("quickly", PartOfSpeech.Adverb).Should().Contain("rapidly");
        table.Synonyms("computer", PartOfSpeech.Noun).Should().Contain("calculator");
        table.Synonyms("zzzz", PartOfSpeech.Noun).Should().BeEmpty();
    }

    [Fact]
    public void Augment_SameSeed_SameResult_DifferentSeeds_Differ()
    {
        IAugmenter<string> augmenter = Augmenters.SynonymReplacement(0.3);
        const string text = "The quick programmer wrote a small program that computes large numbers quickly and sends the results home.";
        string Run(int seed) => augmenter.Augment(text, new Random(seed)).Single();

        Run(7).Should().Be(Run(7));
        Enumerable.Range(0, 10).Select(Run).Distinct().Count().Should().BeGreaterThan(3);
    }

    [Fact]
    public void Augment_DomainTable_ChoosesSynonymOfGuessedPartOfSpeech()
    {
        // "run" has different synonyms as a noun and as a verb; the context decides which reading is used.
        SynonymTable table = SynonymTable.Create(
        [
            ("run", PartOfSpeech.Noun, ["execution"]),
            ("run", PartOfSpeech.Verb, ["execute"]),
        ]);
        IAugmenter<string> augmenter = Augmenters.SynonymReplacement(1.0, ProtectedTerms.None, table);

        augmenter.Augment("the run failed", new Random(1)).Single().Should().Be("the execution failed");
        augmenter.Augment("please run it", new Random(1)).Single().Should().Be("please execute it");
        augmenter.Augment("we run daily", new Random(1)).Single().Should().Be("we execute daily");
    }

    [Fact]
    public void Augment_InflectedWords_ReinflectsSynonymAndPreservesCase()
    {
        SynonymTable table = SynonymTable.Create(
        [
            ("file", PartOfSpeech.Noun, ["document"]),
            ("copy", PartOfSpeech.Verb, ["duplicate"]),
            ("box", PartOfSpeech.Noun, ["crate"]),
            ("child", PartOfSpeech.Noun, ["kid"]),
            ("stop", PartOfSpeech.Verb, ["halt"]),
        ],
        [("children", PartOfSpeech.Noun, "child")]);
        IAugmenter<string> augmenter = Augmenters.SynonymReplacement(1.0, ProtectedTerms.None, table);
        string Replace(string text) => augmenter.Augment(text, new Random(3)).Single();

        Replace("Files were copied.").Should().Be("Documents were duplicated.");
        Replace("She copies the boxes").Should().Be("She duplicates the crates");
        Replace("the children are copying FILES").Should().Be("the kids are duplicating DOCUMENTS");
        Replace("they stopped").Should().Be("they halted");
    }

    [Fact]
    public void Augment_ArticleBeforeReplacedWord_AgreesWithTheNewWord()
    {
        SynonymTable table = SynonymTable.Create([("version", PartOfSpeech.Noun, ["adaptation"]), ("idea", PartOfSpeech.Noun, ["concept"])]);
        IAugmenter<string> augmenter = Augmenters.SynonymReplacement(1.0, ProtectedTerms.None, table);
        augmenter.Augment("A version and an idea", new Random(1)).Single().Should().Be("An adaptation and a concept");
    }

    [Fact]
    public void Augment_CapitalisedWordInsideSentence_IsTreatedAsANameAndKept()
    {
        SynonymTable table = SynonymTable.Create([("graffiti", PartOfSpeech.Noun, ["graffito"]), ("distribution", PartOfSpeech.Noun, ["dispersion"])]);
        IAugmenter<string> augmenter = Augmenters.SynonymReplacement(1.0, ProtectedTerms.None, table);
        augmenter.Augment("Graffiti ran on the Berkeley Distribution. Distribution mattered.", new Random(1)).Single()
            .Should().Be("Graffito ran on the Berkeley Distribution. Dispersion mattered.");
    }

    [Fact]
    public void Augment_GlossaryAndProtectedPatterns_NeverChanged()
    {
        SynonymTable table = SynonymTable.Create(
        [
            ("neural", PartOfSpeech.Adjective, ["nervous"]),
            ("network", PartOfSpeech.Noun, ["web"]),
            ("server", PartOfSpeech.Noun, ["host"]),
            ("file", PartOfSpeech.Noun, ["document"]),
            ("mail", PartOfSpeech.Noun, ["post"]),
        ]);
        ProtectedTerms terms = ProtectedTerms.Default.WithGlossary("neural network", "server");
        IAugmenter<string> augmenter = Augmenters.SynonymReplacement(1.0, terms, table);
        const string text = "A neural network on the server reads file /etc/network.conf, mails admin@mail.example.com via https://network.example.com/file and calls parseFile() 3 times.";

        string result = augmenter.Augment(text, new Random(5)).Single();

        result.Should().Contain("neural network").And.Contain("server").And.Contain("/etc/network.conf")
            .And.Contain("admin@mail.example.com").And.Contain("https://network.example.com/file").And.Contain("parseFile()");
        result.Should().Contain("reads document");
        terms.Find(text).Should().Contain(["neural network", "server", "/etc/network.conf", "admin@mail.example.com", "parseFile()", "3"]);
    }

    [Fact]
    public void Augment_UserPattern_ProtectsMatches()
    {
        SynonymTable table = SynonymTable.Create([("ticket", PartOfSpeech.Noun, ["issue"])]);
        ProtectedTerms terms = ProtectedTerms.None.WithPattern(@"\bticket\b");
        Augmenters.SynonymReplacement(1.0, terms, table).Augment("see ticket now", new Random(1)).Should().BeEmpty();
        Augmenters.SynonymReplacement(1.0, ProtectedTerms.None, table).Augment("see ticket now", new Random(1)).Should().Equal("see issue now");
    }

    [Fact]
    public void Augment_WordNetOnRealText_ChangesAboutRateOfWords()
    {
        IAugmenter<string> augmenter = Augmenters.SynonymReplacement(0.2);
        const string text = "The operating system keeps a table of every open file and the process that owns it, and frees the memory when the program finishes.";
        string result = augmenter.Augment(text, new Random(11)).Single();
        string[] before = text.Split(' ');
        string[] after = result.Split(' ');
        after.Length.Should().Be(before.Length);
        before.Zip(after).Count(p => p.First != p.Second).Should().BeInRange(1, (int)(0.2 * before.Length));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    public void SynonymReplacement_RateOutOfRange_Throws(double rate)
    {
        var act = () => Augmenters.SynonymReplacement(rate);
        act.Should().Throw<ArgumentOutOfRangeException>().WithParameterName("rate");
    }

    [Fact]
    public void Find_GlossaryTermInPluralAndOtherCase_IsProtected()
    {
        ProtectedTerms terms = ProtectedTerms.None.WithGlossary("operating system", "bus");
        terms.Find("Two Operating Systems share buses, not a bush.").Should().Equal("Operating Systems", "buses");
    }

    [Theory]
    [InlineData("version v1.2 costs 10% more on x86 in 2023", new[] { "v1.2", "10%", "x86", "2023" })]
    [InlineData("see www.foldoc.org or mail dict@foldoc.org now", new[] { "www.foldoc.org", "dict@foldoc.org" })]
    [InlineData("edit ~/notes.txt, C:\\temp\\a.log and src/main.c", new[] { "~/notes.txt", "C:\\temp\\a.log", "src/main.c" })]
    [InlineData("call getValue() on max_size via System.IO in `x = y`", new[] { "getValue()", "max_size", "System.IO", "`x", "=", "y`" })]
    [InlineData("the TCP stack and the DNS resolver", new[] { "TCP", "DNS" })]
    [InlineData("plain words only, nothing to protect.", new string[0])]
    public void Find_BuiltInPatterns_ProtectExactlyTheTechnicalTokens(string text, string[] expected)
    {
        ProtectedTerms.Default.Find(text).Should().Equal(expected);
    }

    [Fact]
    public void Find_LongTokenWithoutSpaces_StaysLinear()
    {
        string blob = string.Concat(Enumerable.Repeat("abcdefghij", 5_000));
        var watch = System.Diagnostics.Stopwatch.StartNew();
        ProtectedTerms.Default.Find(blob + " and " + blob + "7").Should().HaveCount(1);
        watch.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(2), "no pattern may backtrack quadratically over a 50,000-character token");
    }

    [Fact]
    public void DistinctiveWords_FoldocAgainstWordNetGlosses_ProtectsTheDomainVocabulary()
    {
        IReadOnlyList<string> words = ProtectedTerms.DistinctiveWords(TestData.FoldocEntries.Select(e => e.Text), TestData.WordNetGlosses());

        words.Should().Contain(["network", "bits", "software"]).And.NotContain(["the", "used", "small", "person"]);
        IAugmenter<string> augmenter = Augmenters.SynonymReplacement(0.5, ProtectedTerms.Default.WithGlossary(words));
        const string text = "The bindery allows the network supervisor to design software that catches bits.";
        for (int seed = 0; seed < 20; seed++)
        {
            string result = augmenter.Augment(text, new Random(seed)).DefaultIfEmpty(text).Single();
            result.Should().Contain("network").And.Contain("software").And.Contain("bits");
        }
    }
}
