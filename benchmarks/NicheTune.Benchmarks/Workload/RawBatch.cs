using NicheTune.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Benchmarks.Workload;

/// <summary>
/// A batch as a TorchSharp user prepares it by hand: input ids [B, T] and next-token targets [B, T], built the way
/// <c>CausalLanguageModelingObjective</c> builds them (labels shifted left, the last position of every row ignored).
/// </summary>
internal sealed class RawBatch : IDisposable
{
    private RawBatch(Tensor inputIds, Tensor targets)
    {
        InputIds = inputIds;
        Targets = targets;
    }

    public Tensor InputIds { get; }

    public Tensor Targets { get; }

    public static RawBatch Create(ReadOnlySpan<TokenExample> examples)
    {
        int rows = examples.Length;
        int width = examples[0].InputIds.Length;
        var ids = new long[rows * width];
        for (int r = 0; r < rows; r++)
        {
            int[] source = examples[r].InputIds;
            for (int c = 0; c < width; c++)
            {
                ids[r * width + c] = source[c];
            }
        }

        Tensor inputIds = torch.tensor(ids, [rows, width]);
        using var scope = torch.NewDisposeScope();
        Tensor tail = inputIds[TensorIndex.Colon, TensorIndex.Slice(1)];
        Tensor pad = torch.full(rows, 1, TokenBatch.IgnoreIndex, dtype: inputIds.dtype);
        Tensor targets = torch.cat([tail, pad], 1).MoveToOuterDisposeScope();
        return new RawBatch(inputIds, targets);
    }

    public void Dispose()
    {
        InputIds.Dispose();
        Targets.Dispose();
    }
}
