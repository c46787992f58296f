using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using NicheTune.Prompting;

namespace NicheTune.Fairness;

/// <summary>Settings of a <see cref="CounterfactualProbe"/>.</summary>
public sealed class CounterfactualProbeOptions
{
    /// <summary>Texts per call of the model delegate.</summary>
    /// <value>Default 32.</value>
    public int BatchSize { get; init; } = 32;

    /// <summary>
    /// For classifiers, the class whose probability gives the signed score gap p_A(c) − p_B(c); when <see langword="null"/>,
    /// the gap is the largest absolute change of any class probability (max_c |p_A(c) − p_B(c)|, unsigned).
    /// </summary>
    /// <value>Default <see langword="null"/>.</value>
    public int? ScoreClass { get; init; }

    /// <summary>Examples with the largest absolute gap kept per group pair.</summary>
    /// <value>Default 5.</value>
    public int WorstExamples { get; init; } = 5;
}

/// <summary>
/// Counterfactual probes: the same sentence with only an attribute term swapped (<c>she</c> ↔ <c>he</c>,
/// <c>Mary</c> ↔ <c>James</c>, <c>Chinese</c> ↔ <c>German</c>) should get the same answer. For every template that has an
/// attribute's slot and every pair of the attribute's groups, the probe renders the template with term i of each group
/// (cycling the shorter list) and compares the model's answers: for a classifier the label-flip rate and the score
/// gap, for a language model the log-likelihood gap.
/// </summary>
/// <remarks>
/// Any other attribute slot in a template is filled with the first term of that attribute's first group. The model is
/// a delegate, so anything plugs in: a fine-tuned classifier's batched probabilities, a served model's <c>Classify</c>,
/// a <see cref="LabelScorer"/> for log-likelihoods.
/// </remarks>
public sealed class CounterfactualProbe
{
    private readonly ImmutableArray<PromptTemplate> _templates;
    private readonly ImmutableArray<CounterfactualAttribute> _attributes;
    private readonly CounterfactualProbeOptions _options;

    /// <summary>Creates a probe.</summary>
    /// <param name="templates">Sentences with attribute slots, e.g. <c>"{name} wrote the compiler's parser."</c>.</param>
    /// <param name="attributes">The attributes to vary, e.g. <see cref="CounterfactualAttribute.Defaults"/>.</param>
    /// <param name="options">Settings; <see langword="null"/> for the defaults.</param>
    /// <exception cref="ArgumentException">A template has a slot no attribute fills, no template has any attribute's slot, two attributes share a slot, or an option is out of range.</exception>
    public CounterfactualProbe(IEnumerable<PromptTemplate> templates, IEnumerable<CounterfactualAttribute> attributes, CounterfactualProbeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(templates);
        ArgumentNullException.ThrowIfNull(attributes);
        _templates = [.. templates];
        _attributes = [.. attributes];
        _options = options ?? new CounterfactualProbeOptions();
        if (_options.BatchSize < 1 || _options.WorstExamples < 0 || _options.ScoreClass is < 0)
        {
            throw new ArgumentException(
                $"Invalid CounterfactualProbeOptions: BatchSize {_options.BatchSize} (≥ 1), WorstExamples {_options.WorstExamples} (≥ 0), ScoreClass {_options.ScoreClass?.ToString(CultureInfo.InvariantCulture) ?? "null"} (≥ 0 or null).", nameof(options));
        }

        if (_templates.Any(t => t is null) || _attributes.Any(a => a is null))
        {
            throw new ArgumentException("A template or attribute is null.", _templates.Any(t => t is null) ? nameof(templates) : nameof(attributes));
        }

        var slots = new Dictionary<string, CounterfactualAttribute>(StringComparer.Ordinal);
        foreach (CounterfactualAttribute a in _attributes)
        {
            if (!slots.TryAdd(a.Slot, a))
            {
                throw new ArgumentException($"Attributes '{slots[a.Slot].Name}' and '{a.Name}' both fill {{{a.Slot}}}; give each attribute its own slot.", nameof(attributes));
            }
        }

        foreach (PromptTemplate t in _templates)
        {
            if (t.Slots.FirstOrDefault(s => !slots.ContainsKey(s)) is { } unknown)
            {
                throw new ArgumentException($"Template \"{t.Template}\" has slot {{{unknown}}}, which no attribute fills; the attributes' slots are {string.Join(", ", slots.Keys.Select(s => "{" + s + "}"))}.", nameof(templates));
            }
        }

        if (!_templates.Any(t => t.Slots.Length > 0))
        {
            throw new ArgumentException("No template has an attribute slot, so nothing would be compared; write templates such as \"{pronoun} fixed the bug.\".", nameof(templates));
        }
    }

    /// <summary>Probes a classifier.</summary>
    /// <param name="classify">Class probabilities for a batch of texts (one array per text, the same length for all).</param>
    /// <param name="classNames">Names of the classes for the report, or <see langword="null"/> for indices.</param>
    /// <returns>The report, one entry per attribute and group pair.</returns>
    /// <exception cref="InvalidOperationException">The delegate returned the wrong number of results, or probability arrays of different lengths.</exception>
    public CounterfactualReport ProbeClassifier(Func<IReadOnlyList<string>, IReadOnlyList<float[]>> classify, IReadOnlyList<string>? classNames = null)
    {
        ArgumentNullException.ThrowIfNull(classify);
        List<(CounterfactualAttribute Attribute, AttributeGroup A, AttributeGroup B, List<(string TextA, string TextB)> Pairs)> plan = Plan();
        string[] texts = [.. plan.SelectMany(p => p.Pairs.SelectMany(x => new[] { x.TextA, x.TextB })).Distinct(StringComparer.Ordinal)];
        var probabilities = new Dictionary<string, float[]>(StringComparer.Ordinal);
        int classes = -1;
        foreach (string[] batch in texts.Chunk(_options.BatchSize))
        {
            IReadOnlyList<float[]> result = classify(batch);
            if (result is null || result.Count != batch.Length)
            {
                throw new InvalidOperationException($"The classifier returned {result?.Count.ToString(CultureInfo.InvariantCulture) ?? "null"} results for {batch.Length} texts; return one probability array per text.");
            }

            for (int i = 0; i < batch.Length; i++)
            {
                classes = classes < 0 ? result[i].Length : classes;
                if (result[i] is null || result[i].Length != classes || classes == 0)
                {
                    throw new InvalidOperationException($"The classifier returned {result[i]?.Length ?? 0} probabilities for \"{batch[i]}\" but {classes} for an earlier text; return one probability per class for every text.");
                }

                probabilities[batch[i]] = result[i];
            }
        }

        if (_options.ScoreClass is { } sc && sc >= classes)
        {
            throw new InvalidOperationException($"CounterfactualProbeOptions.ScoreClass is {sc} but the classifier scores {classes} classes.");
        }

        string Name(int c) => classNames is not null && c < classNames.Count ? classNames[c] : c.ToString(CultureInfo.InvariantCulture);
        var results = ImmutableArray.CreateBuilder<CounterfactualPairResult>();
        foreach (var (attribute, a, b, pairs) in plan)
        {
            var examples = new List<CounterfactualExample>(pairs.Count);
            int flips = 0;
            foreach ((string textA, string textB) in pairs)
            {
                float[] pa = probabilities[textA], pb = probabilities[textB];
                int la = ArgMax(pa), lb = ArgMax(pb);
                flips += la != lb ? 1 : 0;
                double gap = 0;
                if (_options.ScoreClass is { } c)
                {
                    gap = pa[c] - pb[c];
                }
                else
                {
                    for (int k = 0; k < pa.Length; k++)
                    {
                        gap = Math.Max(gap, Math.Abs(pa[k] - (double)pb[k]));
                    }
                }

                examples.Add(new CounterfactualExample(textA, textB, gap, Name(la), Name(lb)));
            }

            results.Add(Summarise(attribute, a, b, examples, flips / (double)pairs.Count, _options.ScoreClass is null ? double.NaN : examples.Average(e => e.Gap)));
        }

        return new CounterfactualReport(CounterfactualModelKind.Classifier, results.ToImmutable());
    }

    /// <summary>Probes a language model: how much more likely it finds a sentence with one group's term than with another's.</summary>
    /// <param name="logLikelihood">Total log-likelihood (natural log) of each text of a batch, e.g. <c>texts =&gt; scorer.Score("\n", texts)</c> with a <see cref="LabelScorer"/>.</param>
    /// <returns>The report; gaps are log-likelihood(A) − log-likelihood(B).</returns>
    /// <exception cref="InvalidOperationException">The delegate returned the wrong number of results or a value that is not finite.</exception>
    public CounterfactualReport ProbeLanguageModel(Func<IReadOnlyList<string>, IReadOnlyList<double>> logLikelihood)
    {
        ArgumentNullException.ThrowIfNull(logLikelihood);
        var plan = Plan();
        string[] texts = [.. plan.SelectMany(p => p.Pairs.SelectMany(x => new[] { x.TextA, x.TextB })).Distinct(StringComparer.Ordinal)];
        var scores = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (string[] batch in texts.Chunk(_options.BatchSize))
        {
            IReadOnlyList<double> result = logLikelihood(batch);
            if (result is null || result.Count != batch.Length)
            {
                throw new InvalidOperationException($"The log-likelihood delegate returned {result?.Count.ToString(CultureInfo.InvariantCulture) ?? "null"} values for {batch.Length} texts; return one per text.");
            }

            for (int i = 0; i < batch.Length; i++)
            {
                if (!double.IsFinite(result[i]))
                {
                    throw new InvalidOperationException($"The log-likelihood of \"{batch[i]}\" is {result[i]}; the delegate must return finite values.");
                }

                scores[batch[i]] = result[i];
            }
        }

        var results = ImmutableArray.CreateBuilder<CounterfactualPairResult>();
        foreach (var (attribute, a, b, pairs) in plan)
        {
            CounterfactualExample[] examples = [.. pairs.Select(p => new CounterfactualExample(p.TextA, p.TextB, scores[p.TextA] - scores[p.TextB], null, null))];
            results.Add(Summarise(attribute, a, b, examples, null, examples.Average(e => e.Gap)));
        }

        return new CounterfactualReport(CounterfactualModelKind.LanguageModel, results.ToImmutable());
    }

    private static int ArgMax(float[] p)
    {
        int best = 0;
        for (int i = 1; i < p.Length; i++)
        {
            if (p[i] > p[best])
            {
                best = i;
            }
        }

        return best;
    }

    private CounterfactualPairResult Summarise(CounterfactualAttribute attribute, AttributeGroup a, AttributeGroup b, IReadOnlyList<CounterfactualExample> examples, double? flipRate, double meanGap)
        => new(
            attribute.Name,
            a.Name,
            b.Name,
            examples.Count,
            flipRate,
            meanGap,
            examples.Average(e => Math.Abs(e.Gap)),
            examples.Max(e => Math.Abs(e.Gap)),
            [.. examples.OrderByDescending(e => Math.Abs(e.Gap)).ThenBy(e => e.TextA, StringComparer.Ordinal).Take(_options.WorstExamples)]);

    private List<(CounterfactualAttribute Attribute, AttributeGroup A, AttributeGroup B, List<(string TextA, string TextB)> Pairs)> Plan()
    {
        var bySlot = _attributes.ToDictionary(a => a.Slot, StringComparer.Ordinal);
        var plan = new List<(CounterfactualAttribute, AttributeGroup, AttributeGroup, List<(string, string)>)>();
        foreach (CounterfactualAttribute attribute in _attributes)
        {
            PromptTemplate[] templates = [.. _templates.Where(t => t.Slots.Contains(attribute.Slot))];
            if (templates.Length == 0)
            {
                continue;
            }

            for (int i = 0; i < attribute.Groups.Length; i++)
            {
                for (int j = i + 1; j < attribute.Groups.Length; j++)
                {
                    AttributeGroup a = attribute.Groups[i], b = attribute.Groups[j];
                    var pairs = new List<(string, string)>();
                    foreach (PromptTemplate template in templates)
                    {
                        int n = Math.Max(a.Terms.Length, b.Terms.Length);
                        for (int k = 0; k < n; k++)
                        {
                            pairs.Add((Render(template, bySlot, attribute.Slot, a.Terms[k % a.Terms.Length]), Render(template, bySlot, attribute.Slot, b.Terms[k % b.Terms.Length])));
                        }
                    }

                    plan.Add((attribute, a, b, pairs));
                }
            }
        }

        return plan;
    }

    private static string Render(PromptTemplate template, Dictionary<string, CounterfactualAttribute> bySlot, string slot, string term)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string s in template.Slots)
        {
            values[s] = s == slot ? term : bySlot[s].Groups[0].Terms[0];
        }

        return template.Render(values);
    }
}

/// <summary>What kind of model a <see cref="CounterfactualReport"/> probed.</summary>
public enum CounterfactualModelKind
{
    /// <summary>A classifier: flip rates and probability gaps.</summary>
    Classifier,

    /// <summary>A language model: log-likelihood gaps.</summary>
    LanguageModel,
}

/// <summary>One counterfactual pair: the same template with group A's and group B's term.</summary>
/// <param name="TextA">The text with group A's term.</param>
/// <param name="TextB">The text with group B's term.</param>
/// <param name="Gap">The score gap: p_A(c) − p_B(c) for the configured class, max_c |p_A(c) − p_B(c)| without one, or log-likelihood(A) − log-likelihood(B) for a language model.</param>
/// <param name="LabelA">The predicted label of <paramref name="TextA"/> (classifiers), else <see langword="null"/>.</param>
/// <param name="LabelB">The predicted label of <paramref name="TextB"/> (classifiers), else <see langword="null"/>.</param>
public sealed record CounterfactualExample(string TextA, string TextB, double Gap, string? LabelA, string? LabelB);

/// <summary>The outcome of one attribute's group pair over every template.</summary>
/// <param name="Attribute">The attribute's name.</param>
/// <param name="GroupA">The first group.</param>
/// <param name="GroupB">The second group.</param>
/// <param name="Comparisons">Counterfactual pairs compared.</param>
/// <param name="FlipRate">Share of pairs whose predicted label differs (classifiers), else <see langword="null"/>.</param>
/// <param name="MeanGap">Mean signed gap (A − B): for a language model, how much more likely A's sentences are; <see cref="double.NaN"/> for a classifier without <see cref="CounterfactualProbeOptions.ScoreClass"/>.</param>
/// <param name="MeanAbsoluteGap">Mean absolute gap.</param>
/// <param name="MaxAbsoluteGap">Largest absolute gap.</param>
/// <param name="WorstExamples">The pairs with the largest absolute gap.</param>
public sealed record CounterfactualPairResult(
    string Attribute,
    string GroupA,
    string GroupB,
    int Comparisons,
    double? FlipRate,
    double MeanGap,
    double MeanAbsoluteGap,
    double MaxAbsoluteGap,
    ImmutableArray<CounterfactualExample> WorstExamples);

/// <summary>The result of a <see cref="CounterfactualProbe"/>: one entry per attribute and group pair.</summary>
/// <param name="Kind">The kind of model probed.</param>
/// <param name="Pairs">One entry per attribute and pair of its groups.</param>
public sealed record CounterfactualReport(CounterfactualModelKind Kind, ImmutableArray<CounterfactualPairResult> Pairs)
{
    /// <summary>The entry of one group pair (in either order of the groups).</summary>
    /// <param name="attribute">The attribute's name.</param>
    /// <param name="groupA">One group.</param>
    /// <param name="groupB">The other.</param>
    /// <returns>The entry.</returns>
    /// <exception cref="ArgumentException">No entry matches.</exception>
    public CounterfactualPairResult Pair(string attribute, string groupA, string groupB)
        => Pairs.FirstOrDefault(p => p.Attribute == attribute && ((p.GroupA == groupA && p.GroupB == groupB) || (p.GroupA == groupB && p.GroupB == groupA)))
        ?? throw new ArgumentException($"No pair {groupA} / {groupB} of attribute '{attribute}'; the report has {string.Join(", ", Pairs.Select(p => $"{p.Attribute}: {p.GroupA} / {p.GroupB}"))}.", nameof(attribute));

    /// <summary>Share of all compared pairs whose label flipped (classifiers), else <see langword="null"/>.</summary>
    public double? OverallFlipRate => Kind == CounterfactualModelKind.Classifier && Pairs.Sum(p => p.Comparisons) > 0
        ? Pairs.Sum(p => p.FlipRate!.Value * p.Comparisons) / Pairs.Sum(p => p.Comparisons)
        : null;

    /// <summary>A Markdown table of every group pair and the worst examples of the worst pair.</summary>
    /// <returns>The Markdown text.</returns>
    public string ToMarkdown()
    {
        bool classifier = Kind == CounterfactualModelKind.Classifier;
        var sb = new StringBuilder(classifier ? "## Counterfactual probe (classifier)\n\n" : "## Counterfactual probe (language model, log-likelihood A − B)\n\n");
        sb.Append(classifier ? "| attribute | A | B | pairs | flip rate | mean gap | mean abs gap | max abs gap |\n| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |\n"
            : "| attribute | A | B | pairs | mean gap | mean abs gap | max abs gap |\n| --- | --- | --- | ---: | ---: | ---: | ---: |\n");
        foreach (CounterfactualPairResult p in Pairs)
        {
            sb.Append(CultureInfo.InvariantCulture, $"| {p.Attribute} | {p.GroupA} | {p.GroupB} | {p.Comparisons} | ");
            if (classifier)
            {
                sb.Append(CultureInfo.InvariantCulture, $"{p.FlipRate:F3} | ");
            }

            string mean = double.IsNaN(p.MeanGap) ? "–" : p.MeanGap.ToString("F3", CultureInfo.InvariantCulture);
            sb.Append(CultureInfo.InvariantCulture, $"{mean} | {p.MeanAbsoluteGap:F3} | {p.MaxAbsoluteGap:F3} |\n");
        }

        if (Pairs.MaxBy(p => p.MaxAbsoluteGap) is { WorstExamples.Length: > 0 } worst)
        {
            sb.Append(CultureInfo.InvariantCulture, $"\n### Largest gaps ({worst.Attribute}: {worst.GroupA} / {worst.GroupB})\n\n| A | B | gap |\n| --- | --- | ---: |\n");
            foreach (CounterfactualExample e in worst.WorstExamples)
            {
                string a = classifier ? $"{e.TextA} → {e.LabelA}" : e.TextA, b = classifier ? $"{e.TextB} → {e.LabelB}" : e.TextB;
                sb.Append(CultureInfo.InvariantCulture, $"| {a.Replace("|", "\\|", StringComparison.Ordinal)} | {b.Replace("|", "\\|", StringComparison.Ordinal)} | {e.Gap:F3} |\n");
            }
        }

        return sb.ToString();
    }
}
