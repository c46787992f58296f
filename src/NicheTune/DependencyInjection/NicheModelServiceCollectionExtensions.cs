using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using NicheTune.Deployment;

namespace NicheTune.DependencyInjection;

/// <summary>Registers served models (<see cref="NicheModel"/>) in a host's service collection.</summary>
public static class NicheModelServiceCollectionExtensions
{
    /// <summary>
    /// Registers the package in <paramref name="folder"/> as a keyed singleton <see cref="NicheModel"/> (key
    /// <paramref name="name"/>; resolve it with <c>[FromKeyedServices("name")]</c> or <c>GetRequiredKeyedService</c>).
    /// Its options are named <paramref name="name"/>, validated at start-up (with the folder's manifest), and the model is
    /// loaded on first use and disposed with the container. Observers registered as <see cref="IPredictionObserver"/>
    /// services receive its records, beside those in <see cref="NicheModelOptions.Observers"/>.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="name">The model's key, e.g. <c>"foldoc"</c>.</param>
    /// <param name="folder">The package folder written by <see cref="ModelPackage.Export"/>.</param>
    /// <param name="configure">Sets serving options; <see langword="null"/> for the defaults.</param>
    /// <returns>The options builder, for further configuration (e.g. <c>.BindConfiguration("Models:foldoc")</c>).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="name"/> or <paramref name="folder"/> is empty.</exception>
    public static OptionsBuilder<NicheModelOptions> AddNicheModel(this IServiceCollection services, string name, string folder, Action<NicheModelOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        OptionsBuilder<NicheModelOptions> builder = services.AddOptions<NicheModelOptions>(name);
        if (configure is not null)
        {
            builder.Configure(configure);
        }

        builder.ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IValidateOptions<NicheModelOptions>>(new NicheModelOptionsValidator(name, folder));
        services.AddKeyedSingleton(name, (provider, _) =>
        {
            NicheModelOptions options = provider.GetRequiredService<IOptionsMonitor<NicheModelOptions>>().Get(name);
            ILogger logger = provider.GetService<ILoggerFactory>()?.CreateLogger($"NicheTune.Deployment.NicheModel.{name}") ?? NullLogger.Instance;
            NicheModel model = NicheModel.Load(folder, options, logger);
            foreach (IPredictionObserver observer in provider.GetServices<IPredictionObserver>())
            {
                model.AddObserver(observer);
            }

            return model;
        });
        return builder;
    }
}

/// <summary>Checks one named model's options and that its folder holds a package, with the offending values in the messages.</summary>
internal sealed class NicheModelOptionsValidator(string name, string folder) : IValidateOptions<NicheModelOptions>
{
    public ValidateOptionsResult Validate(string? optionsName, NicheModelOptions options)
    {
        if (!string.Equals(optionsName, name, StringComparison.Ordinal))
        {
            return ValidateOptionsResult.Skip;
        }

        var failures = new List<string>();
        if (options.BatchWindow < TimeSpan.Zero || options.BatchWindow > TimeSpan.FromSeconds(1))
        {
            failures.Add($"Model '{name}': BatchWindow is {options.BatchWindow}; use zero to one second, e.g. 00:00:00.002.");
        }

        if (options.Device.StartsWith("cuda", StringComparison.Ordinal) && !TorchSharp.torch.cuda.is_available())
        {
            failures.Add($"Model '{name}': Device is '{options.Device}' but CUDA is not available; use 'cpu'.");
        }

        if (!File.Exists(Path.Combine(folder, ModelPackage.ManifestFileName)))
        {
            failures.Add($"Model '{name}': '{folder}' holds no {ModelPackage.ManifestFileName}; export the model there with ModelPackage.Export first.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
