using FluentAssertions;
using TorchSharp;
using Xunit;

namespace NicheTune.Tests;

public sealed class TorchBackendTests
{
    [Fact]
    public void Probe_LoaderFailsAndLibStdCxxLacksSymbol_ThrowsNamingTheVersionAndTheSetupCommand()
    {
        string fakeLib = Path.GetTempFileName();
        File.WriteAllText(fakeLib, "GLIBCXX_3.4.29 GLIBCXX_3.4.30");
        try
        {
            var probe = () => TorchBackend.Probe(
                () => throw new TypeInitializationException("TorchSharp.torch", new DllNotFoundException("Unable to load shared library 'LibTorchSharp'")),
                () => fakeLib);

            var ex = probe.Should().Throw<NativeBackendException>().Which;
            ex.Message.Should().Contain("GLIBCXX_3.4.32").And.Contain("install-prerequisites.sh").And.Contain("LibTorchSharp");
            ex.MissingSymbol.Should().Be("GLIBCXX_3.4.32");
            ex.InnerException.Should().BeOfType<TypeInitializationException>();
        }
        finally
        {
            File.Delete(fakeLib);
        }
    }

    [Fact]
    public void Probe_LoaderFailsWithRecentLibStdCxx_PointsAtTheBackendPackage()
    {
        string fakeLib = Path.GetTempFileName();
        File.WriteAllText(fakeLib, "GLIBCXX_3.4.32");
        try
        {
            var probe = () => TorchBackend.Probe(() => throw new DllNotFoundException("LibTorchSharp"), () => fakeLib);
            probe.Should().Throw<NativeBackendException>().WithMessage("*libtorch-cpu-linux-x64*").Which.MissingSymbol.Should().BeNull();
        }
        finally
        {
            File.Delete(fakeLib);
        }
    }

    [Fact]
    public void Probe_OtherFailure_IsNotTranslated()
    {
        var probe = () => TorchBackend.Probe(() => throw new InvalidOperationException("unrelated"), () => null);
        probe.Should().Throw<InvalidOperationException>().WithMessage("unrelated");
    }

    [Fact]
    public void EnsureAvailable_OnThisMachine_Succeeds()
    {
        var ensure = TorchBackend.EnsureAvailable;
        ensure.Should().NotThrow();
    }

    [Fact]
    public void Describe_OnThisMachine_ReportsTheCpuBuildAndTheLibraryItLoaded()
    {
        NativeBackendInfo info = TorchBackend.Describe();

        info.LibTorchVersion.Should().StartWith("2.10");
        info.TorchSharpVersion.Should().StartWith("0.107");
        info.Build.Should().Be("CPU", "the tests reference libtorch-cpu-linux-x64 only");
        info.NativeLibraryPath.Should().EndWith("libtorch_cpu.so");
        File.Exists(info.NativeLibraryPath).Should().BeTrue();
        info.CudaAvailable.Should().BeFalse();
        info.CudaDeviceCount.Should().Be(0);
        info.IntraOpThreads.Should().Be(torch.get_num_threads());
        info.InterOpThreads.Should().BeGreaterThan(0);
        info.CpuInstructionSets.Contains("AVX2").Should().Be(System.Runtime.Intrinsics.X86.Avx2.IsSupported);
        string cpuFlags = File.Exists("/proc/cpuinfo") ? File.ReadAllText("/proc/cpuinfo") : "";
        info.CpuInstructionSets.Contains("AVX512-BF16").Should().Be(cpuFlags.Contains(" avx512_bf16", StringComparison.Ordinal));
        info.ToString().Should().Contain("libtorch 2.10").And.Contain("CPU build").And.Contain("no CUDA device").And.Contain(info.NativeLibraryPath!);
    }

    [Theory]
    [InlineData("CUDA", "/app/runtimes/linux-x64/native/libtorch_cpu.so", "/app/runtimes/linux-x64/native/libtorch_cuda.so")]
    [InlineData("CUDA", "torch_cpu.dll", "torch_cuda.dll")]
    [InlineData("CPU", "/usr/lib/libc.so.6", "/pkgs/libtorch-cpu-linux-x64/2.10.0/runtimes/linux-x64/native/libtorch_cpu.so")]
    [InlineData("CPU", "/app/libtorch_cuda_linalg.so", "/app/libtorch_cpu.dylib")]
    [InlineData("unknown", "/usr/lib/libc.so.6", "/app/libLibTorchSharp.so")]
    public void ClassifyBuild_LoadedModules_NamesTheBuild(string expected, string first, string second)
    {
        TorchBackend.ClassifyBuild([first, second]).Should().Be(expected);
    }
}
