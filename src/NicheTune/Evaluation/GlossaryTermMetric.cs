using System.Text;

namespace NicheTune.Evaluation;

/// <summary>
/// How well generated text uses a domain's vocabulary: given a glossary of niche terms, counts the terms in each
/// prediction and its reference and reports precision (the share of the prediction's terms the reference also uses)
/// and recall (the share of the reference's terms the prediction reproduces), pooled over the whole set, plus counts
/// per term. A fine-tune that learned the domain should raise both; a model that sprinkles jargon raises only the count.
/// </summary>
/// <remarks>
/// Matching is case-insensitive and whole-word: a term matches where it is not glued to a letter, digit or underscore
/// (so <c>C++</c> and <c>TCP/IP</c> work, but "compiler" does not match inside "compilers": there is no stemming).
/// Multi-word terms match across any run of whitespace. Overlapping matches are resolved longest first, so with the
/// terms "neural network" and "network", the text "a neural network" counts only "neural network". Repeated terms
/// count with multiplicity, and a prediction gets credit for a term at most as many times as its reference uses it
/// (clipped counts, like BLEU's). 0/0 scores are 0 (scikit-learn's <c>zero_division=0</c>). Not thread-safe.
/// </remarks>
public sealed class GlossaryTermMetric
{
    private readonly GlossaryMatcher _matcher;
    private readonly long[] _predicted;
    private readonly long[] _referenced;
    private readonly long[] _correct;
    private readonly int[] _scratchPrediction;
    private readonly int[] _scratchReference;
    private int _pairs;

    /// <summary>Creates the metric for a glossary.</summary>
    /// <param name="terms">The niche terms (single words or phrases); duplicates differing only in case or spacing are merged.</param>
    /// <exception cref="ArgumentException">The glossary is empty or a term is blank.</exception>
    public GlossaryTermMetric(IEnumerable<string> terms)
    {
        _matcher = new GlossaryMatcher(terms);
        int n = _matcher.Terms.Count;
        _predicted = new long[n];
        _referenced = new long[n];
        _correct = new long[n];
        _scratchPrediction = new int[n];
        _scratchReference = new int[n];
    }

    /// <summary>The glossary after merging duplicates, in the order first given.</summary>
    public IReadOnlyList<string> Terms => _matcher.Terms;

    /// <summary>Clears the counts.</summary>
    public void Reset()
    {
        Array.Clear(_predicted);
        Array.Clear(_referenced);
        Array.Clear(_correct);
        _pairs = 0;
    }

    /// <summary>Counts the glossary terms of one (prediction, reference) pair.</summary>
    /// <param name="prediction">The generated text.</param>
    /// <param name="reference">The expected text.</param>
    /// <exception cref="ArgumentNullException">An argument is <see langword="null"/>.</exception>
    public void Update(string prediction, string reference)
    {
        ArgumentNullException.ThrowIfNull(prediction);
        ArgumentNullException.ThrowIfNull(reference);
        Array.Clear(_scratchPrediction);
        Array.Clear(_scratchReference);
        foreach (int term in _matcher.Find(prediction))
        {
            _scratchPrediction[term]++;
        }

        foreach (int term in _matcher.Find(reference))
        {
            _scratchReference[term]++;
        }

        for (int t = 0; t < _predicted.Length; t++)
        {
            _predicted[t] += _scratchPrediction[t];
            _referenced[t] += _scratchReference[t];
            _correct[t] += Math.Min(_scratchPrediction[t], _scratchReference[t]);
        }

        _pairs++;
    }

    /// <summary>The scores over every pair since <see cref="Reset"/>.</summary>
    /// <returns>The report.</returns>
    public GlossaryTermReport Compute()
    {
        var perTerm = new List<GlossaryTermCount>();
        for (int t = 0; t < _predicted.Length; t++)
        {
            if (_predicted[t] + _referenced[t] > 0)
            {
                perTerm.Add(new GlossaryTermCount(_matcher.Terms[t], _predicted[t], _referenced[t], _correct[t]));
            }
        }

        perTerm.Sort(static (a, b) =>
        {
            int byCount = (b.InReferences + b.InPredictions).CompareTo(a.InReferences + a.InPredictions);
            return byCount != 0 ? byCount : string.Compare(a.Term, b.Term, StringComparison.OrdinalIgnoreCase);
        });
        return new GlossaryTermReport(_pairs, _predicted.Sum(), _referenced.Sum(), _correct.Sum(), perTerm);
    }

    /// <summary>Resets, counts every pair and computes: the one-call form.</summary>
    /// <param name="pairs">(prediction, reference) pairs.</param>
    /// <returns>The report.</returns>
    /// <exception cref="ArgumentException">A pair holds a <see langword="null"/> string.</exception>
    public GlossaryTermReport Evaluate(IEnumerable<(string Prediction, string Reference)> pairs)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        Reset();
        int index = 0;
        foreach ((string prediction, string reference) in pairs)
        {
            if (prediction is null || reference is null)
            {
                throw new ArgumentException($"Pair {index} has a null {(prediction is null ? "prediction" : "reference")}; pass an empty string instead.", nameof(pairs));
            }

            Update(prediction, reference);
            index++;
        }

        return Compute();
    }

    /// <summary>The glossary terms found in <paramref name="text"/>, in text order, as spelled in the glossary.</summary>
    /// <param name="text">Any text.</param>
    /// <returns>One entry per match.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is <see langword="null"/>.</exception>
    public IReadOnlyList<string> FindTerms(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return [.. _matcher.Find(text).Select(t => _matcher.Terms[t])];
    }
}

/// <summary>The result of a <see cref="GlossaryTermMetric"/>: pooled (micro) scores and per-term counts.</summary>
public sealed class GlossaryTermReport
{
    internal GlossaryTermReport(int pairs, long predicted, long referenced, long correct, IReadOnlyList<GlossaryTermCount> perTerm)
    {
        Pairs = pairs;
        PredictedTerms = predicted;
        ReferenceTerms = referenced;
        CorrectTerms = correct;
        PerTerm = perTerm;
    }

    /// <summary>Number of (prediction, reference) pairs counted.</summary>
    public int Pairs { get; }

    /// <summary>Glossary-term occurrences in the predictions.</summary>
    public long PredictedTerms { get; }

    /// <summary>Glossary-term occurrences in the references.</summary>
    public long ReferenceTerms { get; }

    /// <summary>Occurrences used correctly: per pair and term, the smaller of the prediction's and the reference's count.</summary>
    public long CorrectTerms { get; }

    /// <summary><see cref="CorrectTerms"/> / <see cref="PredictedTerms"/>; 0 when the predictions use no term.</summary>
    public double Precision => PredictedTerms == 0 ? 0.0 : CorrectTerms / (double)PredictedTerms;

    /// <summary><see cref="CorrectTerms"/> / <see cref="ReferenceTerms"/>; 0 when the references use no term.</summary>
    public double Recall => ReferenceTerms == 0 ? 0.0 : CorrectTerms / (double)ReferenceTerms;

    /// <summary>Harmonic mean of precision and recall, 2·correct / (predicted + referenced); 0 when both are 0.</summary>
    public double F1 => PredictedTerms + ReferenceTerms == 0 ? 0.0 : 2.0 * CorrectTerms / (PredictedTerms + ReferenceTerms);

    /// <summary>Counts of every term seen at least once, most frequent first (then alphabetical).</summary>
    public IReadOnlyList<GlossaryTermCount> PerTerm { get; }

    /// <summary>Markdown: the pooled scores and the <paramref name="top"/> most frequent terms.</summary>
    /// <param name="top">How many terms to list.</param>
    /// <returns>The Markdown text.</returns>
    public string ToMarkdown(int top = 20)
    {
        var sb = new StringBuilder();
        sb.Append("Glossary terms over ").Append(Markdown.Integer(Pairs)).Append(" pairs: precision ").Append(Markdown.Number(Precision))
            .Append(", recall ").Append(Markdown.Number(Recall)).Append(", F1 ").Append(Markdown.Number(F1))
            .Append(" (").Append(Markdown.Integer(CorrectTerms)).Append(" correct of ").Append(Markdown.Integer(PredictedTerms))
            .Append(" predicted, ").Append(Markdown.Integer(ReferenceTerms)).AppendLine(" in references).").AppendLine();
        Markdown.Table(
            sb,
            ["term", "in predictions", "in references", "correct", "precision", "recall"],
            [false, true, true, true, true, true],
            PerTerm.Take(Math.Max(0, top)).Select(t => (IReadOnlyList<string>)[
                t.Term, Markdown.Integer(t.InPredictions), Markdown.Integer(t.InReferences), Markdown.Integer(t.Correct), Markdown.Number(t.Precision), Markdown.Number(t.Recall)]));
        return sb.ToString();
    }
}

/// <summary>How often one glossary term was used.</summary>
/// <param name="Term">The term as spelled in the glossary.</param>
/// <param name="InPredictions">Occurrences in the predictions.</param>
/// <param name="InReferences">Occurrences in the references.</param>
/// <param name="Correct">Occurrences matched by the reference of the same pair (clipped counts).</param>
public sealed record GlossaryTermCount(string Term, long InPredictions, long InReferences, long Correct)
{
    /// <summary><see cref="Correct"/> / <see cref="InPredictions"/>; 0 when the term was never predicted.</summary>
    public double Precision => InPredictions == 0 ? 0.0 : Correct / (double)InPredictions;

    /// <summary><see cref="Correct"/> / <see cref="InReferences"/>; 0 when no reference uses the term.</summary>
    public double Recall => InReferences == 0 ? 0.0 : Correct / (double)InReferences;
}

/// <summary>Finds glossary terms in text: case-insensitive, whole-word, whitespace-insensitive, longest match first.</summary>
internal sealed class GlossaryMatcher
{
    private readonly string[] _keys;
    private readonly int[] _byLength;

    public GlossaryMatcher(IEnumerable<string> terms)
    {
        ArgumentNullException.ThrowIfNull(terms);
        var display = new List<string>();
        var keys = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        int index = 0;
        foreach (string term in terms)
        {
            string key = term is null ? string.Empty : Normalize(term);
            if (key.Length == 0)
            {
                throw new ArgumentException($"Glossary term {index} is {(term is null ? "null" : $"'{term}'")}; every term needs at least one non-space character.", nameof(terms));
            }

            if (seen.Add(key))
            {
                display.Add(term!.Trim());
                keys.Add(key);
            }

            index++;
        }

        if (keys.Count == 0)
        {
            throw new ArgumentException("The glossary is empty; pass at least one term.", nameof(terms));
        }

        Terms = display;
        _keys = [.. keys];

        // Longest first; equal lengths in glossary order, so the outcome never depends on hashing.
        _byLength = [.. Enumerable.Range(0, _keys.Length).OrderByDescending(i => _keys[i].Length).ThenBy(i => i)];
    }

    public IReadOnlyList<string> Terms { get; }

    /// <summary>Term indices of the accepted matches in text order.</summary>
    public List<int> Find(string text)
    {
        string normalized = Normalize(text);
        var accepted = new List<(int Start, int Term)>();
        if (normalized.Length == 0)
        {
            return [];
        }

        var covered = new bool[normalized.Length];
        foreach (int term in _byLength)
        {
            string key = _keys[term];
            int from = 0;
            while (from <= normalized.Length - key.Length)
            {
                int at = normalized.IndexOf(key, from, StringComparison.Ordinal);
                if (at < 0)
                {
                    break;
                }

                int end = at + key.Length;
                if (IsWholeWord(normalized, key, at, end) && !Overlaps(covered, at, end))
                {
                    Array.Fill(covered, true, at, key.Length);
                    accepted.Add((at, term));
                    from = end;
                }
                else
                {
                    from = at + 1;
                }
            }
        }

        accepted.Sort(static (a, b) => a.Start.CompareTo(b.Start));
        return accepted.ConvertAll(static m => m.Term);
    }

    private static bool IsWholeWord(string text, string key, int start, int end)
        => !(IsWordChar(key[0]) && start > 0 && IsWordChar(text[start - 1]))
        && !(IsWordChar(key[^1]) && end < text.Length && IsWordChar(text[end]));

    private static bool Overlaps(bool[] covered, int start, int end)
        => covered.AsSpan(start, end - start).Contains(true);

    private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';

    // Lower-case and collapse whitespace runs to one space, so "Neural\n  Network" matches the term "neural network".
    private static string Normalize(string text)
    {
        var sb = new StringBuilder(text.Length);
        bool space = false;
        foreach (char c in text.Trim())
        {
            if (char.IsWhiteSpace(c))
            {
                space = true;
                continue;
            }

            if (space)
            {
                sb.Append(' ');
                space = false;
            }

            sb.Append(char.ToLowerInvariant(c));
        }

        return sb.ToString();
    }
}
