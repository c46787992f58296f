using System.IO.Compression;
using System.Reflection;

namespace NicheTune.Augmentation;

/// <summary>
/// Synonyms by lemma and part of speech, with the irregular inflections needed to find a word's lemma. The built-in
/// <see cref="WordNet"/> table is derived from Princeton WordNet 3.0 by <c>eng/extract-synonyms.sh</c> and ships
/// inside the assembly (about 0.6 MB compressed; licence in <c>Augmentation/Resources/wordnet.COPYRIGHT</c>); build your
/// own with <see cref="Create"/> for a domain vocabulary, or <see cref="Parse"/> for a table in the same text format.
/// </summary>
/// <remarks>
/// The text format, one lemma a line: <c>lemma&lt;TAB&gt;p:syn,syn&lt;TAB&gt;p:…</c> with <c>p</c> one of <c>n v a r</c>,
/// parts of speech in order of frequency (the first is the reading chosen when nothing else decides); and irregular
/// forms as <c>!p&lt;TAB&gt;inflected&lt;TAB&gt;lemma</c>. Lemmas and synonyms are lower-case single words.
/// </remarks>
public sealed class SynonymTable
{
    private const string ResourceName = "NicheTune.Augmentation.wordnet-synonyms.txt.gz";
    private static readonly Lazy<SynonymTable> BuiltIn = new(LoadBuiltIn, LazyThreadSafetyMode.ExecutionAndPublication);

    private readonly Dictionary<string, Entry> _entries;
    private readonly Dictionary<string, (PartOfSpeech Pos, string Lemma)[]> _exceptions;
    private readonly Dictionary<string, string> _irregularPlurals;
    private readonly HashSet<string> _irregularVerbs;

    private SynonymTable(Dictionary<string, Entry> entries, Dictionary<string, (PartOfSpeech, string)[]> exceptions)
    {
        _entries = entries;
        _exceptions = exceptions;
        _irregularPlurals = new Dictionary<string, string>(StringComparer.Ordinal);
        _irregularVerbs = new HashSet<string>(StringComparer.Ordinal);
        foreach ((string inflected, (PartOfSpeech Pos, string Lemma)[] bases) in exceptions)
        {
            foreach ((PartOfSpeech pos, string lemma) in bases)
            {
                if (pos == PartOfSpeech.Noun)
                {
                    _irregularPlurals.TryAdd(lemma, inflected);
                }
                else if (pos == PartOfSpeech.Verb)
                {
                    _irregularVerbs.Add(lemma);
                }
            }
        }
    }

    /// <summary>The built-in table from WordNet 3.0: 44,520 single-word lemmas, synonyms from each lemma's three most frequent senses (at most eight per part of speech).</summary>
    /// <value>Loaded once, on first use (about 50 ms), and shared; the table is immutable and thread-safe.</value>
    public static SynonymTable WordNet => BuiltIn.Value;

    /// <summary>The number of lemmas in the table.</summary>
    public int Count => _entries.Count;

    /// <summary>Builds a table from your own entries, e.g. domain synonyms (<c>("bug", Noun, ["defect", "fault"])</c>).</summary>
    /// <param name="entries">Lemma, part of speech and synonyms; several entries for one lemma and part of speech are merged, in order.</param>
    /// <param name="irregularForms">Optional irregular forms: inflected word, part of speech, lemma (<c>("mice", Noun, "mouse")</c>).</param>
    /// <returns>The table.</returns>
    /// <exception cref="ArgumentException">A lemma or synonym is empty or contains white space.</exception>
    public static SynonymTable Create(
        IEnumerable<(string Lemma, PartOfSpeech Pos, IReadOnlyList<string> Synonyms)> entries,
        IEnumerable<(string Inflected, PartOfSpeech Pos, string Lemma)>? irregularForms = null)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var builder = new Dictionary<string, List<(PartOfSpeech Pos, List<string> Synonyms)>>(StringComparer.Ordinal);
        foreach ((string lemma, PartOfSpeech pos, IReadOnlyList<string> synonyms) in entries)
        {
            string key = CheckWord(lemma, nameof(entries));
            List<(PartOfSpeech Pos, List<string> Synonyms)> list = builder.TryGetValue(key, out var found) ? found : builder[key] = [];
            int at = list.FindIndex(e => e.Pos == pos);
            if (at < 0)
            {
                list.Add((pos, []));
                at = list.Count - 1;
            }

            foreach (string synonym in synonyms ?? [])
            {
                string word = CheckWord(synonym, nameof(entries));
                if (word != key && !list[at].Synonyms.Contains(word))
                {
                    list[at].Synonyms.Add(word);
                }
            }
        }

        var table = new Dictionary<string, Entry>(builder.Count, StringComparer.Ordinal);
        foreach ((string lemma, var list) in builder)
        {
            table[lemma] = new Entry([.. list.Select(e => e.Pos)], [.. list.Select(e => e.Synonyms.ToArray())]);
        }

        var exceptions = new Dictionary<string, List<(PartOfSpeech, string)>>(StringComparer.Ordinal);
        foreach ((string inflected, PartOfSpeech pos, string lemma) in irregularForms ?? [])
        {
            string key = CheckWord(inflected, nameof(irregularForms));
            (exceptions.TryGetValue(key, out var list) ? list : exceptions[key] = []).Add((pos, CheckWord(lemma, nameof(irregularForms))));
        }

        return new SynonymTable(table, exceptions.ToDictionary(p => p.Key, p => p.Value.ToArray(), StringComparer.Ordinal));
    }

    /// <summary>Reads a table in the text format described in the remarks (what <c>eng/extract-synonyms.sh</c> writes, uncompressed).</summary>
    /// <param name="reader">The text.</param>
    /// <returns>The table.</returns>
    /// <exception cref="FormatException">A line does not follow the format; the message gives its number.</exception>
    public static SynonymTable Parse(TextReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var entries = new Dictionary<string, Entry>(50_000, StringComparer.Ordinal);
        var exceptions = new Dictionary<string, List<(PartOfSpeech, string)>>(StringComparer.Ordinal);
        var interned = new Dictionary<string, string>(StringComparer.Ordinal);
        int number = 0;
        while (reader.ReadLine() is { } line)
        {
            number++;
            if (line.Length == 0)
            {
                continue;
            }

            string[] fields = line.Split('\t');
            if (line[0] == '!')
            {
                if (fields.Length != 3 || fields[0].Length != 2)
                {
                    throw new FormatException($"Synonym table line {number}: an irregular form needs '!p<TAB>inflected<TAB>lemma', got '{line}'.");
                }

                PartOfSpeech pos = ParsePos(fields[0][1], number);
                (exceptions.TryGetValue(fields[1], out var list) ? list : exceptions[fields[1]] = []).Add((pos, Intern(fields[2])));
                continue;
            }

            if (fields.Length < 2)
            {
                throw new FormatException($"Synonym table line {number}: expected 'lemma<TAB>p:synonyms…', got '{line}'.");
            }

            var parts = new PartOfSpeech[fields.Length - 1];
            var synonyms = new string[fields.Length - 1][];
            for (int i = 1; i < fields.Length; i++)
            {
                string field = fields[i];
                if (field.Length < 2 || field[1] != ':')
                {
                    throw new FormatException($"Synonym table line {number}: field '{field}' must look like 'n:word,word'.");
                }

                parts[i - 1] = ParsePos(field[0], number);
                synonyms[i - 1] = field.Length == 2 ? [] : field[2..].Split(',').Select(Intern).ToArray();
            }

            entries[Intern(fields[0])] = new Entry(parts, synonyms);
        }

        return new SynonymTable(entries, exceptions.ToDictionary(p => p.Key, p => p.Value.ToArray(), StringComparer.Ordinal));

        string Intern(string word) => interned.TryGetValue(word, out string? known) ? known : interned[word] = word;
    }

    /// <summary>The synonyms of <paramref name="lemma"/> in part of speech <paramref name="pos"/>, most frequent senses first.</summary>
    /// <param name="lemma">A lower-case lemma (base form).</param>
    /// <param name="pos">The part of speech.</param>
    /// <returns>The synonyms; empty when there are none.</returns>
    public IReadOnlyList<string> Synonyms(string lemma, PartOfSpeech pos)
    {
        ArgumentNullException.ThrowIfNull(lemma);
        return Find(lemma, pos);
    }

    /// <summary>The parts of speech <paramref name="lemma"/> has in the table, most frequent first.</summary>
    /// <param name="lemma">A lower-case lemma.</param>
    /// <returns>The parts of speech; empty for an unknown word.</returns>
    public IReadOnlyList<PartOfSpeech> PartsOfSpeech(string lemma)
    {
        ArgumentNullException.ThrowIfNull(lemma);
        return _entries.TryGetValue(lemma, out Entry? entry) ? entry.Parts : [];
    }

    internal bool TryGetEntry(string lemma, out Entry entry) => _entries.TryGetValue(lemma, out entry!);

    internal bool TryGetIrregular(string inflected, out (PartOfSpeech Pos, string Lemma)[] bases) => _exceptions.TryGetValue(inflected, out bases!);

    internal bool TryGetIrregularPlural(string lemma, out string plural) => _irregularPlurals.TryGetValue(lemma, out plural!);

    internal bool IsIrregularVerb(string lemma) => _irregularVerbs.Contains(lemma);

    internal string[] Find(string lemma, PartOfSpeech pos)
    {
        if (_entries.TryGetValue(lemma, out Entry? entry))
        {
            for (int i = 0; i < entry.Parts.Length; i++)
            {
                if (entry.Parts[i] == pos)
                {
                    return entry.Synonyms[i];
                }
            }
        }

        return [];
    }

    private static SynonymTable LoadBuiltIn()
    {
        using Stream stream = typeof(SynonymTable).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"The embedded synonym table '{ResourceName}' is missing from {typeof(SynonymTable).Assembly.GetName().Name}; rebuild the library (eng/extract-synonyms.sh regenerates the file).");
        using var gzip = new GZipStream(stream, CompressionMode.Decompress);
        using var reader = new StreamReader(gzip);
        return Parse(reader);
    }

    private static PartOfSpeech ParsePos(char code, int line) => code switch
    {
        'n' => PartOfSpeech.Noun,
        'v' => PartOfSpeech.Verb,
        'a' or 's' => PartOfSpeech.Adjective,
        'r' => PartOfSpeech.Adverb,
        _ => throw new FormatException($"Synonym table line {line}: unknown part of speech '{code}'; use n, v, a or r."),
    };

    private static string CheckWord(string word, string parameter)
    {
        if (string.IsNullOrWhiteSpace(word) || word.Any(char.IsWhiteSpace))
        {
            throw new ArgumentException($"Synonym table words must be single non-empty words; got '{word}'. Multi-word terms belong in a ProtectedTerms glossary.", parameter);
        }

        return word.ToLowerInvariant();
    }

    internal sealed record Entry(PartOfSpeech[] Parts, string[][] Synonyms);
}
