using FluentAssertions;
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
}
