namespace NicheTune.Augmentation;

/// <summary>How a word form relates to its lemma: what must be re-applied to a synonym so the sentence stays grammatical.</summary>
internal enum Inflection
{
    None,
    Plural,
    ThirdPerson,
    Past,
    Gerund,

    /// <summary>A form we recognise but cannot regenerate reliably (irregular past, comparative): never replaced.</summary>
    Unsupported,
}

internal readonly record struct Reading(PartOfSpeech Pos, string Lemma, Inflection Inflection);

/// <summary>
/// Part-of-speech guessing and morphology over a <see cref="SynonymTable"/>. The heuristic, in order:
/// (1) the previous word: after a singular noun, an <c>-s</c> form is a verb; after an adjective, a noun; after a determiner or possessive, a noun — or an adjective when the word has an adjective
/// reading and another content word follows; after <c>to</c>, a modal, a subject pronoun or <c>not</c>, a verb; after
/// a degree adverb or a form of <c>be</c>, an adjective (a verb for <c>-ing</c>/<c>-ed</c> forms);
/// (2) the suffix: <c>-ly</c> adverb, <c>-ing</c>/<c>-ed</c> verb, <c>-tion -ness -ment -ity …</c> noun, <c>-ous -ful -ive -able …</c> adjective;
/// (3) otherwise the reading WordNet's tagged corpus saw most often. A rule applies only when the word has that reading
/// (directly, through an irregular form from the <c>*.exc</c> lists, or by WordNet's suffix-detachment rules).
/// </summary>
internal sealed class Lexicon(SynonymTable table)
{
    private static readonly HashSet<string> Determiners = new(StringComparer.Ordinal)
    {
        "a", "an", "the", "this", "that", "these", "those", "my", "your", "his", "her", "its", "our", "their",
        "some", "any", "each", "every", "no", "many", "few", "several", "much", "another", "such", "of", "per",
    };

    private static readonly HashSet<string> VerbContexts = new(StringComparer.Ordinal)
    {
        "to", "will", "would", "can", "could", "shall", "should", "may", "might", "must", "cannot", "i", "we", "you",
        "they", "he", "she", "not", "never", "did", "does", "do", "please", "also", "often", "usually", "always",
    };

    private static readonly HashSet<string> AdjectiveContexts = new(StringComparer.Ordinal)
    {
        "very", "too", "so", "quite", "rather", "extremely", "really", "fairly", "highly", "less", "least", "most",
        "is", "are", "was", "were", "be", "been", "am", "being", "seems", "seem", "become", "becomes", "became",
    };

    private static readonly string[] NounSuffixes = ["tion", "sion", "ness", "ment", "ity", "ism", "ist", "ance", "ence", "ship", "hood", "er", "or"];

    private static readonly string[] AdjectiveSuffixes = ["ous", "ful", "ive", "able", "ible", "al", "ic", "less", "ish", "ary"];

    public SynonymTable Table { get; } = table;

    public bool TryRead(string word, string? previous, Reading? previousReading, bool contentWordFollows, out Reading reading)
    {
        PartOfSpeech? context = null;
        if (previousReading is { Pos: PartOfSpeech.Noun, Inflection: Inflection.None } && word.EndsWith('s') && TryReading(word, PartOfSpeech.Verb, out reading))
        {
            // "the program runs": a singular noun followed by an -s form is subject and verb.
            return true;
        }

        if (previousReading is { Pos: PartOfSpeech.Adjective })
        {
            context = PartOfSpeech.Noun;
        }
        else if (previous is not null)
        {
            if (Determiners.Contains(previous))
            {
                context = contentWordFollows && TryReading(word, PartOfSpeech.Adjective, out _) ? PartOfSpeech.Adjective : PartOfSpeech.Noun;
            }
            else if (VerbContexts.Contains(previous))
            {
                context = PartOfSpeech.Verb;
            }
            else if (AdjectiveContexts.Contains(previous))
            {
                context = word.EndsWith("ing", StringComparison.Ordinal) || word.EndsWith("ed", StringComparison.Ordinal)
                    ? PartOfSpeech.Verb
                    : PartOfSpeech.Adjective;
            }
        }

        if (context is { } c && TryReading(word, c, out reading))
        {
            return true;
        }

        if (SuffixGuess(word) is { } s && TryReading(word, s, out reading))
        {
            return true;
        }

        if (Table.TryGetEntry(word, out SynonymTable.Entry? entry))
        {
            reading = new Reading(entry.Parts[0], word, Inflection.None);
            return true;
        }

        for (var pos = PartOfSpeech.Noun; pos <= PartOfSpeech.Adverb; pos++)
        {
            if (TryReading(word, pos, out reading))
            {
                return true;
            }
        }

        reading = default;
        return false;
    }

    public bool TryReading(string word, PartOfSpeech pos, out Reading reading)
    {
        if (Has(word, pos))
        {
            reading = new Reading(pos, word, Inflection.None);
            return true;
        }

        if (Table.TryGetIrregular(word, out (PartOfSpeech Pos, string Lemma)[] bases))
        {
            foreach ((PartOfSpeech p, string lemma) in bases)
            {
                if (p == pos)
                {
                    reading = new Reading(pos, lemma, pos == PartOfSpeech.Noun ? Inflection.Plural : Inflection.Unsupported);
                    return true;
                }
            }
        }

        switch (pos)
        {
            case PartOfSpeech.Noun:
                return Detach(word, "ies", "y", pos, Inflection.Plural, out reading)
                    || Detach(word, "ches", "ch", pos, Inflection.Plural, out reading)
                    || Detach(word, "shes", "sh", pos, Inflection.Plural, out reading)
                    || Detach(word, "ses", "s", pos, Inflection.Plural, out reading)
                    || Detach(word, "xes", "x", pos, Inflection.Plural, out reading)
                    || Detach(word, "zes", "z", pos, Inflection.Plural, out reading)
                    || Detach(word, "men", "man", pos, Inflection.Plural, out reading)
                    || (!word.EndsWith("ss", StringComparison.Ordinal) && Detach(word, "s", "", pos, Inflection.Plural, out reading));
            case PartOfSpeech.Verb:
                return Detach(word, "ies", "y", pos, Inflection.ThirdPerson, out reading)
                    || Detach(word, "es", "e", pos, Inflection.ThirdPerson, out reading)
                    || Detach(word, "es", "", pos, Inflection.ThirdPerson, out reading)
                    || (!word.EndsWith("ss", StringComparison.Ordinal) && Detach(word, "s", "", pos, Inflection.ThirdPerson, out reading))
                    || Detach(word, "ied", "y", pos, Inflection.Past, out reading)
                    || Detach(word, "ed", "e", pos, Inflection.Past, out reading)
                    || Detach(word, "ed", "", pos, Inflection.Past, out reading)
                    || Undouble(word, "ed", Inflection.Past, out reading)
                    || Detach(word, "ing", "e", pos, Inflection.Gerund, out reading)
                    || Detach(word, "ing", "", pos, Inflection.Gerund, out reading)
                    || Undouble(word, "ing", Inflection.Gerund, out reading);
            case PartOfSpeech.Adjective:
                return Detach(word, "er", "", pos, Inflection.Unsupported, out reading)
                    || Detach(word, "est", "", pos, Inflection.Unsupported, out reading)
                    || Detach(word, "er", "e", pos, Inflection.Unsupported, out reading)
                    || Detach(word, "est", "e", pos, Inflection.Unsupported, out reading);
            default:
                reading = default;
                return false;
        }
    }

    /// <summary>Applies <paramref name="inflection"/> to a lemma, or returns <see langword="null"/> where English would need an irregular form we do not know.</summary>
    public string? Inflect(string lemma, PartOfSpeech pos, Inflection inflection)
    {
        switch (inflection)
        {
            case Inflection.None:
                return lemma;
            case Inflection.Plural:
                return Table.TryGetIrregularPlural(lemma, out string plural) ? plural : Sibilant(lemma);
            case Inflection.ThirdPerson:
                return Sibilant(lemma);
            case Inflection.Past:
                if (Table.IsIrregularVerb(lemma))
                {
                    return null;
                }

                if (lemma.EndsWith('e'))
                {
                    return lemma + "d";
                }

                if (EndsWithConsonantY(lemma))
                {
                    return lemma[..^1] + "ied";
                }

                return (DoublesFinal(lemma) ? lemma + lemma[^1] : lemma) + "ed";
            case Inflection.Gerund:
                if (lemma.EndsWith("ie", StringComparison.Ordinal))
                {
                    return lemma[..^2] + "ying";
                }

                if (lemma.EndsWith('e') && lemma.Length > 2 && !lemma.EndsWith("ee", StringComparison.Ordinal) && !lemma.EndsWith("ye", StringComparison.Ordinal) && !lemma.EndsWith("oe", StringComparison.Ordinal))
                {
                    return lemma[..^1] + "ing";
                }

                return (DoublesFinal(lemma) ? lemma + lemma[^1] : lemma) + "ing";
            default:
                return null;
        }
    }

    private static PartOfSpeech? SuffixGuess(string word)
    {
        if (word.Length < 5)
        {
            return null;
        }

        if (word.EndsWith("ly", StringComparison.Ordinal))
        {
            return PartOfSpeech.Adverb;
        }

        if (word.EndsWith("ing", StringComparison.Ordinal) || word.EndsWith("ed", StringComparison.Ordinal))
        {
            return PartOfSpeech.Verb;
        }

        foreach (string suffix in NounSuffixes)
        {
            if (word.EndsWith(suffix, StringComparison.Ordinal))
            {
                return PartOfSpeech.Noun;
            }
        }

        foreach (string suffix in AdjectiveSuffixes)
        {
            if (word.EndsWith(suffix, StringComparison.Ordinal))
            {
                return PartOfSpeech.Adjective;
            }
        }

        return null;
    }

    private bool Has(string lemma, PartOfSpeech pos)
    {
        if (!Table.TryGetEntry(lemma, out SynonymTable.Entry? entry))
        {
            return false;
        }

        foreach (PartOfSpeech p in entry.Parts)
        {
            if (p == pos)
            {
                return true;
            }
        }

        return false;
    }

    private bool Detach(string word, string suffix, string ending, PartOfSpeech pos, Inflection inflection, out Reading reading)
    {
        if (word.Length > suffix.Length + 1 && word.EndsWith(suffix, StringComparison.Ordinal))
        {
            string lemma = string.Concat(word.AsSpan(0, word.Length - suffix.Length), ending);
            if (Has(lemma, pos))
            {
                reading = new Reading(pos, lemma, inflection);
                return true;
            }
        }

        reading = default;
        return false;
    }

    // stopped → stop, planning → plan.
    private bool Undouble(string word, string suffix, Inflection inflection, out Reading reading)
    {
        int stem = word.Length - suffix.Length;
        if (stem >= 3 && word.EndsWith(suffix, StringComparison.Ordinal) && word[stem - 1] == word[stem - 2])
        {
            string lemma = word[..(stem - 1)];
            if (Has(lemma, PartOfSpeech.Verb))
            {
                reading = new Reading(PartOfSpeech.Verb, lemma, inflection);
                return true;
            }
        }

        reading = default;
        return false;
    }

    private static string Sibilant(string lemma)
    {
        if (EndsWithConsonantY(lemma))
        {
            return lemma[..^1] + "ies";
        }

        return lemma.EndsWith('s') || lemma.EndsWith('x') || lemma.EndsWith('z') || lemma.EndsWith("ch", StringComparison.Ordinal) || lemma.EndsWith("sh", StringComparison.Ordinal)
            ? lemma + "es"
            : lemma + "s";
    }

    private static bool EndsWithConsonantY(string word) => word.Length > 1 && word[^1] == 'y' && !IsVowel(word[^2]);

    // One-syllable consonant–vowel–consonant words double the final consonant (stop → stopped); w, x, y never double.
    private static bool DoublesFinal(string word)
    {
        if (word.Length < 3 || IsVowel(word[^1]) || word[^1] is 'w' or 'x' or 'y' || !IsVowel(word[^2]) || IsVowel(word[^3]))
        {
            return false;
        }

        int vowels = 0;
        for (int i = 0; i < word.Length; i++)
        {
            if (IsVowel(word[i]) && (i == 0 || !IsVowel(word[i - 1])))
            {
                vowels++;
            }
        }

        return vowels == 1;
    }

    private static bool IsVowel(char c) => c is 'a' or 'e' or 'i' or 'o' or 'u';
}
