using FluentAssertions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NicheTune.DependencyInjection;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;
using Xunit;

namespace NicheTune.Tests.DependencyInjection;

[Collection(TorchCollection.Name)]
public sealed class AddNicheTuneTests
{
    private static ServiceProvider Provider(Dictionary<string, string?> settings, Action<NicheTuneOptions>? configure = null)
    {
        IConfiguration configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection();
        services.AddSingleton(configuration);
        services.AddLogging(b => b.AddProvider(new Training.ListLoggerProvider()));
        if (configure is null)
        {
            services.AddNicheTune();
        }
        else
        {
            services.AddNicheTune(configure);
        }

        return services.BuildServiceProvider(validateScopes: true);
    }

    [Fact]
    public void AddNicheTune_OptionsFromConfiguration_BuildersStartFromThem()
    {
        using var provider = Provider(new()
        {
            ["NicheTune:LearningRate"] = "0.001",
            ["NicheTune:BatchSize"] = "4",
            ["NicheTune:Epochs"] = "2",
            ["NicheTune:Seed"] = "123",
            ["NicheTune:MaxGradientNorm"] = "0",
        });
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);

        FineTunePlan<TokenBatch> plan = provider.GetRequiredService<IFineTunerFactory>().For(model)
            .WithObjective(Objectives.CausalLanguageModeling()).Build();

        plan.LearningRate.Should().Be(0.001);
        plan.BatchSize.Should().Be(4);
        plan.Epochs.Should().Be(2);
        plan.Seed.Should().Be(123);
        plan.MaxGradientNorm.Should().BeNull("0 turns clipping off");
    }

    [Fact]
    public void AddNicheTune_CodeConfiguration_OverridesConfiguration()
    {
        using var provider = Provider(new() { ["NicheTune:BatchSize"] = "4" }, o => o.BatchSize = 32);
        provider.GetRequiredService<IOptions<NicheTuneOptions>>().Value.BatchSize.Should().Be(32);
    }

    [Fact]
    public void AddNicheTune_InvalidConfiguration_FailsValidationWithEveryValueNamed()
    {
        using var provider = Provider(new() { ["NicheTune:BatchSize"] = "0", ["NicheTune:LearningRate"] = "-1", ["NicheTune:Device"] = "tpu" });

        var resolve = () => provider.GetRequiredService<IOptions<NicheTuneOptions>>().Value;

        var failures = resolve.Should().Throw<OptionsValidationException>().Which.Failures;
        failures.Should().Contain(f => f.Contains("BatchSize"));
        failures.Should().Contain(f => f.Contains("LearningRate"));
        failures.Should().Contain(f => f.Contains("Device"));
    }

    [Fact]
    public void AddNicheTune_ValidateOnStart_IsRegistered()
    {
        using var provider = Provider(new() { ["NicheTune:Epochs"] = "0" });

        // The host runs these validators at start-up (ValidateOnStart); running them here is what the host does.
        var validator = provider.GetRequiredService<IStartupValidator>();
        var validate = () => validator.Validate();

        validate.Should().Throw<OptionsValidationException>().Which.Failures.Should().Contain(f => f.Contains("Epochs"));
    }

    [Fact]
    public void AddNicheTune_CalledTwice_RegistersOneFactory()
    {
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().Build());
        services.AddNicheTune();
        services.AddNicheTune();
        services.Count(d => d.ServiceType == typeof(IFineTunerFactory)).Should().Be(1);
    }
}
