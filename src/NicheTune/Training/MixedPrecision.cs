using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Training;

/// <summary>
/// The matrix-product type of the current thread's training step — TorchSharp has no autocast, so the trainer sets it
/// around the forward pass and the project's layers and the fused loss read it. Thread-static like PyTorch's autocast
/// state: a forward pass on another thread is unaffected.
/// </summary>
internal static class MixedPrecision
{
    [ThreadStatic]
    private static ScalarType? t_matmulType;

    /// <summary>Overrides the CPU flags read from /proc/cpuinfo (tests); <see langword="null"/> reads the machine's.</summary>
    internal static string? CpuFlagsOverride { get; set; }

    /// <summary>The type matrix products run in on this thread, or <see langword="null"/> for the inputs' own type.</summary>
    public static ScalarType? MatmulType => t_matmulType;

    /// <summary>Sets the product type until the returned scope is disposed.</summary>
    public static Scope Enter(ScalarType? matmulType)
    {
        ScalarType? previous = t_matmulType;
        t_matmulType = matmulType;
        return new Scope(previous);
    }

    /// <summary><c>linear(x, W, b)</c> with the product in <see cref="MatmulType"/> when one is set; the result has x's type.</summary>
    public static Tensor Linear(Tensor input, Tensor weight, Tensor? bias)
    {
        if (t_matmulType is not { } low || low == input.dtype)
        {
            return nn.functional.linear(input, weight, bias);
        }

        using var scope = torch.NewDisposeScope();
        Tensor result = nn.functional.linear(input.to(low), weight.to(low), bias?.to(low)).to(input.dtype);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary><c>b + x·W</c> (GPT-2's Conv1D layout, W is [in, out]) with the product in <see cref="MatmulType"/> when one is set.</summary>
    public static Tensor AddMatmul(Tensor bias, Tensor input, Tensor weight)
    {
        if (t_matmulType is not { } low || low == input.dtype)
        {
            return torch.addmm(bias, input, weight, 1f, 1f);
        }

        using var scope = torch.NewDisposeScope();
        Tensor result = torch.addmm(bias.to(low), input.to(low), weight.to(low), 1f, 1f).to(input.dtype);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>Whether <paramref name="precision"/> can run on <paramref name="device"/>; otherwise why not.</summary>
    public static bool IsSupported(Precision precision, Device device, out string reason)
    {
        if (precision == Precision.Float32)
        {
            reason = "fp32 runs everywhere";
            return true;
        }

        if (device.type == DeviceType.CUDA)
        {
            reason = "CUDA devices run bf16 products (compute capability 8.0 or later runs them at full speed)";
            return true;
        }

        if (device.type != DeviceType.CPU)
        {
            reason = $"bf16 products are only enabled on CPU and CUDA devices, not {device.type}";
            return false;
        }

        string? flags = CpuFlagsOverride ?? ReadCpuFlags();
        if (flags is null)
        {
            reason = "the CPU's features could not be read (/proc/cpuinfo is Linux-only), so bf16 support is unknown";
            return false;
        }

        string[] words = flags.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (words.Contains("amx_bf16") || words.Contains("avx512_bf16"))
        {
            reason = words.Contains("amx_bf16") ? "the CPU has AMX-BF16" : "the CPU has AVX512-BF16";
            return true;
        }

        reason = "the CPU has neither AVX512-BF16 nor AMX-BF16, so bf16 products would be emulated and slower than fp32";
        return false;
    }

    internal static string? ReadCpuFlags()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/cpuinfo"))
            {
                if (line.StartsWith("flags", StringComparison.Ordinal))
                {
                    int colon = line.IndexOf(':', StringComparison.Ordinal);
                    return colon < 0 ? string.Empty : line[(colon + 1)..];
                }
            }

            return string.Empty;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Restores the previous product type.</summary>
    internal readonly struct Scope(ScalarType? previous) : IDisposable
    {
        public void Dispose() => t_matmulType = previous;
    }
}
