using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using NicheTune.Freezing;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Models;

/// <summary>
/// Low-rank adaptation (LoRA, Hu et al. 2021) of any TorchSharp model whose linear layers are <c>nn.Linear</c> or GPT-2's
/// Conv1D: <c>var adapter = LoRA.Apply(model, new LoRAOptions { Rank = 8, Alpha = 16, Targets = ["c_attn"] })</c> freezes
/// every base weight and adds trainable low-rank matrices named as PEFT names them; the returned
/// <see cref="LoRAAdapter"/> reports parameter counts, merges for deployment, saves the adapter in PEFT's layout, and removes
/// it again. In a fine-tuning plan use <c>.WithLoRA(…)</c> on the builder instead.
/// </summary>
public static class LoRA
{
    private static readonly ConditionalWeakTable<nn.Module, LoRAAdapter> Adapters = [];

    /// <summary>Adds a LoRA adapter to <paramref name="model"/> in place and freezes its base weights.</summary>
    /// <param name="model">The model; it must not already carry an adapter.</param>
    /// <param name="options">Rank, alpha, dropout, targets and the rest; see <see cref="LoRAOptions"/>.</param>
    /// <returns>The adapter's handle.</returns>
    /// <exception cref="ArgumentNullException">An argument is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException">
    /// The options are invalid, a target or module to save matches no module (the message names the closest module names),
    /// or a target matches a module that is not a linear layer. The model is left unchanged.
    /// </exception>
    /// <exception cref="InvalidOperationException">The model already carries a LoRA adapter; remove it first.</exception>
    public static LoRAAdapter Apply(nn.Module model, LoRAOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        TorchBackend.EnsureAvailable();
        IReadOnlyList<string> problems = Check(model, options, out var targets, out var saved);
        if (problems.Count > 0)
        {
            throw new ArgumentException(string.Join(Environment.NewLine, problems), nameof(options));
        }

        if (Adapters.TryGetValue(model, out LoRAAdapter? existing) && !existing.IsRemoved)
        {
            throw new InvalidOperationException($"The model already carries a LoRA adapter on {existing.AdaptedModules.Length} module(s); call Remove() or MergeAndRemove() on it (LoRA.AdapterOf(model)) before applying another.");
        }

        var adapter = new LoRAAdapter(model, options, targets, saved);
        Adapters.AddOrUpdate(model, adapter);
        return adapter;
    }

    /// <summary>
    /// Reads an adapter saved by <see cref="LoRAAdapter.Save"/> (or by PEFT's <c>save_pretrained</c> for a LoRA adapter
    /// with list targets): applies it to <paramref name="model"/> with the saved settings and loads its weights exactly.
    /// </summary>
    /// <param name="model">The base model the adapter was trained on (same architecture and module names).</param>
    /// <param name="directory">The folder with <c>adapter_config.json</c> and <c>adapter_model.safetensors</c>.</param>
    /// <returns>The adapter's handle.</returns>
    /// <exception cref="ArgumentNullException">An argument is <see langword="null"/>.</exception>
    /// <exception cref="FileNotFoundException">A file is missing.</exception>
    /// <exception cref="InvalidDataException">The config is not a LoRA config this library reads, the weights file is truncated, or its tensors do not fit the model; the model is left unchanged.</exception>
    /// <exception cref="ArgumentException">The saved targets do not match the model's modules.</exception>
    public static LoRAAdapter Load(nn.Module model, string directory)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        LoRAOptions options = PeftAdapterFormat.ReadConfig(Path.Combine(directory, PeftAdapterFormat.ConfigFile));
        LoRAAdapter adapter = Apply(model, options);
        try
        {
            adapter.LoadWeights(Path.Combine(directory, PeftAdapterFormat.WeightsFile));
        }
        catch
        {
            adapter.Remove();
            throw;
        }

        return adapter;
    }

    /// <summary>The adapter currently applied to <paramref name="model"/> (by <see cref="Apply"/>, <see cref="Load"/> or a plan's <c>WithLoRA</c>), or <see langword="null"/>.</summary>
    /// <param name="model">The model.</param>
    /// <returns>The adapter or <see langword="null"/>.</returns>
    public static LoRAAdapter? AdapterOf(nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Adapters.TryGetValue(model, out LoRAAdapter? adapter) && !adapter.IsRemoved ? adapter : null;
    }

    /// <summary>Checks <paramref name="options"/> against <paramref name="model"/> without changing it.</summary>
    internal static IReadOnlyList<string> Check(nn.Module model, LoRAOptions options, out ImmutableArray<(string Path, nn.Module Module)> targets, out ImmutableArray<(string Path, nn.Module Module)> saved)
    {
        var problems = new List<string>(options.Validate());
        targets = [];
        saved = [];
        if (problems.Count > 0)
        {
            return problems;
        }

        var modules = Walk(model, string.Empty).Where(m => m.Path.Length > 0).ToList();
        if (modules.Any(m => m.Path.EndsWith("." + LoRALayer.AName, StringComparison.Ordinal)))
        {
            problems.Add("The model already has lora_A modules (an adapter is applied); remove it before applying another.");
            return problems;
        }

        var targetList = new List<(string, nn.Module)>();
        foreach (string target in options.Targets)
        {
            if (!modules.Any(m => Matches(m.Path, target)))
            {
                problems.Add($"LoRA target '{target}' matches no module of {model.GetType().Name}; closest module names: {Closest(modules, target)}. Targets match a module's full name or its last dot-separated parts.");
            }
        }

        foreach ((string path, nn.Module module) in modules)
        {
            string? target = options.Targets.FirstOrDefault(t => Matches(path, t));
            if (target is null)
            {
                continue;
            }

            if (LoRALayer.TryDescribe(module, out _, out _, out _))
            {
                targetList.Add((path, module));
            }
            else
            {
                problems.Add($"LoRA target '{target}' matches '{path}', a {module.GetType().Name}, but LoRA adapts only nn.Linear and GPT-2 Conv1D layers; target its linear layers instead (e.g. {Closest(modules.Where(m => LoRALayer.TryDescribe(m.Module, out _, out _, out _)).ToList(), target)}).");
            }
        }

        var savedList = new List<(string, nn.Module)>();
        foreach (string name in options.ModulesToSave)
        {
            var matched = modules.Where(m => Matches(m.Path, name)).ToList();
            if (matched.Count == 0)
            {
                problems.Add($"LoRA module to save '{name}' matches no module of {model.GetType().Name}; closest module names: {Closest(modules, name)}.");
                continue;
            }

            foreach ((string path, nn.Module module) in matched)
            {
                if (targetList.Any(t => t.Item1 == path || t.Item1.StartsWith(path + ".", StringComparison.Ordinal) || path.StartsWith(t.Item1 + ".", StringComparison.Ordinal)))
                {
                    problems.Add($"LoRA module to save '{path}' overlaps the adapted module(s) inside or around it; a module is either adapted or trained in full.");
                }
                else if (!module.parameters().Any())
                {
                    problems.Add($"LoRA module to save '{path}' has no parameters; name a module with weights, e.g. the classification head.");
                }
                else if (!savedList.Any(s => s.Item1 == path))
                {
                    savedList.Add((path, module));
                }
            }
        }

        targets = [.. targetList];
        saved = [.. savedList];
        return problems;
    }

    internal static bool Matches(string path, string target)
        => path == target || path.EndsWith("." + target, StringComparison.Ordinal);

    // Pre-order in registration order, so adapted modules are listed (and saved) in model order.
    internal static IEnumerable<(string Path, nn.Module Module)> Walk(nn.Module module, string prefix)
    {
        yield return (prefix, module);
        foreach ((string name, nn.Module child) in module.named_children())
        {
            foreach (var item in Walk(child, prefix.Length == 0 ? name : prefix + "." + name))
            {
                yield return item;
            }
        }
    }

    // The names a user would type: each module's last k segments, k being the target's segment count.
    private static string Closest(IReadOnlyList<(string Path, nn.Module Module)> modules, string target)
    {
        if (modules.Count == 0)
        {
            return "(the model has no sub-modules)";
        }

        int segments = target.Split('.').Length;
        var suffixes = modules
            .Select(m => string.Join('.', m.Path.Split('.').TakeLast(segments)))
            .Distinct(StringComparer.Ordinal)
            .ToList();
        return Glob.Closest(suffixes, target);
    }
}
