using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Prompting;

/// <summary>Settings of a <see cref="LabelScorer"/>.</summary>
public sealed record LabelScorerOptions
{
    /// <summary>Prompt–continuation pairs per forward pass.</summary>
    /// <value>Default 8.</value>
    public int BatchSize { get; init; } = 8;

    /// <summary>The id written into padded positions (right padding; a causal model's real positions never see it).</summary>
    /// <value>Default 0.</value>
    public int PaddingId { get; init; }

    /// <summary>Divide each log-likelihood by the continuation's token count, so long label names are not penalised for their length.</summary>
    /// <value>Default <see langword="false"/> (the sum, i.e. the log-probability of the whole continuation).</value>
    public bool LengthNormalize { get; init; }

    /// <summary>The model's context length: longer prompts lose tokens from their start; <see langword="null"/> for the model's own limit where known (<see cref="Models.Gpt2Config.ContextLength"/>), else none.</summary>
    /// <value>Default <see langword="null"/>.</value>
    public int? MaxLength { get; init; }
}

/// <summary>
/// Scores continuations of prompts with a causal language model: log P(continuation | prompt) = Σ log p(token | everything
/// before it), batched, under <c>torch.no_grad()</c> and in evaluation mode (the model's mode is restored afterwards). The
/// basis of zero-shot and in-context classification: the label whose verbalisation is most likely wins.
/// </summary>
public sealed class LabelScorer
{
    private readonly nn.Module _model;
    private readonly Func<string, int[]> _tokenize;
    private readonly int? _maxLength;

    /// <summary>Creates a scorer.</summary>
    /// <param name="model">A causal LM: a <c>Module&lt;Tensor, Tensor&gt;</c> (ids [B, T] → logits [B, T, V]) or a <c>Module&lt;Tensor, Tensor, Tensor&gt;</c> that also takes the attention mask.</param>
    /// <param name="tokenize">The model's tokenizer (text → ids).</param>
    /// <param name="options">Settings; <see langword="null"/> for the defaults.</param>
    /// <exception cref="ArgumentException"><paramref name="model"/> has neither forward signature, or an option is out of range.</exception>
    public LabelScorer(nn.Module model, Func<string, int[]> tokenize, LabelScorerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenize);
        if (model is not nn.Module<Tensor, Tensor> && model is not nn.Module<Tensor, Tensor, Tensor>)
        {
            throw new ArgumentException($"The model ({model.GetType().Name}) must be a Module<Tensor, Tensor> (ids → logits [B, T, V]) or a Module<Tensor, Tensor, Tensor> (ids, mask → logits).", nameof(model));
        }

        Options = options ?? new LabelScorerOptions();
        if (Options.BatchSize < 1 || Options.PaddingId < 0 || Options.MaxLength is < 2)
        {
            throw new ArgumentException($"Invalid LabelScorerOptions: BatchSize {Options.BatchSize} (≥ 1), PaddingId {Options.PaddingId} (≥ 0), MaxLength {Options.MaxLength?.ToString() ?? "null"} (≥ 2 or null).", nameof(options));
        }

        _model = model;
        _tokenize = tokenize;
        _maxLength = Options.MaxLength ?? (model as Models.Gpt2LMHeadModel)?.Config.ContextLength;
    }

    /// <summary>The settings.</summary>
    public LabelScorerOptions Options { get; }

    /// <summary>Scores every continuation after one prompt.</summary>
    /// <param name="prompt">The prompt (must tokenise to at least one token).</param>
    /// <param name="continuations">The candidate continuations, e.g. <c>" networking"</c>, <c>" hardware"</c>.</param>
    /// <returns>One log-likelihood per continuation (length-normalised if so configured).</returns>
    /// <exception cref="ArgumentException">The prompt or a continuation has no tokens.</exception>
    public double[] Score(string prompt, IReadOnlyList<string> continuations)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        return Score([prompt], continuations)[0];
    }

    /// <summary>Scores every continuation after every prompt, batching all pairs.</summary>
    /// <param name="prompts">The prompts.</param>
    /// <param name="continuations">The continuations, the same for every prompt.</param>
    /// <returns><c>[prompt][continuation]</c> log-likelihoods.</returns>
    /// <exception cref="ArgumentException">A prompt or continuation has no tokens, or there is no continuation.</exception>
    public double[][] Score(IReadOnlyList<string> prompts, IReadOnlyList<string> continuations)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(continuations);
        if (continuations.Count == 0)
        {
            throw new ArgumentException("Give at least one continuation (label verbalisation) to score.", nameof(continuations));
        }

        int[][] endings = [.. continuations.Select((c, i) => Encode(c, $"continuation {i} ('{c}')", nameof(continuations)))];
        var pairs = new List<(int[] Prompt, int[] Ending)>(prompts.Count * endings.Length);
        foreach (string prompt in prompts)
        {
            int[] ids = Encode(prompt ?? throw new ArgumentException("A prompt is null.", nameof(prompts)), "the prompt", nameof(prompts));
            foreach (int[] ending in endings)
            {
                pairs.Add((ids, ending));
            }
        }

        double[] flat = ScorePairs(pairs);
        var result = new double[prompts.Count][];
        for (int p = 0; p < prompts.Count; p++)
        {
            result[p] = flat.AsSpan(p * endings.Length, endings.Length).ToArray();
        }

        return result;
    }

    private int[] Encode(string text, string what, string parameter)
    {
        int[] ids = _tokenize(text);
        if (ids is null || ids.Length == 0)
        {
            throw new ArgumentException($"{char.ToUpperInvariant(what[0])}{what[1..]} tokenises to no tokens; scoring needs at least one (start label verbalisations with a space, e.g. \" yes\").", parameter);
        }

        return ids;
    }

    private double[] ScorePairs(List<(int[] Prompt, int[] Ending)> pairs)
    {
        var scores = new double[pairs.Count];
        bool training = _model.training;
        _model.eval();
        try
        {
            using var noGrad = torch.no_grad();
            for (int start = 0; start < pairs.Count; start += Options.BatchSize)
            {
                int rows = Math.Min(Options.BatchSize, pairs.Count - start);
                ScoreBatch(pairs, start, rows, scores);
            }
        }
        finally
        {
            if (training)
            {
                _model.train();
            }
        }

        return scores;
    }

    private void ScoreBatch(List<(int[] Prompt, int[] Ending)> pairs, int start, int rows, double[] scores)
    {
        var sequences = new int[rows][];
        var promptLengths = new int[rows];
        int width = 0;
        for (int r = 0; r < rows; r++)
        {
            (int[] prompt, int[] ending) = pairs[start + r];
            if (_maxLength is { } max && prompt.Length + ending.Length > max)
            {
                int keep = Math.Max(1, max - ending.Length);
                prompt = prompt[^keep..];
                ending = ending[..Math.Min(ending.Length, max - keep)];
            }

            sequences[r] = [.. prompt, .. ending];
            promptLengths[r] = prompt.Length;
            width = Math.Max(width, sequences[r].Length);
        }

        var ids = new long[rows * width];
        var mask = new long[rows * width];
        var targets = new long[rows * width];
        var weights = new float[rows * width];
        Array.Fill(ids, Options.PaddingId);
        for (int r = 0; r < rows; r++)
        {
            int[] sequence = sequences[r];
            int offset = r * width;
            for (int t = 0; t < sequence.Length; t++)
            {
                ids[offset + t] = sequence[t];
                mask[offset + t] = 1;
            }

            // Logits at t predict token t + 1: the continuation's tokens are predicted from positions P − 1 … L − 2.
            int count = sequence.Length - promptLengths[r];
            for (int t = promptLengths[r] - 1; t < sequence.Length - 1; t++)
            {
                targets[offset + t] = sequence[t + 1];
                weights[offset + t] = Options.LengthNormalize ? 1f / count : 1f;
            }
        }

        using var scope = torch.NewDisposeScope();
        Device device = _model.parameters().FirstOrDefault()?.device ?? torch.CPU;
        Tensor input = torch.tensor(ids, [rows, width], device: device);
        Tensor logits = _model is nn.Module<Tensor, Tensor, Tensor> masked
            ? masked.forward(input, torch.tensor(mask, [rows, width], device: device))
            : ((nn.Module<Tensor, Tensor>)_model).forward(input);
        if (logits.dim() != 3 || logits.shape[0] != rows || logits.shape[1] != width)
        {
            throw new InvalidOperationException($"Label scoring expects logits [batch, time, vocabulary] = [{rows}, {width}, V]; the model returned [{string.Join(", ", logits.shape)}].");
        }

        Tensor logProbabilities = logits.to_type(ScalarType.Float32).log_softmax(-1);
        Tensor picked = logProbabilities.gather(2, torch.tensor(targets, [rows, width, 1], device: device)).squeeze(-1);
        Tensor rowScores = (picked * torch.tensor(weights, [rows, width], device: device)).sum(1).to(torch.CPU);
        float[] values = rowScores.data<float>().ToArray();
        for (int r = 0; r < rows; r++)
        {
            scores[start + r] = values[r];
        }
    }
}
