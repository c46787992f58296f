using System.Collections.Immutable;
using System.Text.RegularExpressions;

namespace NicheTune.Augmentation;

/// <summary>
/// What text augmentation must never change: a glossary of niche terms (single or multi-word, matched case-insensitively
/// on word boundaries, the last word also with a plural <c>-s</c>/<c>-es</c>) and regular-expression patterns (built-in: URLs, e-mail addresses, file paths, numbers, code
/// identifiers, acronyms — see <see cref="ProtectedPatterns"/>). Protected words are not replaced, deleted, swapped,
/// nor used as insertion sources; back-translation carries them through the translator as placeholders.
/// </summary>
/// <remarks>Immutable: <see cref="WithGlossary(IEnumerable{string})"/> and <see cref="WithPattern(Regex)"/> return new instances.</remarks>
public sealed class ProtectedTerms
{
    private readonly Dictionary<string, string[][]> _byFirstWord;

    private ProtectedTerms(ImmutableArray<string> glossary, ImmutableArray<Regex> patterns)
    {
        Glossary = glossary;
        Patterns = patterns;
        var byFirst = new Dictionary<string, List<string[]>>(StringComparer.OrdinalIgnoreCase);
        foreach (string term in glossary)
        {
            string[] words = term.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            (byFirst.TryGetValue(words[0], out var list) ? list : byFirst[words[0]] = []).Add(words);
        }

        // Longest terms first, so "neural network model" wins over "neural network".
        _byFirstWord = byFirst.ToDictionary(p => p.Key, p => p.Value.OrderByDescending(w => w.Length).ToArray(), StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>The built-in patterns (<see cref="ProtectedPatterns.All"/>) and an empty glossary: the default of every text augmenter.</summary>
    public static ProtectedTerms Default { get; } = new([], [ProtectedPatterns.All]);

    /// <summary>Protects nothing (every word may change).</summary>
    public static ProtectedTerms None { get; } = new([], []);

    /// <summary>The glossary terms, as given.</summary>
    public ImmutableArray<string> Glossary { get; }

    /// <summary>The patterns whose matches are protected.</summary>
    public ImmutableArray<Regex> Patterns { get; }

    /// <summary>Adds glossary terms (e.g. <c>"neural network"</c>, <c>"TCP/IP"</c>, <c>"C#"</c>): never changed, matched case-insensitively, word by word.</summary>
    /// <param name="terms">The terms; multi-word terms are split on white space.</param>
    /// <returns>A new instance with the terms added.</returns>
    /// <exception cref="ArgumentException">A term is empty or white space.</exception>
    public ProtectedTerms WithGlossary(IEnumerable<string> terms)
    {
        ArgumentNullException.ThrowIfNull(terms);
        var added = new List<string>();
        foreach (string term in terms)
        {
            if (string.IsNullOrWhiteSpace(term))
            {
                throw new ArgumentException($"Glossary term #{added.Count} is empty or white space ('{term}'); give the niche terms to protect, e.g. \"neural network\".", nameof(terms));
            }

            added.Add(term.Trim());
        }

        return new ProtectedTerms(Glossary.AddRange(added), Patterns);
    }

    /// <summary>Adds glossary terms; see <see cref="WithGlossary(IEnumerable{string})"/>.</summary>
    /// <param name="terms">The terms.</param>
    /// <returns>A new instance with the terms added.</returns>
    public ProtectedTerms WithGlossary(params string[] terms) => WithGlossary((IEnumerable<string>)terms);

    /// <summary>Adds a pattern whose matches are protected (e.g. ticket ids <c>new Regex(@"\bJIRA-\d+\b")</c>).</summary>
    /// <param name="pattern">The pattern; <see cref="RegexOptions.Compiled"/> or a <c>[GeneratedRegex]</c> keeps augmentation fast.</param>
    /// <returns>A new instance with the pattern added.</returns>
    public ProtectedTerms WithPattern(Regex pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        return new ProtectedTerms(Glossary, Patterns.Add(pattern));
    }

    /// <summary>Adds a pattern from its source text; see <see cref="WithPattern(Regex)"/>.</summary>
    /// <param name="pattern">A .NET regular expression.</param>
    /// <returns>A new instance with the pattern added.</returns>
    /// <exception cref="ArgumentException"><paramref name="pattern"/> is not a valid regular expression.</exception>
    public ProtectedTerms WithPattern(string pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        return WithPattern(new Regex(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant));
    }

    /// <summary>The protected parts of <paramref name="text"/>, as the augmenters see them (whole words; merged, in order).</summary>
    /// <param name="text">A text.</param>
    /// <returns>The protected substrings.</returns>
    public IReadOnlyList<string> Find(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var result = new List<string>();
        foreach (TextUnit unit in TextUnits.Analyze(text, this))
        {
            if (unit.Protected)
            {
                result.Add(text.Substring(unit.CoreStart, unit.CoreLength));
            }
        }

        return result;
    }

    /// <summary>
    /// The words that are distinctive of a domain: at least <paramref name="minCount"/> occurrences in
    /// <paramref name="domainTexts"/> and a relative frequency at least <paramref name="minRatio"/> times their relative
    /// frequency in <paramref name="generalTexts"/> (add-one smoothed). Pass them to <see cref="WithGlossary(IEnumerable{string})"/>
    /// so synonym replacement leaves the domain's own vocabulary alone — WordNet's synonyms for <c>bit</c> or <c>network</c>
    /// come from general-English senses.
    /// </summary>
    /// <param name="domainTexts">Texts of the niche domain (e.g. the training set).</param>
    /// <param name="generalTexts">General-language texts (e.g. WordNet glosses, news).</param>
    /// <param name="minRatio">How many times more frequent in the domain a word must be, above 1.</param>
    /// <param name="minCount">The fewest occurrences in the domain texts, at least 1.</param>
    /// <param name="maxWords">At most this many words, the most distinctive first.</param>
    /// <returns>Lower-case words of three or more letters, most distinctive first.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="minRatio"/> is not above 1, or a count is below 1.</exception>
    public static IReadOnlyList<string> DistinctiveWords(IEnumerable<string> domainTexts, IEnumerable<string> generalTexts, double minRatio = 4.0, int minCount = 5, int maxWords = 2000)
    {
        ArgumentNullException.ThrowIfNull(domainTexts);
        ArgumentNullException.ThrowIfNull(generalTexts);
        if (!(minRatio > 1))
        {
            throw new ArgumentOutOfRangeException(nameof(minRatio), minRatio, "minRatio must be above 1 (4 keeps words four times as frequent in the domain).");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(minCount, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxWords, 1);
        (Dictionary<string, int> domain, long domainTotal) = CountWords(domainTexts);
        (Dictionary<string, int> general, long generalTotal) = CountWords(generalTexts);
        return [.. domain
            .Where(p => p.Value >= minCount)
            .Select(p => (Word: p.Key, Ratio: (p.Value + 1.0) / (domainTotal + 1.0) / ((general.GetValueOrDefault(p.Key) + 1.0) / (generalTotal + 1.0))))
            .Where(p => p.Ratio >= minRatio)
            .OrderByDescending(p => p.Ratio).ThenBy(p => p.Word, StringComparer.Ordinal)
            .Take(maxWords)
            .Select(p => p.Word)];
    }

    private static (Dictionary<string, int> Counts, long Total) CountWords(IEnumerable<string> texts)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        long total = 0;
        foreach (string text in texts)
        {
            int start = -1;
            for (int i = 0; i <= text.Length; i++)
            {
                bool letter = i < text.Length && char.IsLetter(text[i]);
                if (letter && start < 0)
                {
                    start = i;
                }
                else if (!letter && start >= 0)
                {
                    if (i - start >= 3)
                    {
                        string word = text[start..i].ToLowerInvariant();
                        counts[word] = counts.GetValueOrDefault(word) + 1;
                        total++;
                    }

                    start = -1;
                }
            }
        }

        return (counts, total);
    }

    internal bool HasGlossary => _byFirstWord.Count > 0;

    internal bool TryGetTerms(string firstWord, out string[][] terms) => _byFirstWord.TryGetValue(firstWord, out terms!);
}

/// <summary>The built-in protected patterns; add your own with <see cref="ProtectedTerms.WithPattern(Regex)"/>.</summary>
public static partial class ProtectedPatterns
{
    private const string UrlSource = @"\b(?:https?|ftp)://\S+|\bwww\.\S+";
    private const string EmailSource = @"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+";
    private const string PathSource = @"(?:\b[A-Za-z]:\\|~/|\.{1,2}/|(?<![\w.])/)[\w.\-/\\]*|\b[\w.-]+(?:[/\\][\w.-]+)+";
    private const string NumberSource = @"(?<!\S)[^\s\d]*\d\S*";
    private const string IdentifierSource = @"\b\w+(?:\.\w+)*\(\)|\b[a-z]+[A-Z][A-Za-z0-9]*\b|\b[A-Z][a-z0-9]+[A-Z][A-Za-z0-9]*\b|\b\w+_\w*\b|\b\w+(?:\.\w+)+|`[^`]+`";
    private const string AcronymSource = @"\b[A-Z]{2,}s?\b";
    private const string AllSource = UrlSource + "|" + EmailSource + "|" + PathSource + "|" + NumberSource + "|" + IdentifierSource + "|" + AcronymSource;

    /// <summary>URLs: <c>http(s)://…</c>, <c>ftp://…</c>, <c>www.…</c>.</summary>
    public static Regex Urls => UrlRegex();

    /// <summary>E-mail addresses.</summary>
    public static Regex Emails => EmailRegex();

    /// <summary>File paths: <c>/usr/bin</c>, <c>./x</c>, <c>~/x</c>, <c>C:\x</c>, <c>src/main.c</c> (also catches <c>and/or</c>: protection errs on the safe side).</summary>
    public static Regex Paths => PathRegex();

    /// <summary>Any word containing a digit: <c>42</c>, <c>3.14</c>, <c>10%</c>, <c>v1.2</c>, <c>x86</c>, <c>2nd</c>.</summary>
    public static Regex Numbers => NumberRegex();

    /// <summary>Code identifiers: camelCase, PascalCase with an inner capital, snake_case, dotted names (<c>System.IO</c>, <c>e.g</c>), calls <c>f()</c>, `back-quoted` code.</summary>
    public static Regex CodeIdentifiers => IdentifierRegex();

    /// <summary>Acronyms: two or more capitals (<c>TCP</c>, <c>APIs</c>).</summary>
    public static Regex Acronyms => AcronymRegex();

    /// <summary>All the built-in patterns in one expression (one pass over the text).</summary>
    public static Regex All => AllRegex();

    [GeneratedRegex(UrlSource, RegexOptions.CultureInvariant)]
    private static partial Regex UrlRegex();

    [GeneratedRegex(EmailSource, RegexOptions.CultureInvariant)]
    private static partial Regex EmailRegex();

    [GeneratedRegex(PathSource, RegexOptions.CultureInvariant)]
    private static partial Regex PathRegex();

    [GeneratedRegex(NumberSource, RegexOptions.CultureInvariant)]
    private static partial Regex NumberRegex();

    [GeneratedRegex(IdentifierSource, RegexOptions.CultureInvariant)]
    private static partial Regex IdentifierRegex();

    [GeneratedRegex(AcronymSource, RegexOptions.CultureInvariant)]
    private static partial Regex AcronymRegex();

    [GeneratedRegex(AllSource, RegexOptions.CultureInvariant)]
    private static partial Regex AllRegex();
}
