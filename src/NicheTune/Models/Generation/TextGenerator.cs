using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Models;

/// <summary>
/// Generates token ids with any <see cref="ICausalLanguageModel"/> (GPT-2, the Llama family): greedy decoding or
/// seeded sampling with temperature, top-k, top-p and a repetition penalty, using a <see cref="KeyValueCache"/> so
/// each new token costs one position of work.
/// </summary>
/// <remarks>
/// <para>Generation runs under <c>torch.no_grad()</c> with the model in evaluation mode (dropout off); a module's
/// previous training mode is restored afterwards.</para>
/// <para>Context length: the prompt plus <see cref="GenerationOptions.MaxNewTokens"/> must fit
/// <see cref="ICausalLanguageModel.ContextLength"/>; otherwise generation fails up front with an
/// <see cref="ArgumentException"/> (there is no sliding truncation: with rotary or learned positions the cached keys
/// could not be shifted without recomputing them). Shorten the prompt or ask for fewer tokens.</para>
/// <para>Sampling draws from a <see cref="Random"/> seeded with <see cref="GenerationOptions.Seed"/> over the
/// probabilities copied to the host, so a seed gives the same tokens on every device and is independent of
/// torch's global generator.</para>
/// </remarks>
public static class TextGenerator
{
    /// <summary>Continues one prompt.</summary>
    /// <param name="model">The model; a TorchSharp module is put in evaluation mode for the call.</param>
    /// <param name="promptIds">The prompt's token ids (at least one), each in [0, vocabulary size).</param>
    /// <param name="options">How to pick tokens; <see langword="null"/> means greedy with the defaults.</param>
    /// <returns>The new tokens and why generation stopped.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="model"/> or <paramref name="promptIds"/> is null.</exception>
    /// <exception cref="ArgumentException">The options are invalid, the prompt is empty or holds an id outside the vocabulary, or prompt plus new tokens exceed the context length.</exception>
    /// <exception cref="InvalidOperationException">Sampling found no token with a positive probability (the model returned NaN or −∞ logits).</exception>
    public static GeneratedSequence Generate(ICausalLanguageModel model, IReadOnlyList<int> promptIds, GenerationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(promptIds);
        return GenerateBatch(model, [promptIds], options)[0];
    }

    /// <summary>
    /// Continues several prompts. Prompts of equal length are decoded together as one batch (rows that hit a stop
    /// token are finished while the others go on); groups of different lengths run one after another, because
    /// positions are shared across a batch and there is no left padding. Results come back in prompt order.
    /// </summary>
    /// <param name="model">The model; a TorchSharp module is put in evaluation mode for the call.</param>
    /// <param name="prompts">The prompts, each with at least one id in [0, vocabulary size).</param>
    /// <param name="options">How to pick tokens; <see langword="null"/> means greedy with the defaults.</param>
    /// <returns>One result per prompt, in order. With sampling, the same seed and the same list of prompts give the same results.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="model"/> or <paramref name="prompts"/> is null.</exception>
    /// <exception cref="ArgumentException">
    /// The options are invalid, there are no prompts, a prompt is empty or holds an id outside the vocabulary, or a
    /// prompt plus the new tokens exceeds the context length.
    /// </exception>
    /// <exception cref="InvalidOperationException">Sampling found no token with a positive probability (the model returned NaN or −∞ logits).</exception>
    public static IReadOnlyList<GeneratedSequence> GenerateBatch(
        ICausalLanguageModel model, IReadOnlyList<IReadOnlyList<int>> prompts, GenerationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prompts);
        options ??= new GenerationOptions();
        options.Validate();
        ValidatePrompts(model, prompts, options);

        var module = model as nn.Module;
        var wasTraining = module?.training ?? false;
        module?.eval();
        try
        {
            using var noGrad = torch.no_grad();
            var random = options.Sample ? (options.Seed is { } seed ? new Random(seed) : new Random()) : null;
            var results = new GeneratedSequence[prompts.Count];
            foreach (var group in Enumerable.Range(0, prompts.Count).GroupBy(i => prompts[i].Count))
            {
                var rows = group.ToArray();
                var decoded = Decode(model, module, rows.Select(i => prompts[i]).ToArray(), group.Key, options, random);
                for (var r = 0; r < rows.Length; r++)
                {
                    results[rows[r]] = decoded[r];
                }
            }

            return results;
        }
        finally
        {
            module?.train(wasTraining);
        }
    }

    private static GeneratedSequence[] Decode(
        ICausalLanguageModel model, nn.Module? module, IReadOnlyList<IReadOnlyList<int>> prompts, int promptLength, GenerationOptions options, Random? random)
    {
        var batch = prompts.Count;
        var device = ModelDevice(module);
        var stopIds = new HashSet<int>(options.StopTokenIds);
        var outputs = new List<int>[batch];
        var finished = new bool[batch];
        for (var b = 0; b < batch; b++)
        {
            outputs[b] = new List<int>(options.MaxNewTokens);
        }

        var input = new long[batch * promptLength];
        for (var b = 0; b < batch; b++)
        {
            for (var t = 0; t < promptLength; t++)
            {
                input[(b * promptLength) + t] = prompts[b][t];
            }
        }

        using var cache = new KeyValueCache(model.LayerCount, promptLength + options.MaxNewTokens);
        Tensor? seen = null;
        try
        {
            var inputLength = promptLength;
            var next = new long[batch];
            for (var step = 0; step < options.MaxNewTokens; step++)
            {
                using var scope = torch.NewDisposeScope();
                var ids = torch.tensor(input, [batch, inputLength], dtype: ScalarType.Int64, device: device);
                var scores = model.NextTokenLogits(ids, cache).to_type(ScalarType.Float32);
                if (options.RepetitionPenalty != 1.0)
                {
                    if (seen is null)
                    {
                        seen = torch.zeros([batch, model.VocabularySize], dtype: ScalarType.Bool, device: device).DetachFromDisposeScope();
                        seen.scatter_(1, ids, torch.ones_like(ids, dtype: ScalarType.Bool));
                    }

                    scores = LogitsFilters.RepetitionPenalty(scores, seen, options.RepetitionPenalty);
                }

                Choose(scores, options, random, next);

                var active = false;
                for (var b = 0; b < batch; b++)
                {
                    if (finished[b])
                    {
                        continue;
                    }

                    var token = (int)next[b];
                    outputs[b].Add(token);
                    finished[b] = stopIds.Contains(token);
                    active |= !finished[b];
                }

                if (!active || step == options.MaxNewTokens - 1)
                {
                    break;
                }

                if (seen is not null)
                {
                    using var chosen = torch.tensor(next, [batch, 1], dtype: ScalarType.Int64, device: device);
                    seen.scatter_(1, chosen, torch.ones_like(chosen, dtype: ScalarType.Bool));
                }

                // Finished rows keep being fed (their output is ignored) so the batch keeps its shape.
                input = (long[])next.Clone();
                inputLength = 1;
            }
        }
        finally
        {
            seen?.Dispose();
        }

        var results = new GeneratedSequence[batch];
        for (var b = 0; b < batch; b++)
        {
            results[b] = new GeneratedSequence(outputs[b].ToArray(), finished[b] ? GenerationStopReason.StopToken : GenerationStopReason.MaxNewTokens);
        }

        return results;
    }

    private static void Choose(Tensor scores, GenerationOptions options, Random? random, long[] next)
    {
        if (random is null)
        {
            var argmax = scores.argmax(-1).cpu().data<long>();
            argmax.CopyTo(next, 0);
            return;
        }

        if (options.Temperature != 1.0)
        {
            using Scalar temperature = options.Temperature.ToScalar();
            scores = scores.div(temperature);
        }

        if (options.TopK is { } k)
        {
            scores = LogitsFilters.TopK(scores, k);
        }

        if (options.TopP < 1.0)
        {
            scores = LogitsFilters.TopP(scores, options.TopP);
        }

        var probabilities = scores.softmax(-1).cpu();
        var vocabulary = (int)probabilities.size(1);
        var values = probabilities.data<float>().ToArray();
        for (var b = 0; b < next.Length; b++)
        {
            next[b] = LogitsFilters.SampleIndex(values.AsSpan(b * vocabulary, vocabulary), random);
        }
    }

    private static void ValidatePrompts(ICausalLanguageModel model, IReadOnlyList<IReadOnlyList<int>> prompts, GenerationOptions options)
    {
        if (prompts.Count == 0)
        {
            throw new ArgumentException("prompts is empty; pass at least one prompt.", nameof(prompts));
        }

        for (var b = 0; b < prompts.Count; b++)
        {
            var prompt = prompts[b] ?? throw new ArgumentException($"prompts[{b}] is null.", nameof(prompts));
            if (prompt.Count == 0)
            {
                throw new ArgumentException($"prompts[{b}] is empty; a prompt needs at least one token (e.g. the BOS token).", nameof(prompts));
            }

            for (var t = 0; t < prompt.Count; t++)
            {
                if (prompt[t] < 0 || prompt[t] >= model.VocabularySize)
                {
                    throw new ArgumentException(
                        $"prompts[{b}][{t}] is {prompt[t]}, outside the model's vocabulary [0, {model.VocabularySize}); check that the tokenizer matches the model.",
                        nameof(prompts));
                }
            }

            if ((long)prompt.Count + options.MaxNewTokens > model.ContextLength)
            {
                throw new ArgumentException(
                    $"The prompt ({prompt.Count} tokens) plus MaxNewTokens ({options.MaxNewTokens}) exceeds the model's context length ({model.ContextLength}); " +
                    $"shorten the prompt to at most {Math.Max(0, model.ContextLength - options.MaxNewTokens)} tokens or lower MaxNewTokens.",
                    nameof(prompts));
            }
        }
    }

    private static Device ModelDevice(nn.Module? module)
    {
        if (module is not null)
        {
            foreach (var parameter in module.parameters())
            {
                return parameter.device;
            }
        }

        return torch.CPU;
    }
}

/// <summary>The logits transformations of HF's <c>generate</c>, on scores [B, V].</summary>
internal static class LogitsFilters
{
    /// <summary>HF's <c>RepetitionPenaltyLogitsProcessor</c>: for seen tokens, positive scores / penalty, negative × penalty.</summary>
    public static Tensor RepetitionPenalty(Tensor scores, Tensor seen, double penalty)
    {
        using Scalar factor = penalty.ToScalar();
        var penalized = torch.where(scores.lt(Scalars.Zero), scores.mul(factor), scores.div(factor));
        return torch.where(seen, penalized, scores);
    }

    /// <summary>HF's <c>TopKLogitsWarper</c>: −∞ for every score below the k-th largest of its row.</summary>
    public static Tensor TopK(Tensor scores, int k)
    {
        var keep = (int)Math.Min(k, scores.size(-1));
        var kth = scores.topk(keep, -1).values.narrow(-1, keep - 1, 1);
        return scores.masked_fill(scores.lt(kth), Scalars.NegativeInfinity);
    }

    /// <summary>
    /// HF's <c>TopPLogitsWarper</c>: sort ascending, drop the tokens whose cumulative probability stays at or below
    /// 1 − p (always keeping the most likely one), so the kept set is the smallest whose mass reaches p.
    /// </summary>
    public static Tensor TopP(Tensor scores, double p)
    {
        var (sorted, indices) = scores.sort(-1, descending: false);
        var cumulative = sorted.softmax(-1).cumsum(-1);
        using Scalar rest = (1 - p).ToScalar();
        var removeSorted = cumulative.le(rest);
        removeSorted.narrow(-1, removeSorted.size(-1) - 1, 1).fill_(Scalars.False);
        var remove = removeSorted.scatter(-1, indices, removeSorted);
        return scores.masked_fill(remove, Scalars.NegativeInfinity);
    }

    /// <summary>Inverse-CDF sampling of one index from (unnormalised, non-negative) probabilities; never returns a zero-probability index.</summary>
    public static int SampleIndex(ReadOnlySpan<float> probabilities, Random random)
    {
        double total = 0;
        var last = -1;
        for (var i = 0; i < probabilities.Length; i++)
        {
            if (probabilities[i] > 0)
            {
                total += probabilities[i];
                last = i;
            }
        }

        if (last < 0)
        {
            throw new InvalidOperationException("Every token has probability 0 (the logits are all −∞ or NaN); check the model's output and the filters.");
        }

        var threshold = random.NextDouble() * total;
        double cumulative = 0;
        for (var i = 0; i < last; i++)
        {
            if (probabilities[i] > 0)
            {
                cumulative += probabilities[i];
                if (cumulative > threshold)
                {
                    return i;
                }
            }
        }

        return last;
    }
}
