using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace NicheTune.DependencyInjection;

/// <summary>Registers NicheTune in a host's service collection.</summary>
public static class NicheTuneServiceCollectionExtensions
{
    /// <summary>Registers <see cref="IFineTunerFactory"/> with options bound from the configuration section <c>NicheTune</c>, validated at start-up.</summary>
    /// <param name="services">The service collection.</param>
    /// <returns>The options builder, for further configuration.</returns>
    public static OptionsBuilder<NicheTuneOptions> AddNicheTune(this IServiceCollection services)
        => AddCore(services, null, null);

    /// <summary>Registers <see cref="IFineTunerFactory"/>, configuring the options in code (applied after configuration binding).</summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets option values.</param>
    /// <returns>The options builder.</returns>
    public static OptionsBuilder<NicheTuneOptions> AddNicheTune(this IServiceCollection services, Action<NicheTuneOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        return AddCore(services, null, configure);
    }

    /// <summary>Registers <see cref="IFineTunerFactory"/> with options bound from <paramref name="section"/>.</summary>
    /// <param name="services">The service collection.</param>
    /// <param name="section">The configuration section holding the options.</param>
    /// <returns>The options builder.</returns>
    public static OptionsBuilder<NicheTuneOptions> AddNicheTune(this IServiceCollection services, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(section);
        return AddCore(services, section, null);
    }

    private static OptionsBuilder<NicheTuneOptions> AddCore(IServiceCollection services, IConfiguration? section, Action<NicheTuneOptions>? configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        OptionsBuilder<NicheTuneOptions> builder = services.AddOptions<NicheTuneOptions>();
        if (section is not null)
        {
            builder.Bind(section);
        }
        else
        {
            builder.BindConfiguration(NicheTuneOptions.SectionName);
        }

        if (configure is not null)
        {
            builder.Configure(configure);
        }

        builder.ValidateDataAnnotations().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<NicheTuneOptions>, NicheTuneOptionsValidator>());
        services.TryAddSingleton<IFineTunerFactory, FineTunerFactory>();
        return builder;
    }
}

/// <summary>Cross-field rules the attributes cannot express; messages carry the offending values.</summary>
internal sealed class NicheTuneOptionsValidator : IValidateOptions<NicheTuneOptions>
{
    public ValidateOptionsResult Validate(string? name, NicheTuneOptions options)
    {
        var failures = new List<string>();
        if (options.CheckpointDirectory is { Length: > 0 } dir && dir.IndexOfAny(Path.GetInvalidPathChars()) >= 0)
        {
            failures.Add($"NicheTune:CheckpointDirectory '{dir}' contains characters that are not valid in a path.");
        }

        if (options.Device.StartsWith("cuda", StringComparison.Ordinal) && !TorchSharp.torch.cuda.is_available())
        {
            failures.Add($"NicheTune:Device is '{options.Device}' but CUDA is not available: reference a CUDA backend package (e.g. TorchSharp-cuda-linux) on a machine with an NVIDIA GPU, or use 'cpu'.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
