namespace NicheTune.Augmentation;

/// <summary>Which EDA operation a <see cref="WordOperationAugmenter"/> applies.</summary>
internal enum WordOperation
{
    SynonymReplacement,
    RandomInsertion,
    RandomSwap,
    RandomDeletion,
}

/// <summary>One EDA operation as an augmenter: at most one variant per call, none when nothing could change.</summary>
internal sealed class WordOperationAugmenter(WordOperation operation, double rate, ProtectedTerms protectedTerms, Lexicon lexicon) : IAugmenter<string>
{
    public IEnumerable<string> Augment(string example, Random random)
    {
        ArgumentNullException.ThrowIfNull(example);
        ArgumentNullException.ThrowIfNull(random);
        string? result = Apply(operation, example, random);
        return result is null ? [] : [result];
    }

    internal string? Apply(WordOperation op, string text, Random random)
    {
        List<TextUnit> units = TextUnits.Analyze(text, protectedTerms);
        if (units.Count == 0)
        {
            return null;
        }

        return op switch
        {
            WordOperation.SynonymReplacement => WordOperations.ReplaceSynonyms(text, units, lexicon, rate, random),
            WordOperation.RandomInsertion => WordOperations.InsertSynonyms(text, units, lexicon, rate, random),
            WordOperation.RandomSwap => WordOperations.Swap(text, units, rate, random),
            _ => WordOperations.Delete(text, units, rate, random),
        };
    }
}

/// <summary>EDA as the paper's reference code runs it: each of <c>copies</c> variants comes from one operation drawn at random.</summary>
internal sealed class EdaAugmenter(EdaOptions options, Lexicon lexicon) : IAugmenter<string>
{
    private readonly (WordOperation Operation, WordOperationAugmenter Augmenter)[] _operations =
    [
        .. new[]
        {
            (WordOperation.SynonymReplacement, options.SynonymReplacementRate),
            (WordOperation.RandomInsertion, options.RandomInsertionRate),
            (WordOperation.RandomSwap, options.RandomSwapRate),
            (WordOperation.RandomDeletion, options.RandomDeletionProbability),
        }.Where(o => o.Item2 > 0).Select(o => (o.Item1, new WordOperationAugmenter(o.Item1, o.Item2, options.ProtectedTerms, lexicon))),
    ];

    public IEnumerable<string> Augment(string example, Random random)
    {
        ArgumentNullException.ThrowIfNull(example);
        ArgumentNullException.ThrowIfNull(random);
        var results = new List<string>(options.Copies);
        for (int i = 0; i < options.Copies; i++)
        {
            (WordOperation operation, WordOperationAugmenter augmenter) = _operations[random.Next(_operations.Length)];
            string? result = augmenter.Apply(operation, example, random);
            if (result is not null)
            {
                results.Add(result);
            }
        }

        return results;
    }
}

/// <summary>
/// Settings of <see cref="Augmenters.Eda"/>. Rates follow the paper: the number of words changed by replacement,
/// insertion and swap is max(1, ⌊rate × words⌋); deletion removes each word with the given probability. Wei &amp; Zou
/// recommend α = 0.1 and 4 copies per sentence for small data sets (≤ 500 examples per task), 0.05 and 2 for larger.
/// </summary>
public sealed record EdaOptions
{
    /// <summary>Share of words replaced by a synonym (α_sr).</summary>
    /// <value>Default 0.1; 0 turns the operation off.</value>
    public double SynonymReplacementRate { get; init; } = 0.1;

    /// <summary>Share of words for which a synonym is inserted at a random position (α_ri).</summary>
    /// <value>Default 0.1; 0 turns the operation off.</value>
    public double RandomInsertionRate { get; init; } = 0.1;

    /// <summary>Number of swaps as a share of the words (α_rs).</summary>
    /// <value>Default 0.1; 0 turns the operation off.</value>
    public double RandomSwapRate { get; init; } = 0.1;

    /// <summary>Probability that each unprotected word is deleted (p_rd).</summary>
    /// <value>Default 0.1; 0 turns the operation off.</value>
    public double RandomDeletionProbability { get; init; } = 0.1;

    /// <summary>Augmented variants per example (n_aug); variants that came out unchanged are dropped.</summary>
    /// <value>Default 4.</value>
    public int Copies { get; init; } = 4;

    /// <summary>What must never change.</summary>
    /// <value>Default <see cref="ProtectedTerms.Default"/> (built-in patterns, no glossary).</value>
    public ProtectedTerms ProtectedTerms { get; init; } = ProtectedTerms.Default;

    /// <summary>The synonyms for replacement and insertion.</summary>
    /// <value>Default <see langword="null"/>: <see cref="SynonymTable.WordNet"/>.</value>
    public SynonymTable? Synonyms { get; init; }
}
