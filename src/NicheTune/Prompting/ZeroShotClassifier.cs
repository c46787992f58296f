using NicheTune.Augmentation;

namespace NicheTune.Prompting;

/// <summary>A classification by label scoring.</summary>
/// <param name="Label">The winning label.</param>
/// <param name="Index">Its index in the classifier's labels.</param>
/// <param name="Scores">The score of every label (log-likelihoods, calibrated where configured), in label order.</param>
public sealed record LabelPrediction(string Label, int Index, IReadOnlyList<double> Scores);

/// <summary>Settings of zero-shot and in-context classification.</summary>
public sealed record LabelScoringOptions
{
    /// <summary>
    /// The text each label is scored as, in label order (e.g. <c>" networking"</c>, with the leading space most tokenizers
    /// expect after a prompt ending in <c>":"</c>); <see langword="null"/> for <c>" " + label</c>.
    /// </summary>
    /// <value>Default <see langword="null"/>.</value>
    public IReadOnlyList<string>? Verbalizations { get; init; }

    /// <summary>
    /// Contextual calibration (Zhao et al. 2021, "Calibrate Before Use"): subtract each label's log-likelihood after a
    /// content-free input (<see cref="ContentFreeInput"/>) — the model's prior for the label — so a label the model likes
    /// regardless of the text stops winning by default.
    /// </summary>
    /// <value>Default <see langword="false"/>.</value>
    public bool Calibrate { get; init; }

    /// <summary>The content-free input used for calibration.</summary>
    /// <value>Default <c>"N/A"</c>.</value>
    public string ContentFreeInput { get; init; } = "N/A";
}

/// <summary>
/// Zero-shot classification by label scoring: renders the prompt for a text, scores each label's verbalisation as its
/// continuation with a <see cref="LabelScorer"/>, and picks the most likely (optionally calibrated). No training, no
/// labelled data — the baseline every fine-tuned few-shot model has to beat.
/// </summary>
public sealed class ZeroShotClassifier
{
    private readonly LabelScorer _scorer;
    private readonly string[] _verbalizations;
    private readonly Lazy<double[]?> _prior;

    /// <summary>Creates a classifier.</summary>
    /// <param name="scorer">Scores continuations with the model.</param>
    /// <param name="prompt">The prompt, with the slot <c>{text}</c>, e.g. <c>"Text: {text}\nCategory:"</c>.</param>
    /// <param name="labels">The class labels, at least two.</param>
    /// <param name="options">Verbalisations and calibration; <see langword="null"/> for the defaults.</param>
    /// <exception cref="ArgumentException">The prompt lacks <c>{text}</c> or has other slots, fewer than two labels, duplicate labels, or a verbalisation count that differs from the label count.</exception>
    public ZeroShotClassifier(LabelScorer scorer, PromptTemplate prompt, IReadOnlyList<string> labels, LabelScoringOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(scorer);
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(labels);
        Options = options ?? new LabelScoringOptions();
        CheckTextTemplate(prompt, nameof(prompt));
        _verbalizations = CheckLabels(labels, Options);
        _scorer = scorer;
        Prompt = prompt;
        Labels = [.. labels];
        _prior = new Lazy<double[]?>(() => Options.Calibrate ? _scorer.Score(Prompt.Render(("text", Options.ContentFreeInput)), _verbalizations) : null);
    }

    /// <summary>The prompt template.</summary>
    public PromptTemplate Prompt { get; }

    /// <summary>The labels, in order.</summary>
    public IReadOnlyList<string> Labels { get; }

    /// <summary>The settings.</summary>
    public LabelScoringOptions Options { get; }

    /// <summary>The labels' log-likelihoods after the content-free input (computed once), or <see langword="null"/> without calibration.</summary>
    public IReadOnlyList<double>? Prior => _prior.Value;

    /// <summary>Classifies one text.</summary>
    /// <param name="text">The text.</param>
    /// <returns>The prediction.</returns>
    public LabelPrediction Predict(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return PredictAll([text])[0];
    }

    /// <summary>Classifies many texts, batching every (text, label) pair.</summary>
    /// <param name="texts">The texts.</param>
    /// <returns>One prediction per text, in order.</returns>
    public IReadOnlyList<LabelPrediction> PredictAll(IReadOnlyList<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        string[] prompts = [.. texts.Select(t => Prompt.Render(("text", t ?? throw new ArgumentException("A text is null.", nameof(texts)))))];
        double[][] scores = _scorer.Score(prompts, _verbalizations);
        return [.. scores.Select(s => Decide(Labels, s, _prior.Value))];
    }

    internal static LabelPrediction Decide(IReadOnlyList<string> labels, double[] scores, double[]? prior)
    {
        if (prior is not null)
        {
            for (int i = 0; i < scores.Length; i++)
            {
                scores[i] -= prior[i];
            }
        }

        int best = 0;
        for (int i = 1; i < scores.Length; i++)
        {
            if (scores[i] > scores[best])
            {
                best = i;
            }
        }

        return new LabelPrediction(labels[best], best, scores);
    }

    internal static void CheckTextTemplate(PromptTemplate prompt, string parameter)
    {
        if (prompt.Slots.Length != 1 || prompt.Slots[0] != "text")
        {
            throw new ArgumentException($"The classification prompt must have exactly one slot, {{text}}; it has {(prompt.Slots.Length == 0 ? "none" : string.Join(", ", prompt.Slots))}. Fill other slots first with PromptTemplate.Fill.", parameter);
        }
    }

    internal static string[] CheckLabels(IReadOnlyList<string> labels, LabelScoringOptions options)
    {
        if (labels.Count < 2 || labels.Any(string.IsNullOrWhiteSpace) || labels.Distinct(StringComparer.Ordinal).Count() != labels.Count)
        {
            throw new ArgumentException($"Give two or more distinct, non-empty labels; got [{string.Join(", ", labels)}].", nameof(labels));
        }

        if (options.Verbalizations is { } verbalizations && verbalizations.Count != labels.Count)
        {
            throw new ArgumentException($"There are {labels.Count} labels but {verbalizations.Count} verbalisations; give one per label, in order.", nameof(options));
        }

        return [.. options.Verbalizations ?? labels.Select(l => " " + l).ToArray()];
    }
}

/// <summary>How an <see cref="InContextClassifier"/> chooses its demonstrations.</summary>
public enum DemonstrationSelection
{
    /// <summary>The same k demonstrations for every query, drawn at random once (stratified by label), in random order.</summary>
    Random,

    /// <summary>The k demonstrations most similar to each query, least similar first so the closest sits next to the query (Liu et al. 2022).</summary>
    Similar,
}

/// <summary>Settings of an <see cref="InContextClassifier"/>.</summary>
public sealed record InContextOptions
{
    /// <summary>Demonstrations per prompt.</summary>
    /// <value>Default 4.</value>
    public int K { get; init; } = 4;

    /// <summary>How demonstrations are chosen.</summary>
    /// <value>Default <see cref="DemonstrationSelection.Similar"/>.</value>
    public DemonstrationSelection Selection { get; init; } = DemonstrationSelection.Similar;

    /// <summary>Text → vector for <see cref="DemonstrationSelection.Similar"/> (cosine similarity); <see langword="null"/> uses character 3-gram cosine (<see cref="TextSimilarity.CharacterNGramCosine"/>), which needs no model.</summary>
    /// <value>Default <see langword="null"/>.</value>
    public Func<string, float[]>? Embed { get; init; }

    /// <summary>Between demonstrations, and between the last one and the query.</summary>
    /// <value>Default a blank line.</value>
    public string Separator { get; init; } = "\n\n";

    /// <summary>The seed of random selection and order.</summary>
    /// <value>Default 42.</value>
    public int Seed { get; init; } = 42;

    /// <summary>Verbalisations and calibration, as for zero-shot classification.</summary>
    /// <value>Default: labels with a leading space, no calibration.</value>
    public LabelScoringOptions Scoring { get; init; } = new();
}

/// <summary>
/// In-context (few-shot) classification: builds a prompt from k labelled demonstrations rendered with a demonstration
/// template (slots <c>{text}</c> and <c>{label}</c>), then the query rendered with the query template (slot <c>{text}</c>),
/// and scores each label's verbalisation after it like <see cref="ZeroShotClassifier"/>.
/// </summary>
public sealed class InContextClassifier
{
    private readonly LabelScorer _scorer;
    private readonly LabeledText[] _pool;
    private readonly string[] _verbalizations;
    private readonly LabeledText[]? _fixed;
    private readonly float[][]? _poolVectors;

    /// <summary>Creates a classifier.</summary>
    /// <param name="scorer">Scores continuations with the model.</param>
    /// <param name="demonstrations">The labelled pool demonstrations are drawn from.</param>
    /// <param name="demonstrationTemplate">Renders one demonstration, slots <c>{text}</c> and <c>{label}</c>, e.g. <c>"Text: {text}\nCategory: {label}"</c>.</param>
    /// <param name="queryTemplate">Renders the query, slot <c>{text}</c>, e.g. <c>"Text: {text}\nCategory:"</c>.</param>
    /// <param name="labels">The class labels, at least two.</param>
    /// <param name="options">Settings; <see langword="null"/> for the defaults.</param>
    /// <exception cref="ArgumentException">A template has the wrong slots, the pool is smaller than k, or the labels are invalid.</exception>
    public InContextClassifier(LabelScorer scorer, IReadOnlyList<LabeledText> demonstrations, PromptTemplate demonstrationTemplate, PromptTemplate queryTemplate, IReadOnlyList<string> labels, InContextOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(scorer);
        ArgumentNullException.ThrowIfNull(demonstrations);
        ArgumentNullException.ThrowIfNull(demonstrationTemplate);
        ArgumentNullException.ThrowIfNull(queryTemplate);
        ArgumentNullException.ThrowIfNull(labels);
        Options = options ?? new InContextOptions();
        ZeroShotClassifier.CheckTextTemplate(queryTemplate, nameof(queryTemplate));
        if (demonstrationTemplate.Slots.Length != 2 || !demonstrationTemplate.Slots.Contains("text") || !demonstrationTemplate.Slots.Contains("label"))
        {
            throw new ArgumentException($"The demonstration template must have the slots {{text}} and {{label}}; it has {string.Join(", ", demonstrationTemplate.Slots)}.", nameof(demonstrationTemplate));
        }

        if (Options.K < 1 || Options.K > demonstrations.Count)
        {
            throw new ArgumentException($"InContextOptions.K is {Options.K}; use 1 to {demonstrations.Count} (the pool size).", nameof(options));
        }

        _verbalizations = ZeroShotClassifier.CheckLabels(labels, Options.Scoring);
        _scorer = scorer;
        _pool = [.. demonstrations];
        Labels = [.. labels];
        DemonstrationTemplate = demonstrationTemplate;
        QueryTemplate = queryTemplate;
        if (Options.Selection == DemonstrationSelection.Random)
        {
            IReadOnlyList<int> picked = FewShotSelection.RandomTotal(_pool.Select(d => d.Label).ToArray(), Options.K, Options.Seed);
            _fixed = [.. picked.Select(i => _pool[i])];
            Shuffle(_fixed, new Random(Options.Seed));
        }
        else if (Options.Embed is { } embed)
        {
            _poolVectors = [.. _pool.Select(d => embed(d.Text))];
        }
    }

    /// <summary>The labels, in order.</summary>
    public IReadOnlyList<string> Labels { get; }

    /// <summary>The demonstration template.</summary>
    public PromptTemplate DemonstrationTemplate { get; }

    /// <summary>The query template.</summary>
    public PromptTemplate QueryTemplate { get; }

    /// <summary>The settings.</summary>
    public InContextOptions Options { get; }

    /// <summary>The demonstrations chosen for <paramref name="text"/>, in prompt order.</summary>
    /// <param name="text">The query text.</param>
    /// <returns>k demonstrations.</returns>
    public IReadOnlyList<LabeledText> Demonstrations(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (_fixed is not null)
        {
            return _fixed;
        }

        var similarity = new double[_pool.Length];
        float[]? query = Options.Embed?.Invoke(text);
        for (int i = 0; i < _pool.Length; i++)
        {
            similarity[i] = query is null ? TextSimilarity.CharacterNGramCosine(text, _pool[i].Text) : Cosine(query, _poolVectors![i]);
        }

        // The k most similar, then least similar first: the closest demonstration ends up right before the query.
        return [.. Enumerable.Range(0, _pool.Length).OrderByDescending(i => similarity[i]).ThenBy(i => i).Take(Options.K).Reverse().Select(i => _pool[i])];
    }

    /// <summary>The full prompt for <paramref name="text"/>: demonstrations, separator, query.</summary>
    /// <param name="text">The query text.</param>
    /// <returns>The prompt the labels are scored after.</returns>
    public string BuildPrompt(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        IEnumerable<string> shots = Demonstrations(text).Select(d => DemonstrationTemplate.Render(("text", d.Text), ("label", d.Label)));
        return string.Join(Options.Separator, shots) + Options.Separator + QueryTemplate.Render(("text", text));
    }

    /// <summary>Classifies one text (with calibration, the content-free input gets the same demonstrations).</summary>
    /// <param name="text">The text.</param>
    /// <returns>The prediction.</returns>
    public LabelPrediction Predict(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return PredictAll([text])[0];
    }

    /// <summary>Classifies many texts, batching every (prompt, label) pair of all of them in one pass over the scorer.</summary>
    /// <param name="texts">The texts.</param>
    /// <returns>One prediction per text, in order.</returns>
    public IReadOnlyList<LabelPrediction> PredictAll(IReadOnlyList<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        bool calibrate = Options.Scoring.Calibrate;
        var prompts = new List<string>(texts.Count * (calibrate ? 2 : 1));
        foreach (string text in texts)
        {
            ArgumentNullException.ThrowIfNull(text, nameof(texts));
            string shots = string.Join(Options.Separator, Demonstrations(text).Select(d => DemonstrationTemplate.Render(("text", d.Text), ("label", d.Label))));
            prompts.Add(shots + Options.Separator + QueryTemplate.Render(("text", text)));
            if (calibrate)
            {
                prompts.Add(shots + Options.Separator + QueryTemplate.Render(("text", Options.Scoring.ContentFreeInput)));
            }
        }

        double[][] scores = _scorer.Score(prompts, _verbalizations);
        var result = new LabelPrediction[texts.Count];
        for (int i = 0; i < texts.Count; i++)
        {
            result[i] = calibrate
                ? ZeroShotClassifier.Decide(Labels, scores[2 * i], scores[2 * i + 1])
                : ZeroShotClassifier.Decide(Labels, scores[i], null);
        }

        return result;
    }

    private static double Cosine(float[] a, float[] b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < Math.Min(a.Length, b.Length); i++)
        {
            dot += a[i] * b[i];
            na += a[i] * a[i];
            nb += b[i] * b[i];
        }

        return na == 0 || nb == 0 ? 0 : dot / Math.Sqrt(na * nb);
    }

    private static void Shuffle(LabeledText[] items, Random random)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}
