using NicheTune.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Prompting;

/// <summary>Sentence vectors from a language model, for diversity-based selection and similar-demonstration retrieval.</summary>
public static class TextEmbeddings
{
    /// <summary>
    /// Mean-pooled last hidden states (padding excluded), computed in batches under <c>torch.no_grad()</c> in evaluation mode
    /// (the model's mode is restored afterwards).
    /// </summary>
    /// <typeparam name="TModel">A module that exposes its hidden states, e.g. <see cref="Gpt2LMHeadModel"/>.</typeparam>
    /// <param name="model">The model.</param>
    /// <param name="sequences">Token ids per text (each non-empty).</param>
    /// <param name="batchSize">Texts per forward pass, at least 1.</param>
    /// <param name="maxLength">Longer sequences are truncated to their first <paramref name="maxLength"/> tokens; <see langword="null"/> keeps them whole.</param>
    /// <returns>One vector per sequence.</returns>
    /// <exception cref="ArgumentException">A sequence is empty.</exception>
    public static float[][] MeanPooled<TModel>(TModel model, IReadOnlyList<int[]> sequences, int batchSize = 16, int? maxLength = null)
        where TModel : nn.Module, IHiddenStateModel
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(sequences);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var result = new float[sequences.Count][];
        bool training = model.training;
        model.eval();
        try
        {
            using var noGrad = torch.no_grad();
            Device device = model.parameters().FirstOrDefault()?.device ?? torch.CPU;
            for (int start = 0; start < sequences.Count; start += batchSize)
            {
                using var scope = torch.NewDisposeScope();
                int rows = Math.Min(batchSize, sequences.Count - start);
                int width = 0;
                for (int r = 0; r < rows; r++)
                {
                    int length = sequences[start + r]?.Length ?? 0;
                    if (length == 0)
                    {
                        throw new ArgumentException($"Sequence {start + r} is empty; every text needs at least one token.", nameof(sequences));
                    }

                    width = Math.Max(width, Math.Min(length, maxLength ?? int.MaxValue));
                }

                var ids = new long[rows * width];
                var mask = new float[rows * width];
                for (int r = 0; r < rows; r++)
                {
                    int[] sequence = sequences[start + r];
                    for (int t = 0; t < Math.Min(sequence.Length, width); t++)
                    {
                        ids[r * width + t] = sequence[t];
                        mask[r * width + t] = 1f;
                    }
                }

                Tensor maskTensor = torch.tensor(mask, [rows, width], device: device);
                Tensor hidden = model.HiddenStates(torch.tensor(ids, [rows, width], device: device), maskTensor.to_type(ScalarType.Int64));
                Tensor weights = maskTensor.unsqueeze(-1);
                Tensor pooled = ((hidden.to_type(ScalarType.Float32) * weights).sum(1) / weights.sum(1)).to(torch.CPU);
                float[] values = pooled.data<float>().ToArray();
                int dim = (int)pooled.shape[1];
                for (int r = 0; r < rows; r++)
                {
                    result[start + r] = values.AsSpan(r * dim, dim).ToArray();
                }
            }
        }
        finally
        {
            if (training)
            {
                model.train();
            }
        }

        return result;
    }
}
