using System.Text.Json;
using BenchmarkDotNet.Attributes;
using NicheTune.Augmentation;

namespace NicheTune.Benchmarks;

/// <summary>
/// Augmentation throughput on one core: synonym replacement (target ≥ 20,000 sentences/s), against the analysis alone
/// (white-space units + the protected-pattern pass) as the baseline, and EDA's four copies. Sentences are the first
/// sentences of the FOLDOC category task (tests/data/foldoc-categories.jsonl); the table's per-operation time is per sentence.
/// </summary>
[MemoryDiagnoser]
public class SynonymReplacementBenchmarks
{
    private const int SentenceCount = 1000;

    private string[] _sentences = [];
    private IAugmenter<string>? _synonyms;
    private IAugmenter<string>? _eda;
    private Random _random = new(1);

    [GlobalSetup]
    public void Setup()
    {
        _sentences = LoadSentences();
        _synonyms = Augmenters.SynonymReplacement(0.1, ProtectedTerms.Default.WithGlossary("operating system", "programming language"));
        _eda = Augmenters.Eda();
        _random = new Random(1);
        _ = _synonyms.Augment(_sentences[0], _random).ToArray();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = SentenceCount)]
    public int AnalysisOnly()
    {
        int units = 0;
        foreach (string sentence in _sentences)
        {
            units += ProtectedTerms.Default.Find(sentence).Count;
        }

        return units;
    }

    [Benchmark(OperationsPerInvoke = SentenceCount)]
    public int SynonymReplacement()
    {
        int changed = 0;
        foreach (string sentence in _sentences)
        {
            foreach (string variant in _synonyms!.Augment(sentence, _random))
            {
                changed += variant.Length;
            }
        }

        return changed;
    }

    [Benchmark(OperationsPerInvoke = SentenceCount)]
    public int EdaFourCopies()
    {
        int changed = 0;
        foreach (string sentence in _sentences)
        {
            foreach (string variant in _eda!.Augment(sentence, _random))
            {
                changed += variant.Length;
            }
        }

        return changed;
    }

    private static string[] LoadSentences()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string path = Path.Combine(dir.FullName, "tests", "data", "foldoc-categories.jsonl");
            if (File.Exists(path))
            {
                return [.. File.ReadLines(path).Take(SentenceCount).Select(FirstSentence)];
            }
        }

        throw new FileNotFoundException("tests/data/foldoc-categories.jsonl not found above the benchmark's folder; run the benchmark from the repository.");
    }

    private static string FirstSentence(string line)
    {
        using var doc = JsonDocument.Parse(line);
        string text = doc.RootElement.GetProperty("text").GetString()!;
        int end = text.IndexOf(". ", StringComparison.Ordinal);
        return end < 0 ? text : text[..(end + 1)];
    }
}
