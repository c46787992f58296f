using FluentAssertions;
using TorchSharp;
using Xunit;
namespace NicheTune.Tests;
public class SmokeTests
{
    [Fact]
    public void Torch_Adds()
    {
        using var a = torch.ones(3);
        (a + a).sum().item<float>().Should().Be(6f);
    }
}
