using System.Collections.Immutable;
using System.ComponentModel;
using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using TorchSharp;

namespace NicheTune;

/// <summary>
/// Checks, once per process, that libtorch's native libraries load, and turns the raw loader failure into
/// one exception that says what is missing and how to install it.
/// </summary>
/// <remarks>
/// TorchSharp reports a missing native dependency as <see cref="DllNotFoundException"/> (or a
/// <see cref="TypeInitializationException"/> wrapping it) on the first torch call, which says nothing about
/// the cause. The usual cause on Linux is libtorch 2.10's need for libstdc++ from GCC 13 or newer
/// (symbol version <c>GLIBCXX_3.4.32</c>); the other is an application that references the managed
/// <c>TorchSharp</c> package without a native backend package. Call <see cref="EnsureAvailable"/> at start-up,
/// before building a model, to get the clear message; <see cref="FineTuner.For"/> calls it too.
/// </remarks>
public static class TorchBackend
{
    /// <summary>The libstdc++ symbol version libtorch 2.10 needs.</summary>
    public const string RequiredLibStdCxxSymbol = "GLIBCXX_3.4.32";

    /// <summary>The command that installs the missing prerequisites on a machine with a NicheTune checkout.</summary>
    public const string SetupCommand = "./eng/install-prerequisites.sh (as root; Debian: apt-get install -t trixie libstdc++6)";

    private static readonly object _gate = new();
    private static readonly Lazy<LoadedBackend> _loaded = new(FindLoadedBackend, LazyThreadSafetyMode.ExecutionAndPublication);
    private static bool _available;

    /// <summary>
    /// Describes the native backend this process loaded: libtorch version, CPU or CUDA build, the library's path, the
    /// CUDA devices libtorch sees, thread counts and the CPU's instruction sets. Use it to check, at run time, which
    /// backend package the application picked up; the trainer logs the same line when training starts.
    /// </summary>
    /// <returns>The description; the loaded library is looked up once per process, the thread counts on every call.</returns>
    /// <exception cref="NativeBackendException">libtorch or one of its dependencies could not be loaded.</exception>
    public static NativeBackendInfo Describe()
    {
        EnsureAvailable();
        LoadedBackend loaded = _loaded.Value;
        return new NativeBackendInfo
        {
            LibTorchVersion = torch.__version__,
            TorchSharpVersion = loaded.TorchSharpVersion,
            Build = loaded.Build,
            NativeLibraryPath = loaded.CpuLibraryPath,
            CudaAvailable = loaded.CudaDeviceCount > 0,
            CudaDeviceCount = loaded.CudaDeviceCount,
            IntraOpThreads = torch.get_num_threads(),
            InterOpThreads = torch.get_num_interop_threads(),
            CpuInstructionSets = loaded.CpuInstructionSets,
            CpuCapabilityOverride = Environment.GetEnvironmentVariable("ATEN_CPU_CAPABILITY") is { Length: > 0 } cap ? cap : null,
        };
    }

    /// <summary>
    /// Makes the first torch call and throws <see cref="NativeBackendException"/> with the cause and the fix when
    /// libtorch cannot be loaded. Cheap after the first successful call.
    /// </summary>
    /// <exception cref="NativeBackendException">libtorch or one of its dependencies could not be loaded.</exception>
    public static void EnsureAvailable()
    {
        if (_available)
        {
            return;
        }

        lock (_gate)
        {
            if (_available)
            {
                return;
            }

            Probe(static () => torch.InitializeDeviceType(DeviceType.CPU), FindLibStdCxx);
            _available = true;
        }
    }

    /// <summary>Runs <paramref name="firstTorchCall"/> and translates a native loader failure; separated for tests.</summary>
    internal static void Probe(Action firstTorchCall, Func<string?> libStdCxxPath)
    {
        try
        {
            firstTorchCall();
        }
        catch (Exception ex) when (IsLoaderFailure(ex))
        {
            throw Translate(ex, libStdCxxPath());
        }
    }

    internal static bool IsLoaderFailure(Exception ex) => ex switch
    {
        DllNotFoundException => true,
        TypeInitializationException { InnerException: { } inner } => IsLoaderFailure(inner),
        NotSupportedException { InnerException: { } inner } => IsLoaderFailure(inner),
        _ => false,
    };

    internal static NativeBackendException Translate(Exception loaderFailure, string? libStdCxx)
    {
        bool? hasSymbol = libStdCxx is null ? null : FileContains(libStdCxx, RequiredLibStdCxxSymbol);
        string cause = hasSymbol switch
        {
            false => $"The system libstdc++ ({libStdCxx}) lacks {RequiredLibStdCxxSymbol}: libtorch 2.10 needs libstdc++ from GCC 13 or newer. " +
                     $"Install it with {SetupCommand}.",
            true => "The system libstdc++ is recent enough, so the native backend package is probably missing: the application must reference " +
                    "one, e.g. 'libtorch-cpu-linux-x64' 2.10.0 (CPU, Linux x64) or 'TorchSharp-cpu' (CPU, all platforms); CUDA builds use 'TorchSharp-cuda-linux'.",
            null => $"libtorch 2.10 needs libstdc++ with {RequiredLibStdCxxSymbol} (GCC 13 or newer) and a native backend package such as " +
                    $"'libtorch-cpu-linux-x64' 2.10.0. Set-up: {SetupCommand}.",
        };
        return new NativeBackendException($"libtorch could not be loaded ({Innermost(loaderFailure).Message}). {cause}", loaderFailure)
        {
            MissingSymbol = hasSymbol == false ? RequiredLibStdCxxSymbol : null,
        };
    }

    private static Exception Innermost(Exception ex)
    {
        while (ex.InnerException is not null)
        {
            ex = ex.InnerException;
        }

        return ex;
    }

    private sealed record LoadedBackend(string Build, string? CpuLibraryPath, int CudaDeviceCount, string TorchSharpVersion, ImmutableArray<string> CpuInstructionSets);

    private static LoadedBackend FindLoadedBackend()
    {
        // is_available() makes TorchSharp try the CUDA library, so a CUDA package is loaded before the modules are read.
        int devices = torch.cuda.is_available() ? torch.cuda.device_count() : 0;
        string[] modules = LoadedModulePaths();
        string? cpuLibrary = modules.FirstOrDefault(m => IsLibrary(m, "torch_cpu"));
        string build = ClassifyBuild(modules);
        string torchSharp = typeof(torch).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
            ?? typeof(torch).Assembly.GetName().Version?.ToString() ?? "unknown";
        return new LoadedBackend(build, cpuLibrary, devices, torchSharp, CpuInstructionSets());
    }

    internal static string ClassifyBuild(IReadOnlyCollection<string> modulePaths) =>
        modulePaths.Any(m => IsLibrary(m, "torch_cuda")) ? "CUDA"
        : modulePaths.Any(m => IsLibrary(m, "torch_cpu")) ? "CPU"
        : "unknown";

    /// <summary>Whether <paramref name="path"/> names the native library <paramref name="name"/> on any platform (lib*.so*, *.dll, lib*.dylib).</summary>
    internal static bool IsLibrary(string path, string name)
    {
        string file = Path.GetFileName(path);
        return file.StartsWith(name + ".", StringComparison.OrdinalIgnoreCase) || file.StartsWith("lib" + name + ".", StringComparison.OrdinalIgnoreCase);
    }

    private static string[] LoadedModulePaths()
    {
        try
        {
            using var process = Process.GetCurrentProcess();
            return [.. process.Modules.Cast<ProcessModule>().Select(m => m.FileName).Where(f => !string.IsNullOrEmpty(f))];
        }
        catch (Exception ex) when (ex is Win32Exception or NotSupportedException or InvalidOperationException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    internal static ImmutableArray<string> CpuInstructionSets()
    {
        var sets = ImmutableArray.CreateBuilder<string>();
        if (Avx2.IsSupported)
        {
            sets.Add("AVX2");
        }

        if (Avx512F.IsSupported)
        {
            sets.Add("AVX-512F");
        }

        if (Avx512BW.IsSupported)
        {
            sets.Add("AVX-512BW");
        }

        if (AdvSimd.IsSupported)
        {
            sets.Add("AdvSimd");
        }

        // .NET has no query for the bf16 extensions; Linux lists them in /proc/cpuinfo (what bf16 precision checks too).
        string[] flags = Training.MixedPrecision.ReadCpuFlags()?.Split(' ', StringSplitOptions.RemoveEmptyEntries) ?? [];
        if (flags.Contains("avx512_bf16"))
        {
            sets.Add("AVX512-BF16");
        }

        if (flags.Contains("amx_bf16"))
        {
            sets.Add("AMX-BF16");
        }

        return sets.ToImmutable();
    }

    internal static string? FindLibStdCxx()
    {
        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux))
        {
            return null;
        }

        string[] candidates =
        [
            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
            "/usr/lib/aarch64-linux-gnu/libstdc++.so.6",
            "/usr/lib64/libstdc++.so.6",
            "/usr/lib/libstdc++.so.6",
        ];
        return candidates.FirstOrDefault(File.Exists);
    }

    internal static bool FileContains(string path, string ascii)
    {
        byte[] needle = System.Text.Encoding.ASCII.GetBytes(ascii);
        try
        {
            byte[] haystack = File.ReadAllBytes(path);
            return haystack.AsSpan().IndexOf(needle) >= 0;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }
}

/// <summary>
/// Thrown when libtorch's native libraries cannot be loaded; the message names the missing piece and the set-up command.
/// </summary>
public sealed class NativeBackendException : Exception
{
    /// <summary>Creates the exception with a message and the loader's original exception.</summary>
    /// <param name="message">What is missing and how to fix it.</param>
    /// <param name="innerException">The loader failure TorchSharp raised.</param>
    public NativeBackendException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The libstdc++ symbol version found missing, or <see langword="null"/> when the cause is elsewhere.</summary>
    /// <value>Default <see langword="null"/>.</value>
    public string? MissingSymbol { get; init; }
}
