using System;
using System.Collections.Generic;
using System.Globalization;

namespace NicheTune.Models;

/// <summary>
/// How <see cref="TextGenerator"/> picks tokens: greedy (the default) or sampling with temperature, top-k and
/// nucleus (top-p) filtering, plus a repetition penalty, stop tokens and a length limit. Values follow
/// Hugging Face's <c>generate</c> definitions so that settings carry over.
/// </summary>
/// <remarks>
/// Filters apply in HF's order: repetition penalty, then (when sampling) temperature, top-k, top-p.
/// Immutable; call <see cref="Validate"/> (<see cref="TextGenerator"/> does) to check the values.
/// </remarks>
public sealed class GenerationOptions
{
    /// <summary>The most tokens to generate per sequence (HF <c>max_new_tokens</c>); prompt plus this must fit the model's context length.</summary>
    /// <value>Default 32.</value>
    public int MaxNewTokens { get; init; } = 32;

    /// <summary>Whether to sample from the filtered distribution (HF <c>do_sample</c>); <see langword="false"/> picks the most likely token (greedy).</summary>
    /// <value>Default <see langword="false"/>.</value>
    public bool Sample { get; init; }

    /// <summary>Divides the logits before sampling: below 1 sharpens, above 1 flattens. Ignored by greedy decoding.</summary>
    /// <value>Default 1.</value>
    public double Temperature { get; init; } = 1.0;

    /// <summary>When sampling, keep only the <c>TopK</c> most likely tokens (ties with the k-th are kept, as in HF); <see langword="null"/> disables it.</summary>
    /// <value>Default <see langword="null"/>.</value>
    public int? TopK { get; init; }

    /// <summary>When sampling, keep the smallest set of most likely tokens whose probability reaches <c>TopP</c> (nucleus sampling); 1 disables it.</summary>
    /// <value>Default 1.</value>
    public double TopP { get; init; } = 1.0;

    /// <summary>
    /// HF's repetition penalty (Keskar et al. 2019): every token already in the prompt or output has a positive logit
    /// divided by the penalty and a negative one multiplied by it; 1 disables it, above 1 discourages repeats.
    /// </summary>
    /// <value>Default 1.</value>
    public double RepetitionPenalty { get; init; } = 1.0;

    /// <summary>Token ids that end a sequence (e.g. <see cref="LlamaConfig.EosTokenIds"/>); the stop token is included in the output.</summary>
    /// <value>Default empty.</value>
    public IReadOnlyList<int> StopTokenIds { get; init; } = [];

    /// <summary>Seed of the sampler's random numbers: the same seed, model and prompt give the same output. <see langword="null"/> draws a fresh seed. Ignored by greedy decoding.</summary>
    /// <value>Default <see langword="null"/>.</value>
    public int? Seed { get; init; }

    /// <summary>Checks every value and reports all problems in one exception.</summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names each property, the value seen and the valid range.</exception>
    public void Validate()
    {
        var problems = new List<(string Property, string Message)>();
        if (MaxNewTokens < 1)
        {
            problems.Add((nameof(MaxNewTokens), $"{nameof(MaxNewTokens)} ({MaxNewTokens}) must be at least 1."));
        }

        if (!(Temperature > 0) || double.IsInfinity(Temperature))
        {
            problems.Add((nameof(Temperature), $"{nameof(Temperature)} ({Format(Temperature)}) must be a finite value > 0; use Sample = false for greedy decoding."));
        }

        if (TopK is { } k && k < 1)
        {
            problems.Add((nameof(TopK), $"{nameof(TopK)} ({k}) must be at least 1, or null to disable top-k filtering."));
        }

        if (!(TopP > 0 && TopP <= 1))
        {
            problems.Add((nameof(TopP), $"{nameof(TopP)} ({Format(TopP)}) must be in (0, 1]; use 1 to disable nucleus filtering."));
        }

        if (!(RepetitionPenalty > 0) || double.IsInfinity(RepetitionPenalty))
        {
            problems.Add((nameof(RepetitionPenalty), $"{nameof(RepetitionPenalty)} ({Format(RepetitionPenalty)}) must be a finite value > 0; use 1 for no penalty."));
        }

        if (StopTokenIds is null)
        {
            problems.Add((nameof(StopTokenIds), $"{nameof(StopTokenIds)} must not be null; use an empty list for no stop tokens."));
        }

        if (problems.Count > 0)
        {
            throw new ArgumentException(
                "Invalid GenerationOptions: " + string.Join(" ", problems.ConvertAll(p => p.Message)),
                problems[0].Property);
        }
    }

    private static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}

/// <summary>Why generation of a sequence ended.</summary>
public enum GenerationStopReason
{
    /// <summary>The sequence reached <see cref="GenerationOptions.MaxNewTokens"/>.</summary>
    MaxNewTokens,

    /// <summary>The sequence produced one of <see cref="GenerationOptions.StopTokenIds"/> (the last token of the output).</summary>
    StopToken,
}

/// <summary>The tokens generated after one prompt and why generation stopped.</summary>
/// <param name="Tokens">The new token ids only (not the prompt), including the stop token when there was one.</param>
/// <param name="StopReason">Whether a stop token or the length limit ended the sequence.</param>
public sealed record GeneratedSequence(IReadOnlyList<int> Tokens, GenerationStopReason StopReason);
