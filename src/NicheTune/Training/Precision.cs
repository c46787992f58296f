namespace NicheTune.Training;

/// <summary>The number format of a training step's matrix products.</summary>
public enum Precision
{
    /// <summary>Everything in fp32: the reference, and the default.</summary>
    Float32,

    /// <summary>
    /// bf16 mixed precision: the matrix products of the output layer (the fused loss, for GPT-2 and Llama models) and of
    /// GPT-2 blocks run in bf16 with fp32 accumulation, while weights, gradients' sums, optimizer state, softmax, normalisation
    /// and the loss stay fp32 ("master weights"). About twice as fast on CPUs with AVX512-BF16 or AMX; where the device
    /// lacks bf16 support the run falls back to fp32 and logs why.
    /// </summary>
    BFloat16,
}
