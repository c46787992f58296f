using NicheTune.Training;

namespace NicheTune.Prompting;

/// <summary>One instruction-tuning example: what to do, optional context, and the answer the model should learn.</summary>
/// <param name="Instruction">The task, e.g. "Classify the FOLDOC entry.".</param>
/// <param name="Output">The desired response; the only part that carries a loss.</param>
/// <param name="Input">Optional context for the instruction (the text to work on), or <see langword="null"/>.</param>
public sealed record InstructionExample(string Instruction, string Output, string? Input = null);

/// <summary>Renders an <see cref="InstructionExample"/> as prompt text and response text (an instruction-tuning format).</summary>
public interface IInstructionFormat
{
    /// <summary>The format's name, for logs.</summary>
    string Name { get; }

    /// <summary>The text the model reads: everything before the response (no loss on it).</summary>
    /// <param name="example">The example.</param>
    /// <returns>The prompt text.</returns>
    string RenderPrompt(InstructionExample example);

    /// <summary>The text the model learns to write, with the format's end marker where it has one.</summary>
    /// <param name="example">The example.</param>
    /// <returns>The response text.</returns>
    string RenderResponse(InstructionExample example);
}

/// <summary>The built-in instruction formats.</summary>
public static class InstructionFormats
{
    /// <summary>
    /// Stanford Alpaca's format: a preamble, <c>### Instruction:</c>, optionally <c>### Input:</c>, then <c>### Response:</c>
    /// followed by the output.
    /// </summary>
    /// <returns>The format.</returns>
    public static IInstructionFormat Alpaca() => AlpacaFormat.Instance;

    /// <summary>
    /// A ChatML-like chat rendering: <c>&lt;|im_start|&gt;system … &lt;|im_end|&gt;</c>, a user turn with the instruction (and
    /// the input after a blank line), then the assistant turn; the response ends with <c>&lt;|im_end|&gt;</c> so the model
    /// learns where to stop. With a tokenizer that lacks these special tokens they are ordinary text.
    /// </summary>
    /// <param name="systemPrompt">The system turn, or <see langword="null"/> for none.</param>
    /// <returns>The format.</returns>
    public static IInstructionFormat ChatMl(string? systemPrompt = null) => new ChatMlFormat(systemPrompt);

    private sealed class AlpacaFormat : IInstructionFormat
    {
        public static readonly AlpacaFormat Instance = new();

        public string Name => "alpaca";

        public string RenderPrompt(InstructionExample example)
        {
            ArgumentNullException.ThrowIfNull(example);
            return string.IsNullOrEmpty(example.Input)
                ? "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n" +
                  $"### Instruction:\n{example.Instruction}\n\n### Response:\n"
                : "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n" +
                  $"### Instruction:\n{example.Instruction}\n\n### Input:\n{example.Input}\n\n### Response:\n";
        }

        public string RenderResponse(InstructionExample example)
        {
            ArgumentNullException.ThrowIfNull(example);
            return example.Output;
        }
    }

    private sealed class ChatMlFormat(string? systemPrompt) : IInstructionFormat
    {
        public string Name => "chatml";

        public string RenderPrompt(InstructionExample example)
        {
            ArgumentNullException.ThrowIfNull(example);
            string system = systemPrompt is null ? string.Empty : $"<|im_start|>system\n{systemPrompt}<|im_end|>\n";
            string user = string.IsNullOrEmpty(example.Input) ? example.Instruction : example.Instruction + "\n\n" + example.Input;
            return $"{system}<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n";
        }

        public string RenderResponse(InstructionExample example)
        {
            ArgumentNullException.ThrowIfNull(example);
            return example.Output + "<|im_end|>";
        }
    }
}

/// <summary>
/// Turns instruction examples into <see cref="TokenExample"/>s for the causal language-modelling objective with the loss on
/// the response only: <see cref="TokenExample.TokenLabels"/> is <see cref="TokenBatch.IgnoreIndex"/> over the prompt and
/// the token ids over the response (and the end-of-text token, when given).
/// </summary>
public static class InstructionTuning
{
    /// <summary>Tokenises one example. Prompt and response are tokenised separately, so the boundary is exact for any tokenizer.</summary>
    /// <param name="example">The example.</param>
    /// <param name="format">The format, e.g. <see cref="InstructionFormats.Alpaca"/>.</param>
    /// <param name="tokenize">The model's tokenizer (text → ids, no special tokens added).</param>
    /// <param name="endOfTextId">Appended after the response (and learned), so the model learns to stop; <see langword="null"/> for none.</param>
    /// <param name="maxLength">At most this many tokens: the prompt loses tokens from its start first (its end, the response header, stays), then the response from its end.</param>
    /// <returns>The example with response-only labels.</returns>
    /// <exception cref="ArgumentException">The response renders to no tokens (nothing to learn), or <paramref name="maxLength"/> is below 2.</exception>
    public static TokenExample Tokenize(InstructionExample example, IInstructionFormat format, Func<string, int[]> tokenize, int? endOfTextId = null, int? maxLength = null)
    {
        ArgumentNullException.ThrowIfNull(example);
        ArgumentNullException.ThrowIfNull(format);
        ArgumentNullException.ThrowIfNull(tokenize);
        if (maxLength is < 2)
        {
            throw new ArgumentException($"maxLength is {maxLength}; an instruction example needs at least one prompt and one response token.", nameof(maxLength));
        }

        int[] prompt = tokenize(format.RenderPrompt(example));
        int[] response = tokenize(format.RenderResponse(example));
        if (endOfTextId is { } end)
        {
            response = [.. response, end];
        }

        if (response.Length == 0)
        {
            throw new ArgumentException($"The response of instruction '{Shorten(example.Instruction)}' has no tokens; every example needs an output to learn.", nameof(example));
        }

        if (maxLength is { } max && prompt.Length + response.Length > max)
        {
            int keepResponse = Math.Min(response.Length, max - Math.Min(prompt.Length, 1));
            int keepPrompt = max - keepResponse;
            prompt = prompt[^keepPrompt..];
            response = response[..keepResponse];
        }

        var ids = new int[prompt.Length + response.Length];
        var labels = new int[ids.Length];
        prompt.CopyTo(ids, 0);
        response.CopyTo(ids, prompt.Length);
        Array.Fill(labels, TokenBatch.IgnoreIndex, 0, prompt.Length);
        response.CopyTo(labels, prompt.Length);
        return new TokenExample(ids) { TokenLabels = labels };
    }

    /// <summary>Tokenises many examples; see <see cref="Tokenize(InstructionExample, IInstructionFormat, Func{string, int[]}, int?, int?)"/>.</summary>
    /// <param name="examples">The examples.</param>
    /// <param name="format">The format.</param>
    /// <param name="tokenize">The tokenizer.</param>
    /// <param name="endOfTextId">The end-of-text id, or <see langword="null"/>.</param>
    /// <param name="maxLength">The length limit, or <see langword="null"/>.</param>
    /// <returns>One token example per instruction example, in order.</returns>
    public static List<TokenExample> Tokenize(IEnumerable<InstructionExample> examples, IInstructionFormat format, Func<string, int[]> tokenize, int? endOfTextId = null, int? maxLength = null)
    {
        ArgumentNullException.ThrowIfNull(examples);
        return [.. examples.Select(e => Tokenize(e, format, tokenize, endOfTextId, maxLength))];
    }

    private static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "…";
}
