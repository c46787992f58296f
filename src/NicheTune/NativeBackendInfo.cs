using System.Collections.Immutable;

namespace NicheTune;

/// <summary>
/// What native backend this process runs on: the libtorch version, whether the loaded build is the CPU or the CUDA one,
/// where it was loaded from, the GPUs it sees, its thread counts and the CPU's vector instruction sets.
/// </summary>
/// <remarks>
/// The application, not NicheTune, chooses the backend by the package it references (<c>libtorch-cpu-*</c>,
/// <c>TorchSharp-cpu</c>, <c>libtorch-cuda-*</c>, <c>TorchSharp-cuda-*</c>). Get this description from
/// <see cref="TorchBackend.Describe"/>; the trainer logs it when training starts (event 13, <c>NativeBackend</c>), so a
/// log shows which backend a run used.
/// </remarks>
public sealed record NativeBackendInfo
{
    /// <summary>The libtorch version TorchSharp reports (<c>torch.__version__</c>), e.g. <c>2.10.0.0</c>.</summary>
    /// <value>Never empty.</value>
    public required string LibTorchVersion { get; init; }

    /// <summary>The version of the managed TorchSharp assembly, e.g. <c>0.107.0</c>.</summary>
    /// <value>Never empty.</value>
    public required string TorchSharpVersion { get; init; }

    /// <summary>
    /// <c>"CUDA"</c> when libtorch's CUDA library is loaded in this process, <c>"CPU"</c> when only the CPU library is,
    /// <c>"unknown"</c> when neither could be found among the loaded modules.
    /// </summary>
    /// <value>One of <c>CPU</c>, <c>CUDA</c>, <c>unknown</c>.</value>
    public required string Build { get; init; }

    /// <summary>The file libtorch's CPU library (<c>libtorch_cpu.so</c>, <c>torch_cpu.dll</c>, <c>libtorch_cpu.dylib</c>) was loaded from.</summary>
    /// <value><see langword="null"/> when the loaded modules could not be read.</value>
    public string? NativeLibraryPath { get; init; }

    /// <summary>Whether libtorch sees at least one usable CUDA device (<c>torch.cuda.is_available()</c>).</summary>
    /// <value><see langword="false"/> on a CPU build or a machine without an NVIDIA driver.</value>
    public required bool CudaAvailable { get; init; }

    /// <summary>The number of CUDA devices libtorch sees.</summary>
    /// <value>0 when <see cref="CudaAvailable"/> is <see langword="false"/>.</value>
    public required int CudaDeviceCount { get; init; }

    /// <summary>libtorch's intra-op thread count (<c>torch.get_num_threads()</c>), which bounds CPU kernels' parallelism.</summary>
    /// <value>At least 1; libtorch's default is the number of physical cores.</value>
    public required int IntraOpThreads { get; init; }

    /// <summary>libtorch's inter-op thread count (<c>torch.get_num_interop_threads()</c>).</summary>
    /// <value>At least 1.</value>
    public required int InterOpThreads { get; init; }

    /// <summary>
    /// The vector instruction sets the CPU offers: <c>AVX2</c>, <c>AVX-512F</c>, <c>AVX-512BW</c>, <c>AdvSimd</c> as .NET
    /// detects them, and on Linux <c>AVX512-BF16</c> and <c>AMX-BF16</c> from <c>/proc/cpuinfo</c> (what bf16 precision
    /// needs to run fast). libtorch chooses its CPU kernels from the same hardware unless the
    /// <c>ATEN_CPU_CAPABILITY</c> environment variable caps it (see <see cref="CpuCapabilityOverride"/>).
    /// </summary>
    /// <value>Empty on a CPU with none of these.</value>
    public ImmutableArray<string> CpuInstructionSets { get; init; } = [];

    /// <summary>The value of <c>ATEN_CPU_CAPABILITY</c>, which caps libtorch's CPU kernels (e.g. <c>avx2</c>, <c>default</c>).</summary>
    /// <value><see langword="null"/> when the variable is not set.</value>
    public string? CpuCapabilityOverride { get; init; }

    /// <summary>One line for a log or a console: version, build, GPUs, threads, instruction sets and library path.</summary>
    /// <returns>The description.</returns>
    public override string ToString()
    {
        string cuda = CudaAvailable ? $"{CudaDeviceCount} CUDA device(s)" : "no CUDA device";
        string isa = CpuInstructionSets.IsEmpty ? "none detected" : string.Join(' ', CpuInstructionSets);
        string cap = CpuCapabilityOverride is null ? "" : $", ATEN_CPU_CAPABILITY={CpuCapabilityOverride}";
        return $"libtorch {LibTorchVersion} {Build} build (TorchSharp {TorchSharpVersion}), {cuda}, {IntraOpThreads} intra-op / {InterOpThreads} inter-op threads, " +
               $"CPU instruction sets: {isa}{cap}, loaded from {NativeLibraryPath ?? "an unknown path"}";
    }
}
