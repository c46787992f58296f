using NicheTune.Prompting;

namespace NicheTune.Augmentation;

/// <summary>
/// Factories for the built-in augmenters and the ways to combine them:
/// <c>Augmenters.Sequence(Augmenters.SynonymReplacement(0.1).WithProbability(0.5), Augmenters.RandomSwap(0.1)).Copies(4).Filtered(new AugmentationFilter()).ForLabeled()</c>.
/// </summary>
public static class Augmenters
{
    /// <summary>The paraphrase prompt of <see cref="Paraphrase"/>; its one slot is <c>{text}</c>.</summary>
    public const string DefaultParaphrasePrompt = "Rewrite the text in other words, keeping its meaning and every technical term.\nText: {text}\nRewritten:";

    /// <summary>
    /// Replaces about <paramref name="rate"/> × (number of words) words (at least one) with a WordNet synonym of the guessed part
    /// of speech, re-inflected (plural, -s, -ed, -ing) and in the original's case. Function words, protected terms and words
    /// whose form cannot be regenerated (irregular past tenses, comparatives) are left alone. Yields one variant, or none.
    /// </summary>
    /// <param name="rate">Share of words to replace, in (0, 1].</param>
    /// <param name="protectedTerms">What must never change; <see langword="null"/> for <see cref="ProtectedTerms.Default"/>.</param>
    /// <param name="synonyms">The synonym table; <see langword="null"/> for <see cref="SynonymTable.WordNet"/>.</param>
    /// <returns>The augmenter.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="rate"/> is outside (0, 1].</exception>
    public static IAugmenter<string> SynonymReplacement(double rate = 0.1, ProtectedTerms? protectedTerms = null, SynonymTable? synonyms = null)
        => Word(WordOperation.SynonymReplacement, CheckRate(rate, nameof(rate)), protectedTerms, synonyms);

    /// <summary>EDA random insertion: inserts a synonym of a random content word at a random position, max(1, ⌊rate × words⌋) times (words re-joined with single spaces).</summary>
    /// <param name="rate">Share of words to insert, in (0, 1].</param>
    /// <param name="protectedTerms">What must never change (nor be a source of insertions).</param>
    /// <param name="synonyms">The synonym table; <see langword="null"/> for WordNet.</param>
    /// <returns>The augmenter.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="rate"/> is outside (0, 1].</exception>
    public static IAugmenter<string> RandomInsertion(double rate = 0.1, ProtectedTerms? protectedTerms = null, SynonymTable? synonyms = null)
        => Word(WordOperation.RandomInsertion, CheckRate(rate, nameof(rate)), protectedTerms, synonyms);

    /// <summary>EDA random swap: swaps two random unprotected words, max(1, ⌊rate × words⌋) times; punctuation stays in place.</summary>
    /// <param name="rate">Number of swaps as a share of the words, in (0, 1].</param>
    /// <param name="protectedTerms">Protected words never move.</param>
    /// <returns>The augmenter.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="rate"/> is outside (0, 1].</exception>
    public static IAugmenter<string> RandomSwap(double rate = 0.1, ProtectedTerms? protectedTerms = null)
        => Word(WordOperation.RandomSwap, CheckRate(rate, nameof(rate)), protectedTerms, SynonymTable.Create([]));

    /// <summary>EDA random deletion: deletes each unprotected word with probability <paramref name="probability"/>, always keeping one word.</summary>
    /// <param name="probability">Deletion probability per word, in (0, 1].</param>
    /// <param name="protectedTerms">Protected words are never deleted.</param>
    /// <returns>The augmenter.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="probability"/> is outside (0, 1].</exception>
    public static IAugmenter<string> RandomDeletion(double probability = 0.1, ProtectedTerms? protectedTerms = null)
        => Word(WordOperation.RandomDeletion, CheckRate(probability, nameof(probability)), protectedTerms, SynonymTable.Create([]));

    /// <summary>EDA (Wei &amp; Zou 2019): <see cref="EdaOptions.Copies"/> variants per example, each from one of the four operations drawn at random.</summary>
    /// <param name="options">Rates, copies, protected terms; <see langword="null"/> for the paper's defaults.</param>
    /// <returns>The augmenter.</returns>
    /// <exception cref="ArgumentException">A rate is outside [0, 1], every rate is 0, or <see cref="EdaOptions.Copies"/> is below 1.</exception>
    public static IAugmenter<string> Eda(EdaOptions? options = null)
    {
        options ??= new EdaOptions();
        var problems = new List<string>();
        foreach ((string name, double value) in new[]
        {
            (nameof(EdaOptions.SynonymReplacementRate), options.SynonymReplacementRate),
            (nameof(EdaOptions.RandomInsertionRate), options.RandomInsertionRate),
            (nameof(EdaOptions.RandomSwapRate), options.RandomSwapRate),
            (nameof(EdaOptions.RandomDeletionProbability), options.RandomDeletionProbability),
        })
        {
            if (!(value >= 0 && value <= 1))
            {
                problems.Add($"{name} is {value}; use a value in [0, 1] (0 turns the operation off, 0.1 is the paper's default)");
            }
        }

        if (options.SynonymReplacementRate + options.RandomInsertionRate + options.RandomSwapRate + options.RandomDeletionProbability <= 0)
        {
            problems.Add("every operation's rate is 0; turn at least one on");
        }

        if (options.Copies < 1)
        {
            problems.Add($"Copies is {options.Copies}; use at least 1 (the paper uses 4 for small data sets)");
        }

        if (problems.Count > 0)
        {
            throw new ArgumentException("Invalid EDA options: " + string.Join("; ", problems) + ".", nameof(options));
        }

        ArgumentNullException.ThrowIfNull(options.ProtectedTerms, nameof(options));
        return new EdaAugmenter(options, new Lexicon(options.Synonyms ?? SynonymTable.WordNet));
    }

    /// <summary>
    /// Paraphrases through a text generator: renders <paramref name="prompt"/> (slot <c>{text}</c>) and keeps the first line of each
    /// of <paramref name="count"/> answers; answers that lost a protected term (glossary or pattern match) are dropped.
    /// </summary>
    /// <param name="generator">The generator, e.g. a causal LM behind <see cref="TextGenerators.FromDelegate(Func{string, int, string})"/>.</param>
    /// <param name="count">Answers to ask for per example, at least 1.</param>
    /// <param name="prompt">The prompt, with the slot <c>{text}</c>; <see langword="null"/> for <see cref="DefaultParaphrasePrompt"/>.</param>
    /// <param name="protectedTerms">Terms every paraphrase must keep; <see langword="null"/> for <see cref="ProtectedTerms.Default"/>.</param>
    /// <returns>The augmenter.</returns>
    /// <exception cref="ArgumentException"><paramref name="prompt"/> does not have exactly the slot <c>{text}</c>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is below 1.</exception>
    public static IAugmenter<string> Paraphrase(ITextGenerator generator, int count = 1, PromptTemplate? prompt = null, ProtectedTerms? protectedTerms = null)
    {
        ArgumentNullException.ThrowIfNull(generator);
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        prompt ??= new PromptTemplate(DefaultParaphrasePrompt);
        if (prompt.Slots.Length != 1 || prompt.Slots[0] != "text")
        {
            throw new ArgumentException($"The paraphrase prompt must have exactly one slot, {{text}}; it has {(prompt.Slots.Length == 0 ? "none" : string.Join(", ", prompt.Slots))}.", nameof(prompt));
        }

        return new ParaphraseAugmenter(generator, prompt, count, protectedTerms ?? ProtectedTerms.Default);
    }

    /// <summary>Back-translation: one variant per pivot language (source → pivot → source), protected terms carried through as placeholders.</summary>
    /// <param name="translator">The translator.</param>
    /// <param name="language">The examples' language, e.g. <c>en</c>.</param>
    /// <param name="pivots">Pivot languages, e.g. <c>["de", "fr"]</c>.</param>
    /// <param name="protectedTerms">What must come back verbatim; <see langword="null"/> for <see cref="ProtectedTerms.Default"/>.</param>
    /// <returns>The augmenter.</returns>
    /// <exception cref="ArgumentException"><paramref name="pivots"/> is empty, or a language is empty or equals <paramref name="language"/>.</exception>
    public static IAugmenter<string> BackTranslation(ITranslator translator, string language, IEnumerable<string> pivots, ProtectedTerms? protectedTerms = null)
    {
        ArgumentNullException.ThrowIfNull(translator);
        ArgumentException.ThrowIfNullOrWhiteSpace(language);
        ArgumentNullException.ThrowIfNull(pivots);
        string[] list = [.. pivots];
        if (list.Length == 0 || list.Any(p => string.IsNullOrWhiteSpace(p) || p == language))
        {
            throw new ArgumentException($"Back-translation needs one or more pivot languages other than '{language}'; got [{string.Join(", ", list)}].", nameof(pivots));
        }

        return new BackTranslationAugmenter(translator, language, list, protectedTerms ?? ProtectedTerms.Default);
    }

    /// <summary>Applies <paramref name="steps"/> one after another to the same example (each step's first variant feeds the next; a step with no variant passes the example on) and yields the result if any step changed it.</summary>
    /// <typeparam name="T">The example type.</typeparam>
    /// <param name="steps">The steps, in order.</param>
    /// <returns>The composed augmenter.</returns>
    /// <exception cref="ArgumentException"><paramref name="steps"/> is empty or holds <see langword="null"/>.</exception>
    public static IAugmenter<T> Sequence<T>(params IAugmenter<T>[] steps) => new SequenceAugmenter<T>(CheckAll(steps, nameof(steps)));

    /// <summary>Applies one of <paramref name="choices"/>, drawn uniformly at random per call.</summary>
    /// <typeparam name="T">The example type.</typeparam>
    /// <param name="choices">The candidates.</param>
    /// <returns>The augmenter.</returns>
    /// <exception cref="ArgumentException"><paramref name="choices"/> is empty or holds <see langword="null"/>.</exception>
    public static IAugmenter<T> OneOf<T>(params IAugmenter<T>[] choices)
    {
        IAugmenter<T>[] list = CheckAll(choices, nameof(choices));
        return new OneOfAugmenter<T>(list, [.. Enumerable.Range(1, list.Length).Select(i => (double)i)]);
    }

    /// <summary>Applies one of the augmenters, drawn with probability proportional to its weight.</summary>
    /// <typeparam name="T">The example type.</typeparam>
    /// <param name="choices">Augmenters and positive weights.</param>
    /// <returns>The augmenter.</returns>
    /// <exception cref="ArgumentException">No choice, a <see langword="null"/> augmenter, or a weight that is not positive and finite.</exception>
    public static IAugmenter<T> OneOf<T>(params (IAugmenter<T> Augmenter, double Weight)[] choices)
    {
        ArgumentNullException.ThrowIfNull(choices);
        IAugmenter<T>[] list = CheckAll([.. choices.Select(c => c.Augmenter)], nameof(choices));
        var cumulative = new double[list.Length];
        double total = 0;
        for (int i = 0; i < choices.Length; i++)
        {
            double weight = choices[i].Weight;
            if (!(weight > 0 && double.IsFinite(weight)))
            {
                throw new ArgumentException($"Choice {i} has weight {weight}; weights must be positive and finite.", nameof(choices));
            }

            cumulative[i] = total += weight;
        }

        return new OneOfAugmenter<T>(list, cumulative);
    }

    /// <summary>Runs <paramref name="augmenter"/> with probability <paramref name="probability"/> per call, and otherwise yields nothing (inside <see cref="Sequence{T}"/>: passes the example on unchanged).</summary>
    /// <typeparam name="T">The example type.</typeparam>
    /// <param name="augmenter">The augmenter.</param>
    /// <param name="probability">In [0, 1].</param>
    /// <returns>The augmenter.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="probability"/> is outside [0, 1].</exception>
    public static IAugmenter<T> WithProbability<T>(this IAugmenter<T> augmenter, double probability)
    {
        ArgumentNullException.ThrowIfNull(augmenter);
        if (!(probability >= 0 && probability <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(probability), probability, "The probability of applying an augmenter must be in [0, 1].");
        }

        return new ProbabilityAugmenter<T>(augmenter, probability);
    }

    /// <summary>Calls <paramref name="augmenter"/> <paramref name="copies"/> times per example and yields every variant: <c>n</c> augmented copies.</summary>
    /// <typeparam name="T">The example type.</typeparam>
    /// <param name="augmenter">The augmenter.</param>
    /// <param name="copies">At least 1.</param>
    /// <returns>The augmenter.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="copies"/> is below 1.</exception>
    public static IAugmenter<T> Copies<T>(this IAugmenter<T> augmenter, int copies)
    {
        ArgumentNullException.ThrowIfNull(augmenter);
        ArgumentOutOfRangeException.ThrowIfLessThan(copies, 1);
        return new CopiesAugmenter<T>(augmenter, copies);
    }

    /// <summary>Keeps only the variants <paramref name="filter"/> accepts (and each distinct variant once).</summary>
    /// <typeparam name="T">The example type.</typeparam>
    /// <param name="augmenter">The augmenter.</param>
    /// <param name="filter">The filter.</param>
    /// <param name="text">The text of an example.</param>
    /// <returns>The filtered augmenter.</returns>
    /// <exception cref="ArgumentException">The filter's settings are inconsistent.</exception>
    public static IAugmenter<T> Filtered<T>(this IAugmenter<T> augmenter, AugmentationFilter filter, Func<T, string> text)
    {
        ArgumentNullException.ThrowIfNull(augmenter);
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentNullException.ThrowIfNull(text);
        filter.Validate();
        return new FilteredAugmenter<T>(augmenter, filter, text);
    }

    /// <summary>Keeps only the variants <paramref name="filter"/> accepts; see <see cref="Filtered{T}(IAugmenter{T}, AugmentationFilter, Func{T, string})"/>.</summary>
    /// <param name="augmenter">The text augmenter.</param>
    /// <param name="filter">The filter; <see langword="null"/> for the defaults.</param>
    /// <returns>The filtered augmenter.</returns>
    public static IAugmenter<string> Filtered(this IAugmenter<string> augmenter, AugmentationFilter? filter = null)
        => augmenter.Filtered(filter ?? new AugmentationFilter(), static s => s);

    /// <summary>Lifts a text augmenter to labelled examples: the text changes, the label is kept.</summary>
    /// <param name="augmenter">The text augmenter.</param>
    /// <returns>The augmenter of <see cref="LabeledText"/>.</returns>
    public static IAugmenter<LabeledText> ForLabeled(this IAugmenter<string> augmenter)
        => augmenter.OnText<LabeledText>(static e => e.Text, static (e, text) => e with { Text = text });

    /// <summary>Lifts a text augmenter to any example type that carries a text: <c>aug.OnText&lt;Ticket&gt;(t =&gt; t.Body, (t, body) =&gt; t with { Body = body })</c>.</summary>
    /// <typeparam name="T">The example type.</typeparam>
    /// <param name="augmenter">The text augmenter.</param>
    /// <param name="getText">Reads the text.</param>
    /// <param name="withText">Copies the example with a new text (every other field, the label included, unchanged).</param>
    /// <returns>The augmenter.</returns>
    public static IAugmenter<T> OnText<T>(this IAugmenter<string> augmenter, Func<T, string> getText, Func<T, string, T> withText)
    {
        ArgumentNullException.ThrowIfNull(augmenter);
        ArgumentNullException.ThrowIfNull(getText);
        ArgumentNullException.ThrowIfNull(withText);
        return new ProjectedAugmenter<T>(augmenter, getText, withText);
    }

    /// <summary>
    /// Augments a data set: every example (when <paramref name="keepOriginals"/>) followed by its variants. Example i draws from
    /// a random source seeded by (<paramref name="seed"/>, i), so the result depends only on the seed and the data.
    /// </summary>
    /// <typeparam name="T">The example type.</typeparam>
    /// <param name="examples">The data.</param>
    /// <param name="augmenter">The augmenter.</param>
    /// <param name="seed">The seed.</param>
    /// <param name="keepOriginals">Whether the originals are part of the result.</param>
    /// <returns>A new list.</returns>
    public static List<T> AugmentAll<T>(this IEnumerable<T> examples, IAugmenter<T> augmenter, int seed, bool keepOriginals = true)
    {
        ArgumentNullException.ThrowIfNull(examples);
        ArgumentNullException.ThrowIfNull(augmenter);
        var result = new List<T>();
        int index = 0;
        foreach (T example in examples)
        {
            if (keepOriginals)
            {
                result.Add(example);
            }

            result.AddRange(augmenter.Augment(example, new Random(unchecked((seed * 1_000_003) ^ index))));
            index++;
        }

        return result;
    }

    /// <summary>
    /// Augments only where classes are short of examples: each class is topped up towards the size of the largest class,
    /// at most <paramref name="maxCopies"/> augmenter calls per original, and the largest class gets none. Use it when the metric
    /// weighs classes equally (macro-F1) and the data is imbalanced: uniform copies keep the imbalance and add as many near-duplicates
    /// of the large classes as of the small ones. A class of n examples short of the largest class's N gets
    /// min(N − n, <paramref name="maxCopies"/> × n) calls, spread evenly over its examples (which of them get one call more is
    /// drawn with the seed). Every original is kept and followed by its variants; example i draws from a random source seeded by
    /// (<paramref name="seed"/>, i), as in <see cref="AugmentAll{T}"/>. Use an augmenter that yields one variant per call
    /// (for EDA, <see cref="EdaOptions.Copies"/> = 1); an augmenter that yields none for an example leaves its class short.
    /// </summary>
    /// <typeparam name="T">The example type.</typeparam>
    /// <param name="examples">The data.</param>
    /// <param name="augmenter">The augmenter, called once per wanted variant.</param>
    /// <param name="label">The class of an example.</param>
    /// <param name="seed">The seed.</param>
    /// <param name="maxCopies">The most augmenter calls per original, at least 1.</param>
    /// <returns>A new list: the originals, each followed by its variants.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxCopies"/> is below 1.</exception>
    public static List<T> AugmentBalanced<T>(this IEnumerable<T> examples, IAugmenter<T> augmenter, Func<T, string> label, int seed, int maxCopies = 4)
    {
        ArgumentNullException.ThrowIfNull(examples);
        ArgumentNullException.ThrowIfNull(augmenter);
        ArgumentNullException.ThrowIfNull(label);
        if (maxCopies < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(maxCopies), maxCopies, "Allow at least 1 augmented copy per example (4 is EDA's usual number).");
        }

        T[] data = [.. examples];
        string[] labels = [.. data.Select(label)];
        var calls = new int[data.Length];
        var members = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        for (int i = 0; i < data.Length; i++)
        {
            if (!members.TryGetValue(labels[i], out List<int>? list))
            {
                members[labels[i]] = list = [];
            }

            list.Add(i);
        }

        int largest = members.Count == 0 ? 0 : members.Values.Max(m => m.Count);
        var order = new Random(seed);
        foreach (List<int> group in members.Values.OrderBy(g => labels[g[0]], StringComparer.Ordinal))
        {
            int wanted = Math.Min(largest - group.Count, maxCopies * group.Count);
            int[] shuffled = [.. group];
            order.Shuffle(shuffled);
            for (int j = 0; j < shuffled.Length; j++)
            {
                calls[shuffled[j]] = (wanted / group.Count) + (j < wanted % group.Count ? 1 : 0);
            }
        }

        var result = new List<T>(data.Length + calls.Sum());
        for (int i = 0; i < data.Length; i++)
        {
            result.Add(data[i]);
            if (calls[i] == 0)
            {
                continue;
            }

            var random = new Random(unchecked((seed * 1_000_003) ^ i));
            for (int c = 0; c < calls[i]; c++)
            {
                result.AddRange(augmenter.Augment(data[i], random));
            }
        }

        return result;
    }

    /// <summary>
    /// <see cref="AugmentBalanced{T}(IEnumerable{T}, IAugmenter{T}, Func{T, string}, int, int)"/> for labelled texts: tops every
    /// label up towards the largest one with at most <paramref name="maxCopies"/> variants per original.
    /// </summary>
    /// <param name="examples">The labelled texts.</param>
    /// <param name="augmenter">The augmenter, called once per wanted variant (e.g. EDA with one copy).</param>
    /// <param name="seed">The seed.</param>
    /// <param name="maxCopies">The most augmenter calls per original, at least 1.</param>
    /// <returns>A new list: the originals, each followed by its variants.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxCopies"/> is below 1.</exception>
    public static List<LabeledText> AugmentBalanced(this IEnumerable<LabeledText> examples, IAugmenter<LabeledText> augmenter, int seed, int maxCopies = 4)
        => examples.AugmentBalanced(augmenter, static e => e.Label, seed, maxCopies);

    private static IAugmenter<string> Word(WordOperation operation, double rate, ProtectedTerms? protectedTerms, SynonymTable? synonyms)
        => new WordOperationAugmenter(operation, rate, protectedTerms ?? ProtectedTerms.Default, new Lexicon(synonyms ?? SynonymTable.WordNet));

    private static double CheckRate(double rate, string name)
    {
        if (!(rate > 0 && rate <= 1))
        {
            throw new ArgumentOutOfRangeException(name, rate, "The rate must be in (0, 1]; 0.1 is EDA's default.");
        }

        return rate;
    }

    private static IAugmenter<T>[] CheckAll<T>(IAugmenter<T>[] augmenters, string name)
    {
        ArgumentNullException.ThrowIfNull(augmenters, name);
        if (augmenters.Length == 0)
        {
            throw new ArgumentException("Give at least one augmenter.", name);
        }

        for (int i = 0; i < augmenters.Length; i++)
        {
            if (augmenters[i] is null)
            {
                throw new ArgumentException($"Augmenter {i} is null.", name);
            }
        }

        return [.. augmenters];
    }
}
