using FluentAssertions;
using NicheTune.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace NicheTune.Tests;

/// <summary>
/// The library never hands libtorch a scalar that only a finalizer owns (see <c>NicheTune.Scalars</c>): a garbage
/// collection during the native call could free it under libtorch. Checked on the compiled IL, so it holds for every
/// path, not only those a test happens to run.
/// </summary>
public sealed class FinalizerOwnedScalarTests
{
    private static readonly Lazy<IReadOnlySet<string>> ScalarMaking = new(() => ScalarCallScanner.ScalarMakingMethods(typeof(Scalar).Assembly.Location));

    [Fact]
    public void Library_MakesNoFinalizerOwnedScalar_InAnyMethod()
    {
        var sites = new[] { typeof(FineTuner).Assembly, typeof(NicheTune.Reporting.HtmlReport).Assembly }
            .SelectMany(a => ScalarCallScanner.Sites(a.Location, ScalarMaking.Value))
            .ToList();

        sites.Should().BeEmpty("every number the library passes to a tensor method must be a Scalar it keeps alive (NicheTune.Scalars); found:\n{0}", string.Join("\n", sites));
    }

    [Fact]
    public void TorchSharpScan_FindsTheImplicitAlphaOfAdditionAndTheInlineNormOrder_ButNotExplicitScalarOverloads()
    {
        IReadOnlySet<string> making = ScalarMaking.Value;

        making.Should().Contain("TorchSharp.torch/Tensor::op_Addition(TorchSharp.torch/Tensor,TorchSharp.torch/Tensor)");
        making.Should().Contain("TorchSharp.torch/Tensor::add_(TorchSharp.torch/Tensor)");
        making.Should().Contain("TorchSharp.torch/Tensor::op_Multiply(TorchSharp.torch/Tensor,Double)");
        making.Should().Contain(m => m.StartsWith("TorchSharp.torch/linalg::vector_norm(", StringComparison.Ordinal));
        making.Should().NotContain("TorchSharp.torch/Tensor::add(TorchSharp.torch/Tensor,TorchSharp.Scalar)");
        making.Should().NotContain("TorchSharp.torch/Tensor::mul(TorchSharp.Scalar)");
    }

    [Fact]
    public void Scan_OfThisAssembly_FlagsImplicitScalarsAndPassesHeldOnes()
    {
        var sites = ScalarCallScanner.Sites(typeof(FinalizerOwnedScalarTests).Assembly.Location, ScalarMaking.Value)
            .Where(s => s.Contains("::" + nameof(Examples) + "/", StringComparison.Ordinal) || s.Contains("/" + nameof(Examples) + "::", StringComparison.Ordinal))
            .ToList();

        sites.Should().Contain(s => s.Contains("::Implicit(", StringComparison.Ordinal) && s.Contains("op_Addition(", StringComparison.Ordinal));
        sites.Should().Contain(s => s.Contains("::Implicit(", StringComparison.Ordinal) && s.Contains("Scalar::op_Implicit(Double)", StringComparison.Ordinal));
        sites.Should().NotContain(s => s.Contains("::Held(", StringComparison.Ordinal));
    }

    [Fact]
    public void HeldScalars_ComputeWhatTheImplicitOnesDo()
    {
        using var scope = torch.NewDisposeScope();
        Tensor a = torch.arange(6, dtype: ScalarType.Float32).reshape(2, 3);
        Tensor b = torch.ones(2, 3);

        (Tensor sum, Tensor scaled) = Examples.Held(a, b);

        sum.data<float>().ToArray().Should().Equal(1f, 2f, 3f, 4f, 5f, 6f);
        Scalars.NotEqual(torch.tensor(new long[] { -100, 3 }), -100).data<bool>().ToArray().Should().Equal(false, true);
        scaled.data<float>().ToArray().Should().Equal(0f, 0.5f, 1f, 1.5f, 2f, 2.5f);
    }

    // The scan's subjects: Implicit does what the library must not, Held what it does instead.
    private static class Examples
    {
        public static (Tensor Sum, Tensor Scaled) Implicit(Tensor a, Tensor b) => (a + b, a.mul(0.5));

        public static (Tensor Sum, Tensor Scaled) Held(Tensor a, Tensor b) => (a.add(b, Scalars.One), Scalars.Times(a, 0.5));
    }
}
