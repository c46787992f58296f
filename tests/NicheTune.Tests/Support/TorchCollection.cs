using Xunit;

namespace NicheTune.Tests.Support;

/// <summary>
/// Tests that train or read torch's global state (the default generator, dispose-scope statistics) run one at a time:
/// torch's generator is process-wide, so parallel tests would change each other's random streams.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TorchCollection
{
    public const string Name = "torch";
}
