using System.Collections.Immutable;
using System.Text.Json;
using System.Text.Json.Serialization;
using NicheTune.Deployment;

namespace NicheTune.Monitoring;

/// <summary>
/// What normal traffic looks like, captured once (typically on the validation set when the model is exported) and
/// shipped with the model: for every <see cref="DriftStatistic"/> the bins and the share of reference observations in
/// each. Continuous statistics get quantile bins (each holding about the same share of the reference), the predicted
/// label gets one bin per label seen plus one for any other label, and the embeddings' centroid is kept for
/// <see cref="DriftStatistic.EmbeddingDistance"/>. Immutable; <see cref="ToJson"/> / <see cref="Save"/> carry it.
/// </summary>
public sealed class MonitorReference
{
    /// <summary>The name of the label bin that collects labels the reference never predicted.</summary>
    public const string OtherLabel = "(other)";

    private const string Format = "nichetune.monitor-reference";

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter() },
    };

    private readonly Dictionary<DriftStatistic, StatisticBins> _bins;

    private MonitorReference(long observationCount, ImmutableArray<float> centroid, Dictionary<DriftStatistic, StatisticBins> bins)
    {
        ObservationCount = observationCount;
        EmbeddingCentroid = centroid;
        _bins = bins;
        Statistics = [.. bins.Keys.Order()];
    }

    /// <summary>Number of observations the reference was captured from.</summary>
    public long ObservationCount { get; }

    /// <summary>Mean of the reference embeddings; empty when the reference had none.</summary>
    public ImmutableArray<float> EmbeddingCentroid { get; }

    /// <summary>The statistics the reference has bins for (those measured on at least one reference observation), in enum order.</summary>
    public ImmutableArray<DriftStatistic> Statistics { get; }

    internal const int StatisticCount = 7;

    /// <summary>Captures a reference from observations.</summary>
    /// <param name="observations">Representative traffic, e.g. the validation set run through the model (at least one).</param>
    /// <param name="bins">Quantile bins per continuous statistic (fewer when values repeat); 10 is the usual choice for PSI.</param>
    /// <returns>The reference.</returns>
    /// <exception cref="ArgumentException">No observation was given, one is <see langword="null"/>, embeddings differ in length, or <paramref name="bins"/> is below 2.</exception>
    public static MonitorReference Capture(IEnumerable<MonitorObservation> observations, int bins = 10)
    {
        ArgumentNullException.ThrowIfNull(observations);
        if (bins < 2)
        {
            throw new ArgumentException($"bins must be at least 2; got {bins}. 10 quantile bins is the common choice for the population stability index.", nameof(bins));
        }

        MonitorObservation[] all = [.. observations];
        if (all.Length == 0)
        {
            throw new ArgumentException("A reference needs at least one observation; pass the validation set's observations.", nameof(observations));
        }

        ImmutableArray<float> centroid = Centroid(all);
        var values = new List<double>[StatisticCount];
        for (int s = 0; s < StatisticCount; s++)
        {
            values[s] = [];
        }

        var labels = new Dictionary<string, long>(StringComparer.Ordinal);
        long labelled = 0;
        for (int i = 0; i < all.Length; i++)
        {
            MonitorObservation o = all[i] ?? throw new ArgumentException($"Observation {i} is null.", nameof(observations));
            ObservationValues v = ObservationValues.From(o, centroid);
            for (int s = 0; s < StatisticCount; s++)
            {
                if (s != (int)DriftStatistic.PredictedLabel && v.Get(s) is { } x)
                {
                    values[s].Add(x);
                }
            }

            if (v.Label is { } label)
            {
                labels[label] = labels.GetValueOrDefault(label) + 1;
                labelled++;
            }
        }

        var result = new Dictionary<DriftStatistic, StatisticBins>();
        for (int s = 0; s < StatisticCount; s++)
        {
            if (values[s].Count > 0)
            {
                result[(DriftStatistic)s] = StatisticBins.Quantiles((DriftStatistic)s, values[s], bins);
            }
        }

        if (labelled > 0)
        {
            string[] names = [.. labels.Keys.Order(StringComparer.Ordinal)];
            double[] proportions = [.. names.Select(n => labels[n] / (double)labelled), 0];
            result[DriftStatistic.PredictedLabel] = new StatisticBins(DriftStatistic.PredictedLabel, labelled, [], [.. names, OtherLabel], [.. proportions]);
        }

        return new MonitorReference(all.Length, centroid, result);
    }

    /// <summary>Captures a reference from served requests, e.g. the validation set answered by the exported model.</summary>
    /// <param name="records">The records (at least one).</param>
    /// <param name="inputPerplexity">Perplexity of a text under a reference language model, or <see langword="null"/> (see <see cref="MonitorObservation.FromRecord"/>).</param>
    /// <param name="bins">Quantile bins per continuous statistic.</param>
    /// <returns>The reference.</returns>
    /// <exception cref="ArgumentException">See <see cref="Capture(IEnumerable{MonitorObservation}, int)"/>.</exception>
    public static MonitorReference Capture(IEnumerable<PredictionRecord> records, Func<string, double>? inputPerplexity = null, int bins = 10)
    {
        ArgumentNullException.ThrowIfNull(records);
        return Capture(records.Select(r => MonitorObservation.FromRecord(r ?? throw new ArgumentException("A record is null.", nameof(records)), inputPerplexity)), bins);
    }

    /// <summary>The upper edges of a continuous statistic's bins (the last bin is open-ended); empty for the predicted label.</summary>
    /// <param name="statistic">The statistic.</param>
    /// <returns>Ascending edges: a value v falls in the first bin whose edge is ≥ v.</returns>
    /// <exception cref="ArgumentException">The reference has no bins for <paramref name="statistic"/>.</exception>
    public ImmutableArray<double> BinEdges(DriftStatistic statistic) => Bins(statistic).Edges;

    /// <summary>The label of every bin of <see cref="DriftStatistic.PredictedLabel"/>, ending with <see cref="OtherLabel"/>; empty for continuous statistics.</summary>
    /// <param name="statistic">The statistic.</param>
    /// <returns>The categories.</returns>
    /// <exception cref="ArgumentException">The reference has no bins for <paramref name="statistic"/>.</exception>
    public ImmutableArray<string> Categories(DriftStatistic statistic) => Bins(statistic).Categories;

    /// <summary>The share of reference observations in each bin of a statistic.</summary>
    /// <param name="statistic">The statistic.</param>
    /// <returns>One proportion per bin, summing to 1.</returns>
    /// <exception cref="ArgumentException">The reference has no bins for <paramref name="statistic"/>.</exception>
    public ImmutableArray<double> Proportions(DriftStatistic statistic) => Bins(statistic).Proportions;

    /// <summary>Serialises the reference (format <c>nichetune.monitor-reference</c>, version 1).</summary>
    /// <returns>Indented JSON.</returns>
    public string ToJson()
    {
        var dto = new ReferenceDto(Format, 1, ObservationCount, [.. EmbeddingCentroid],
            [.. Statistics.Select(s => _bins[s]).Select(b => new StatisticDto(b.Statistic, b.Count, [.. b.Edges], [.. b.Categories], [.. b.Proportions]))]);
        return JsonSerializer.Serialize(dto, JsonOptions);
    }

    /// <summary>Reads a reference written by <see cref="ToJson"/>.</summary>
    /// <param name="json">The JSON text.</param>
    /// <returns>The reference.</returns>
    /// <exception cref="InvalidDataException">The text is not a valid monitor reference (the message says what is wrong).</exception>
    public static MonitorReference FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        ReferenceDto? dto;
        try
        {
            dto = JsonSerializer.Deserialize<ReferenceDto>(json, JsonOptions);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"The monitor reference is not valid JSON: {e.Message}", e);
        }

        if (dto is null || dto.Format != Format || dto.Version != 1)
        {
            throw new InvalidDataException($"Expected a '{Format}' version 1 document; got format '{dto?.Format}' version {dto?.Version}. Write it with MonitorReference.ToJson or Save.");
        }

        var bins = new Dictionary<DriftStatistic, StatisticBins>();
        foreach (StatisticDto s in dto.Statistics ?? [])
        {
            if (!Enum.IsDefined(s.Statistic) || bins.ContainsKey(s.Statistic))
            {
                throw new InvalidDataException($"The monitor reference lists statistic '{s.Statistic}' twice or it is unknown.");
            }

            bins[s.Statistic] = StatisticBins.Validated(s.Statistic, s.Count, s.Edges ?? [], s.Categories ?? [], s.Proportions ?? []);
        }

        return new MonitorReference(dto.ObservationCount, [.. dto.EmbeddingCentroid ?? []], bins);
    }

    /// <summary>Writes <see cref="ToJson"/> to a file atomically (a temporary file in the same folder, then a rename).</summary>
    /// <param name="path">The file, e.g. <c>package/monitor-reference.json</c>; its folder is created if missing.</param>
    /// <exception cref="ArgumentException"><paramref name="path"/> is empty.</exception>
    /// <exception cref="IOException">The file could not be written.</exception>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        AtomicFile.WriteAllText(path, ToJson());
    }

    /// <summary>Reads a reference saved by <see cref="Save"/>.</summary>
    /// <param name="path">The file.</param>
    /// <returns>The reference.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a valid monitor reference.</exception>
    public static MonitorReference Load(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"No monitor reference at '{path}'; capture one with MonitorReference.Capture and Save it.", path);
        }

        return FromJson(File.ReadAllText(path));
    }

    internal bool TryGetBins(DriftStatistic statistic, out StatisticBins bins) => _bins.TryGetValue(statistic, out bins!);

    private StatisticBins Bins(DriftStatistic statistic) => _bins.TryGetValue(statistic, out StatisticBins? bins)
        ? bins
        : throw new ArgumentException($"The reference has no bins for {statistic}; it has {string.Join(", ", Statistics)}. Capture it from observations that measure {statistic}.", nameof(statistic));

    private static ImmutableArray<float> Centroid(MonitorObservation[] all)
    {
        double[]? sum = null;
        long n = 0;
        foreach (MonitorObservation o in all)
        {
            if (o is null || o.Embedding.IsDefaultOrEmpty)
            {
                continue;
            }

            sum ??= new double[o.Embedding.Length];
            if (o.Embedding.Length != sum.Length)
            {
                throw new ArgumentException($"Embeddings differ in length ({sum.Length} and {o.Embedding.Length}); every observation must come from the same embedding model.", "observations");
            }

            for (int i = 0; i < sum.Length; i++)
            {
                sum[i] += o.Embedding[i];
            }

            n++;
        }

        return sum is null ? [] : [.. sum.Select(x => (float)(x / n))];
    }

    private sealed record ReferenceDto(string Format, int Version, long ObservationCount, float[]? EmbeddingCentroid, StatisticDto[]? Statistics);

    private sealed record StatisticDto(DriftStatistic Statistic, long Count, double[]? Edges, string[]? Categories, double[]? Proportions);
}

/// <summary>The bins of one statistic: quantile edges or label categories, and the reference proportions.</summary>
internal sealed class StatisticBins
{
    private readonly Dictionary<string, int> _categoryIndex;

    public StatisticBins(DriftStatistic statistic, long count, ImmutableArray<double> edges, ImmutableArray<string> categories, ImmutableArray<double> proportions)
    {
        Statistic = statistic;
        Count = count;
        Edges = edges;
        Categories = categories;
        Proportions = proportions;
        _categoryIndex = categories.Select((c, i) => (c, i)).ToDictionary(x => x.c, x => x.i, StringComparer.Ordinal);
    }

    public DriftStatistic Statistic { get; }

    public long Count { get; }

    public ImmutableArray<double> Edges { get; }

    public ImmutableArray<string> Categories { get; }

    public ImmutableArray<double> Proportions { get; }

    public int BinCount => Proportions.Length;

    public static StatisticBins Quantiles(DriftStatistic statistic, List<double> values, int bins)
    {
        double[] sorted = [.. values.Order()];
        var edges = new List<double>(bins - 1);
        for (int i = 1; i < bins; i++)
        {
            double edge = sorted[Math.Max(0, (int)Math.Ceiling(i * sorted.Length / (double)bins) - 1)];
            if (edges.Count == 0 || edge > edges[^1])
            {
                edges.Add(edge);
            }
        }

        var binned = new StatisticBins(statistic, sorted.Length, [.. edges], [], [.. new double[edges.Count + 1]]);
        var counts = new double[edges.Count + 1];
        foreach (double v in sorted)
        {
            counts[binned.BinOf(v)]++;
        }

        return new StatisticBins(statistic, sorted.Length, [.. edges], [], [.. counts.Select(c => c / sorted.Length)]);
    }

    public static StatisticBins Validated(DriftStatistic statistic, long count, double[] edges, string[] categories, double[] proportions)
    {
        bool label = statistic == DriftStatistic.PredictedLabel;
        int expected = label ? categories.Length : edges.Length + 1;
        bool sortedEdges = edges.Zip(edges.Skip(1)).All(p => p.First < p.Second) && edges.All(double.IsFinite);
        double sum = proportions.Sum();
        if (count < 1 || proportions.Length != expected || (label ? categories.Length < 1 || edges.Length > 0 : categories.Length > 0)
            || !sortedEdges || proportions.Any(p => !(p >= 0)) || Math.Abs(sum - 1) > 1e-6)
        {
            throw new InvalidDataException(
                $"The monitor reference's bins for {statistic} are inconsistent: count {count}, {edges.Length} edges (must ascend), {categories.Length} categories, " +
                $"{proportions.Length} proportions summing to {sum}. Recapture the reference.");
        }

        return new StatisticBins(statistic, count, [.. edges], [.. categories], [.. proportions]);
    }

    public int BinOf(double value)
    {
        int i = Edges.AsSpan().BinarySearch(value);
        return i >= 0 ? i : ~i;
    }

    public int BinOf(string label) => _categoryIndex.TryGetValue(label, out int i) ? i : Categories.Length - 1;
}

/// <summary>The statistic values of one observation (NaN or absent values are <see langword="null"/>).</summary>
internal readonly struct ObservationValues
{
    private readonly double? _length, _unknown, _perplexity, _distance, _confidence, _entropy;

    private ObservationValues(double? length, double? unknown, double? perplexity, double? distance, string? label, double? confidence, double? entropy)
    {
        _length = Finite(length);
        _unknown = Finite(unknown);
        _perplexity = Finite(perplexity);
        _distance = Finite(distance);
        Label = label;
        _confidence = Finite(confidence);
        _entropy = Finite(entropy);
    }

    public string? Label { get; }

    public static ObservationValues From(MonitorObservation o, ImmutableArray<float> centroid)
    {
        double? distance = null;
        if (!o.Embedding.IsDefaultOrEmpty && !centroid.IsDefaultOrEmpty)
        {
            if (o.Embedding.Length != centroid.Length)
            {
                throw new ArgumentException(
                    $"The observation's embedding has {o.Embedding.Length} dimensions but the reference centroid has {centroid.Length}; observe embeddings of the model the reference was captured with.", "observation");
            }

            double dot = 0, a = 0, b = 0;
            for (int i = 0; i < centroid.Length; i++)
            {
                dot += o.Embedding[i] * (double)centroid[i];
                a += o.Embedding[i] * (double)o.Embedding[i];
                b += centroid[i] * (double)centroid[i];
            }

            distance = a > 0 && b > 0 ? 1 - (dot / Math.Sqrt(a * b)) : null;
        }

        double? confidence = null, entropy = null;
        string? label = o.PredictedLabel;
        if (!o.Probabilities.IsDefaultOrEmpty)
        {
            double max = double.NegativeInfinity, h = 0, total = 0;
            int argMax = 0;
            for (int i = 0; i < o.Probabilities.Length; i++)
            {
                total += o.Probabilities[i];
            }

            for (int i = 0; i < o.Probabilities.Length; i++)
            {
                double p = o.Probabilities[i] / total;
                if (p > max)
                {
                    max = p;
                    argMax = i;
                }

                if (p > 0)
                {
                    h -= p * Math.Log(p);
                }
            }

            if (total > 0)
            {
                confidence = max;
                entropy = h;
                label ??= argMax.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return new ObservationValues(o.InputLength, o.UnknownTokenRate, o.InputPerplexity, distance, label, confidence, entropy);
    }

    public double? Get(int statistic) => (DriftStatistic)statistic switch
    {
        DriftStatistic.InputLength => _length,
        DriftStatistic.UnknownTokenRate => _unknown,
        DriftStatistic.InputPerplexity => _perplexity,
        DriftStatistic.EmbeddingDistance => _distance,
        DriftStatistic.Confidence => _confidence,
        DriftStatistic.Entropy => _entropy,
        _ => null,
    };

    private static double? Finite(double? value) => value is { } v && double.IsFinite(v) ? v : null;
}
