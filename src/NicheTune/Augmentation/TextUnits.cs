using System.Text.RegularExpressions;

namespace NicheTune.Augmentation;

/// <summary>
/// One white-space-delimited chunk of a text: its extent, the core without surrounding punctuation, whether it is
/// protected, and (for a plain alphabetic, unprotected core) its lower-case form, the key of every lexicon lookup.
/// </summary>
internal readonly record struct TextUnit(int Start, int Length, int CoreStart, int CoreLength, bool Protected, string? Lower)
{
    public int End => Start + Length;

    public int CoreEnd => CoreStart + CoreLength;
}

/// <summary>Splits a text into <see cref="TextUnit"/>s in one pass: no regex per word, one regex pass per pattern per text.</summary>
internal static class TextUnits
{
    public static List<TextUnit> Analyze(string text, ProtectedTerms terms)
    {
        List<(int Start, int End)>? protectedRanges = null;
        foreach (Regex pattern in terms.Patterns)
        {
            foreach (ValueMatch match in pattern.EnumerateMatches(text))
            {
                if (match.Length > 0)
                {
                    (protectedRanges ??= []).Add((match.Index, match.Index + match.Length));
                }
            }
        }

        var units = new List<TextUnit>(text.Length / 5 + 1);
        int i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && char.IsWhiteSpace(text[i]))
            {
                i++;
            }

            if (i == text.Length)
            {
                break;
            }

            int start = i;
            while (i < text.Length && !char.IsWhiteSpace(text[i]))
            {
                i++;
            }

            int coreStart = start;
            int coreEnd = i;
            while (coreStart < coreEnd && IsLeadingPunctuation(text[coreStart]))
            {
                coreStart++;
            }

            while (coreEnd > coreStart && IsTrailingPunctuation(text[coreEnd - 1]))
            {
                coreEnd--;
            }

            bool isProtected = Overlaps(protectedRanges, start, i, ref coreStart, ref coreEnd);
            string? lower = null;
            if (!isProtected && coreEnd > coreStart && IsAlphabetic(text, coreStart, coreEnd))
            {
                lower = text.Substring(coreStart, coreEnd - coreStart).ToLowerInvariant();
            }

            units.Add(new TextUnit(start, i - start, coreStart, coreEnd - coreStart, isProtected, lower));
        }

        if (terms.HasGlossary)
        {
            MergeGlossaryTerms(text, units, terms);
        }

        return units;
    }

    private static void MergeGlossaryTerms(string text, List<TextUnit> units, ProtectedTerms terms)
    {
        for (int u = 0; u < units.Count; u++)
        {
            TextUnit first = units[u];
            if (first.CoreLength == 0 || !TryGetTerms(text, first, terms, out string[][] candidates))
            {
                continue;
            }

            foreach (string[] words in candidates)
            {
                if (u + words.Length > units.Count || !Matches(text, units, u, words))
                {
                    continue;
                }

                TextUnit last = units[u + words.Length - 1];
                units[u] = new TextUnit(first.Start, last.End - first.Start, first.CoreStart, last.CoreEnd - first.CoreStart, true, null);
                units.RemoveRange(u + 1, words.Length - 1);
                break;
            }
        }
    }

    // A one-word term may be written in the plural ("buses" for "bus"): look the word up without its ending too.
    private static bool TryGetTerms(string text, TextUnit unit, ProtectedTerms terms, out string[][] candidates)
    {
        string core = text.Substring(unit.CoreStart, unit.CoreLength);
        if (terms.TryGetTerms(core, out candidates))
        {
            return true;
        }

        return (core.Length > 2 && core.EndsWith('s') && terms.TryGetTerms(core[..^1], out candidates))
            || (core.Length > 3 && core.EndsWith("es", StringComparison.OrdinalIgnoreCase) && terms.TryGetTerms(core[..^2], out candidates));
    }

    private static bool Matches(string text, List<TextUnit> units, int at, string[] words)
    {
        for (int w = 0; w < words.Length; w++)
        {
            TextUnit unit = units[at + w];
            string word = words[w];
            if (unit.CoreLength < word.Length || string.Compare(text, unit.CoreStart, word, 0, word.Length, StringComparison.OrdinalIgnoreCase) != 0)
            {
                return false;
            }

            // The last word may carry a plural ending: "operating system" also protects "operating systems".
            int extra = unit.CoreLength - word.Length;
            bool plural = w == words.Length - 1 && char.IsLetter(word[^1]) && (
                (extra == 1 && char.ToLowerInvariant(text[unit.CoreEnd - 1]) == 's') ||
                (extra == 2 && string.Compare(text, unit.CoreEnd - 2, "es", 0, 2, StringComparison.OrdinalIgnoreCase) == 0));
            if (extra != 0 && !plural)
            {
                return false;
            }
        }

        return true;
    }

    // A unit is protected when a match overlaps its core; the core then grows to cover the match ("parseFile()" keeps its parentheses).
    private static bool Overlaps(List<(int Start, int End)>? ranges, int unitStart, int unitEnd, ref int coreStart, ref int coreEnd)
    {
        if (ranges is null)
        {
            return false;
        }

        bool overlaps = false;
        foreach ((int s, int e) in ranges)
        {
            if (s < Math.Max(coreEnd, coreStart + 1) && coreStart < e)
            {
                overlaps = true;
                coreStart = Math.Max(unitStart, Math.Min(coreStart, s));
                coreEnd = Math.Min(unitEnd, Math.Max(coreEnd, e));
            }
        }

        return overlaps;
    }

    private static bool IsAlphabetic(string text, int start, int end)
    {
        for (int i = start; i < end; i++)
        {
            if (!char.IsLetter(text[i]))
            {
                return false;
            }
        }

        return true;
    }

    internal static bool IsLeadingPunctuation(char c) => c is '"' or '\'' or '(' or '[' or '{' or '«' or '“' or '‘' or '¿' or '¡';

    internal static bool IsTrailingPunctuation(char c) => c is '.' or ',' or ';' or ':' or '!' or '?' or '"' or '\'' or ')' or ']' or '}' or '»' or '”' or '’';
}
