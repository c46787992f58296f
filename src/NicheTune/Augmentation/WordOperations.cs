using System.Text;

namespace NicheTune.Augmentation;

/// <summary>
/// The word-level operations of EDA (Wei &amp; Zou 2019, "EDA: Easy Data Augmentation Techniques for Boosting Performance
/// on Text Classification"): synonym replacement, random insertion, random swap, random deletion. They work on the
/// white-space chunks of <see cref="TextUnits"/>, never touch protected units, and return <see langword="null"/> when
/// nothing changed.
/// </summary>
internal static class WordOperations
{
    // Function words: never replaced, nor used as insertion sources (EDA does the same with its stop-word list).
    private static readonly HashSet<string> StopWords = new(StringComparer.Ordinal)
    {
        "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be",
        "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does",
        "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her",
        "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself",
        "just", "may", "me", "might", "more", "most", "must", "my", "myself", "no", "nor", "not", "now", "of", "off", "on",
        "once", "one", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same", "shall", "she",
        "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there",
        "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were",
        "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours",
        "yourself", "yourselves", "also", "e", "g", "ie", "eg", "etc", "s", "t", "use", "used", "using",
    };

    public static int CountForRate(int words, double rate) => Math.Max(1, (int)(rate * words));

    public static string? ReplaceSynonyms(string text, List<TextUnit> units, Lexicon lexicon, double rate, Random random)
    {
        List<(int Unit, Reading Reading, string[] Synonyms)> candidates = Candidates(text, units, lexicon);
        if (candidates.Count == 0)
        {
            return null;
        }

        int wanted = CountForRate(units.Count, rate);
        var replacements = new string?[units.Count];
        int replaced = 0;
        for (int c = 0; c < candidates.Count && replaced < wanted; c++)
        {
            // Partial Fisher–Yates: candidate c is a uniform draw from those not yet tried.
            int pick = c + random.Next(candidates.Count - c);
            (candidates[c], candidates[pick]) = (candidates[pick], candidates[c]);
            (int unit, Reading reading, string[] synonyms) = candidates[c];
            string? word = PickInflected(lexicon, reading, synonyms, random);
            if (word is not null)
            {
                replacements[unit] = MatchCase(word, text, units[unit].CoreStart, units[unit].CoreLength);
                replaced++;
            }
        }

        if (replaced == 0)
        {
            return null;
        }

        FixArticles(text, units, replacements);
        return Rebuild(text, units, replacements);
    }

    public static string? InsertSynonyms(string text, List<TextUnit> units, Lexicon lexicon, double rate, Random random)
    {
        List<(int Unit, Reading Reading, string[] Synonyms)> candidates = Candidates(text, units, lexicon);
        if (candidates.Count == 0)
        {
            return null;
        }

        var pieces = new List<string>(units.Count + 4);
        foreach (TextUnit unit in units)
        {
            pieces.Add(text.Substring(unit.Start, unit.Length));
        }

        int wanted = CountForRate(units.Count, rate);
        int inserted = 0;
        for (int attempt = 0; attempt < wanted * 4 && inserted < wanted; attempt++)
        {
            (_, Reading reading, string[] synonyms) = candidates[random.Next(candidates.Count)];
            string? word = PickInflected(lexicon, reading, synonyms, random);
            if (word is not null)
            {
                pieces.Insert(random.Next(pieces.Count + 1), word);
                inserted++;
            }
        }

        return inserted == 0 ? null : string.Join(' ', pieces);
    }

    public static string? Swap(string text, List<TextUnit> units, double rate, Random random)
    {
        var movable = new List<int>(units.Count);
        for (int u = 0; u < units.Count; u++)
        {
            if (!units[u].Protected && units[u].CoreLength > 0)
            {
                movable.Add(u);
            }
        }

        if (movable.Count < 2)
        {
            return null;
        }

        // Cores move; the punctuation around them stays in place ("Hello, world." → "World, hello.").
        var cores = new string?[units.Count];
        foreach (int u in movable)
        {
            cores[u] = text.Substring(units[u].CoreStart, units[u].CoreLength);
        }

        int swaps = CountForRate(units.Count, rate);
        for (int s = 0; s < swaps; s++)
        {
            int first = random.Next(movable.Count);
            int second = random.Next(movable.Count - 1);
            second += second >= first ? 1 : 0;
            int a = movable[first];
            int b = movable[second];
            (cores[a], cores[b]) = (cores[b], cores[a]);
        }

        string result = Rebuild(text, units, cores);
        return result == text ? null : result;
    }

    public static string? Delete(string text, List<TextUnit> units, double probability, Random random)
    {
        var keep = new bool[units.Count];
        int deletable = 0;
        int kept = 0;
        for (int u = 0; u < units.Count; u++)
        {
            bool canDelete = !units[u].Protected && units[u].CoreLength > 0;
            deletable += canDelete ? 1 : 0;
            keep[u] = !canDelete || random.NextDouble() >= probability;
            kept += keep[u] ? 1 : 0;
        }

        if (deletable == 0 || kept == units.Count)
        {
            return null;
        }

        if (kept == 0)
        {
            keep[random.Next(units.Count)] = true;
        }

        var builder = new StringBuilder(text.Length);
        for (int u = 0; u < units.Count; u++)
        {
            TextUnit unit = units[u];
            if (keep[u])
            {
                if (builder.Length > 0)
                {
                    builder.Append(' ');
                }

                builder.Append(text, unit.Start, unit.Length);
            }
            else if (builder.Length > 0 && unit.CoreEnd < unit.End)
            {
                // A deleted sentence-final word leaves its full stop behind.
                builder.Append(text, unit.CoreEnd, unit.End - unit.CoreEnd);
            }
        }

        return builder.ToString();
    }

    private static List<(int Unit, Reading Reading, string[] Synonyms)> Candidates(string text, List<TextUnit> units, Lexicon lexicon)
    {
        var candidates = new List<(int, Reading, string[])>();
        Reading? previousReading = null;
        for (int u = 0; u < units.Count; u++)
        {
            TextUnit unit = units[u];
            Reading? before = previousReading;
            previousReading = null;
            // One- and two-letter words are abbreviations more often than words ("ca", "o" are calcium and oxygen in WordNet).
            if (unit.Lower is not { Length: >= 3 } word || StopWords.Contains(word) || IsProperNoun(text, units, u))
            {
                continue;
            }

            bool attached = u > 0 && units[u - 1].CoreEnd == units[u - 1].End;
            string? previous = attached ? units[u - 1].Lower : null;
            bool contentFollows = unit.CoreEnd == unit.End && u + 1 < units.Count && units[u + 1].Lower is { } next && !StopWords.Contains(next);
            if (lexicon.TryRead(word, previous, attached ? before : null, contentFollows, out Reading reading))
            {
                previousReading = reading;
            }

            if (previousReading is not null && reading.Inflection != Inflection.Unsupported)
            {
                string[] synonyms = lexicon.Table.Find(reading.Lemma, reading.Pos);
                if (synonyms.Length > 0)
                {
                    candidates.Add((u, reading, synonyms));
                }
            }
        }

        return candidates;
    }

    // A capitalised word inside a sentence is a name ("Graffiti", "Berkeley Standard Distribution"): leave it alone.
    private static bool IsProperNoun(string text, List<TextUnit> units, int u)
    {
        TextUnit unit = units[u];
        if (u == 0 || !char.IsUpper(text[unit.CoreStart]) || (unit.CoreLength > 1 && char.IsUpper(text[unit.CoreEnd - 1])))
        {
            return false;
        }

        char before = text[units[u - 1].End - 1];
        return before is not ('.' or '!' or '?' or ':');
    }

    // "a adaptation" → "an adaptation": an article before a replaced word follows the new word's first letter.
    private static void FixArticles(string text, List<TextUnit> units, string?[] replacements)
    {
        for (int u = 1; u < units.Count; u++)
        {
            TextUnit article = units[u - 1];
            if (replacements[u] is not { } word || replacements[u - 1] is not null || article.Lower is not ("a" or "an") || article.CoreEnd != article.End)
            {
                continue;
            }

            string wanted = char.ToLowerInvariant(word[0]) is 'a' or 'e' or 'i' or 'o' or 'u' ? "an" : "a";
            if (wanted != article.Lower)
            {
                replacements[u - 1] = MatchCase(wanted, text, article.CoreStart, article.CoreLength);
            }
        }
    }

    private static string? PickInflected(Lexicon lexicon, Reading reading, string[] synonyms, Random random)
    {
        int start = random.Next(synonyms.Length);
        for (int k = 0; k < synonyms.Length; k++)
        {
            string? form = lexicon.Inflect(synonyms[(start + k) % synonyms.Length], reading.Pos, reading.Inflection);
            if (form is not null)
            {
                return form;
            }
        }

        return null;
    }

    internal static string MatchCase(string word, string text, int start, int length)
    {
        if (length > 1 && char.IsUpper(text[start]) && char.IsUpper(text[start + length - 1]))
        {
            return word.ToUpperInvariant();
        }

        return char.IsUpper(text[start]) ? string.Concat(char.ToUpperInvariant(word[0]).ToString(), word.AsSpan(1)) : word;
    }

    private static string Rebuild(string text, List<TextUnit> units, string?[] cores)
    {
        var builder = new StringBuilder(text.Length + 16);
        int at = 0;
        for (int u = 0; u < units.Count; u++)
        {
            if (cores[u] is { } core)
            {
                builder.Append(text, at, units[u].CoreStart - at).Append(core);
                at = units[u].CoreEnd;
            }
        }

        return builder.Append(text, at, text.Length - at).ToString();
    }
}
