using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Training;

/// <summary>
/// A tokenised example: input ids and, for classification, a class label. The unit the built-in collator
/// and objectives (causal language modelling, sequence classification) work with.
/// </summary>
/// <param name="InputIds">Token ids of the text; must not be empty.</param>
/// <param name="Label">Class index for sequence classification; <see langword="null"/> for language modelling.</param>
public sealed record TokenExample(int[] InputIds, int? Label = null)
{
    /// <summary>
    /// Per-token language-modelling labels aligned with <see cref="InputIds"/> (the objective shifts them, as it shifts the
    /// ids): the token id where the position is learned, <see cref="TokenBatch.IgnoreIndex"/> where it is not — e.g. an
    /// instruction's prompt, so the loss covers only the response. <see langword="null"/> (default): every token is learned.
    /// </summary>
    /// <value>Default <see langword="null"/>; when set, the same length as <see cref="InputIds"/>.</value>
    public int[]? TokenLabels { get; init; }
}

/// <summary>
/// A padded batch of token sequences: input ids [B, T], attention mask [B, T] (1 = real token) and labels
/// ([B, T] token targets with <see cref="IgnoreIndex"/> at padding for language modelling, or [B] class labels).
/// </summary>
public sealed class TokenBatch : ITrainingBatch
{
    /// <summary>The label value that losses and metrics skip (padding, prompt tokens).</summary>
    public const int IgnoreIndex = -100;

    /// <summary>Creates a batch from tensors it takes ownership of.</summary>
    /// <param name="inputIds">int64 [B, T].</param>
    /// <param name="attentionMask">int64 [B, T], 1 for real tokens and 0 for padding.</param>
    /// <param name="labels">int64 [B, T] token targets or [B] class labels.</param>
    /// <param name="tokenCount">Number of real tokens, counted on the host.</param>
    public TokenBatch(Tensor inputIds, Tensor attentionMask, Tensor labels, long tokenCount)
        : this(inputIds, attentionMask, labels, tokenCount, null)
    {
    }

    /// <summary>Creates a batch from tensors it takes ownership of, with the number of next-token targets that carry a label.</summary>
    /// <param name="inputIds">int64 [B, T].</param>
    /// <param name="attentionMask">int64 [B, T], 1 for real tokens and 0 for padding.</param>
    /// <param name="labels">int64 [B, T] token targets or [B] class labels.</param>
    /// <param name="tokenCount">Number of real tokens, counted on the host.</param>
    /// <param name="targetCount">Number of shifted next-token targets that are not <see cref="IgnoreIndex"/> (masked prompts), or <see langword="null"/> when every real token after the first is a target.</param>
    public TokenBatch(Tensor inputIds, Tensor attentionMask, Tensor labels, long tokenCount, long? targetCount)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        ArgumentNullException.ThrowIfNull(attentionMask);
        ArgumentNullException.ThrowIfNull(labels);
        InputIds = inputIds;
        AttentionMask = attentionMask;
        Labels = labels;
        TokenCount = tokenCount;
        ExampleCount = inputIds.shape[0];
        TargetCount = targetCount;
    }

    /// <summary>Token ids, int64 [B, T].</summary>
    public Tensor InputIds { get; private set; }

    /// <summary>1 for real tokens, 0 for padding, int64 [B, T].</summary>
    public Tensor AttentionMask { get; private set; }

    /// <summary>Targets: int64 [B, T] (language modelling, <see cref="IgnoreIndex"/> at padding) or [B] (classification).</summary>
    public Tensor Labels { get; private set; }

    /// <inheritdoc />
    public long ExampleCount { get; }

    /// <inheritdoc />
    public long TokenCount { get; }

    /// <summary>
    /// For language modelling with per-token labels: how many next-token targets carry a label (what the mean loss averages
    /// over); <see langword="null"/> when every real token after the first is a target (<see cref="TokenCount"/> − rows).
    /// </summary>
    public long? TargetCount { get; }

    /// <summary>Moves the batch's tensors to <paramref name="device"/> (no-op when already there).</summary>
    /// <param name="device">The target device.</param>
    public void MoveTo(Device device)
    {
        if (InputIds.device == device)
        {
            return;
        }

        InputIds = Replace(InputIds, device);
        AttentionMask = Replace(AttentionMask, device);
        Labels = Replace(Labels, device);
    }

    private static Tensor Replace(Tensor tensor, Device device)
    {
        Tensor moved = tensor.to(device);
        tensor.Dispose();
        return moved;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        InputIds.Dispose();
        AttentionMask.Dispose();
        Labels.Dispose();
    }
}

/// <summary>
/// Pads <see cref="TokenExample"/>s on the right into a <see cref="TokenBatch"/>: labels are the input ids
/// (language modelling; the objective shifts them) — or the examples' <see cref="TokenExample.TokenLabels"/> where given, so
/// masked positions carry <see cref="TokenBatch.IgnoreIndex"/> — or the examples' class labels (classification).
/// </summary>
public sealed class TokenCollator : ICollator<TokenExample, TokenBatch>
{
    /// <summary>Creates a collator.</summary>
    /// <param name="paddingId">The id written into padded input positions (their labels are <see cref="TokenBatch.IgnoreIndex"/>).</param>
    /// <param name="maxLength">Longer examples are truncated to this many tokens; <see langword="null"/> keeps every token.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="paddingId"/> is negative or <paramref name="maxLength"/> is below 1.</exception>
    public TokenCollator(int paddingId = 0, int? maxLength = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(paddingId);
        if (maxLength is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "maxLength must be at least 1 token, or null to keep whole examples.");
        }

        PaddingId = paddingId;
        MaxLength = maxLength;
    }

    /// <summary>The id written into padded positions.</summary>
    /// <value>Default 0.</value>
    public int PaddingId { get; }

    /// <summary>Truncation length, or <see langword="null"/> for none.</summary>
    /// <value>Default <see langword="null"/>.</value>
    public int? MaxLength { get; }

    /// <inheritdoc />
    public TokenBatch Collate(IReadOnlyList<TokenExample> examples)
    {
        ArgumentNullException.ThrowIfNull(examples);
        if (examples.Count == 0)
        {
            throw new ArgumentException("A batch needs at least one example.", nameof(examples));
        }

        int rows = examples.Count;
        int width = 0;
        bool classification = examples[0].Label is not null;
        bool tokenLabels = false;
        for (int i = 0; i < rows; i++)
        {
            TokenExample example = examples[i] ?? throw new ArgumentException($"Example {i} of the batch is null.", nameof(examples));
            if (example.InputIds is null || example.InputIds.Length == 0)
            {
                throw new ArgumentException($"Example {i} of the batch has no input ids; drop empty texts before training.", nameof(examples));
            }

            if ((example.Label is not null) != classification)
            {
                throw new ArgumentException("A batch mixes labelled and unlabelled examples: give every example a Label (classification) or none (language modelling).", nameof(examples));
            }

            if (example.TokenLabels is { } own)
            {
                if (classification)
                {
                    throw new ArgumentException($"Example {i} has both a class Label and TokenLabels; TokenLabels are for language modelling only.", nameof(examples));
                }

                if (own.Length != example.InputIds.Length)
                {
                    throw new ArgumentException($"Example {i} has {own.Length} TokenLabels for {example.InputIds.Length} input ids; give one label per token (TokenBatch.IgnoreIndex where nothing is learned).", nameof(examples));
                }

                tokenLabels = true;
            }

            width = Math.Max(width, Math.Min(example.InputIds.Length, MaxLength ?? int.MaxValue));
        }

        var ids = new long[rows * width];
        var mask = new long[rows * width];
        long[] labels = classification ? new long[rows] : new long[rows * width];
        long tokens = 0;
        long targets = 0;
        for (int r = 0; r < rows; r++)
        {
            int[] source = examples[r].InputIds;
            int[] targetSource = examples[r].TokenLabels ?? source;
            int length = Math.Min(source.Length, width);
            int offset = r * width;
            for (int c = 0; c < width; c++)
            {
                bool real = c < length;
                ids[offset + c] = real ? source[c] : PaddingId;
                mask[offset + c] = real ? 1 : 0;
                if (!classification)
                {
                    labels[offset + c] = real ? targetSource[c] : TokenBatch.IgnoreIndex;
                    // Position 0 is never a target: the objective shifts labels left by one.
                    targets += real && c > 0 && targetSource[c] != TokenBatch.IgnoreIndex ? 1 : 0;
                }
            }

            tokens += length;
            if (classification)
            {
                labels[r] = examples[r].Label!.Value;
            }
        }

        long[] shape = [rows, width];
        return new TokenBatch(
            torch.tensor(ids, shape),
            torch.tensor(mask, shape),
            classification ? torch.tensor(labels, [rows]) : torch.tensor(labels, shape),
            tokens,
            tokenLabels ? targets : null);
    }
}
