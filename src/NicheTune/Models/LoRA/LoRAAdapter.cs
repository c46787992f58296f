using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using NicheTune.Training;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace NicheTune.Models;

/// <summary>
/// A LoRA adapter applied to a model (from <see cref="LoRA.Apply"/>, <see cref="LoRA.Load"/> or a plan's <c>WithLoRA</c>).
/// While applied, every base weight is frozen (<c>requires_grad = false</c>) and only the low-rank matrices (plus the
/// biases and modules to save that <see cref="Options"/> name) train. It merges into the base weights for deployment and
/// back, saves in PEFT's layout, and removes itself, leaving the base model exactly as it was.
/// </summary>
public sealed class LoRAAdapter
{
    private readonly ImmutableArray<LoRALayer> _layers;
    private readonly Dictionary<string, bool> _originalRequiresGrad = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Tensor> _savedOriginals = new(StringComparer.Ordinal);
    private readonly ImmutableArray<string> _extraTrainable;

    internal LoRAAdapter(nn.Module model, LoRAOptions options, ImmutableArray<(string Path, nn.Module Module)> targets, ImmutableArray<(string Path, nn.Module Module)> saved)
    {
        Model = model;
        Options = options;
        foreach ((string name, Parameter parameter) in model.named_parameters())
        {
            _originalRequiresGrad[name] = parameter.requires_grad;
        }

        var layers = ImmutableArray.CreateBuilder<LoRALayer>(targets.Length);
        try
        {
            foreach ((string path, nn.Module module) in targets)
            {
                layers.Add(LoRALayer.Attach(path, module, options));
            }
        }
        catch
        {
            foreach (LoRALayer layer in layers)
            {
                layer.Dispose();
            }

            throw;
        }

        _layers = layers.ToImmutable();
        AdaptedModules = [.. targets.Select(t => t.Path)];
        SavedModules = [.. saved.Select(s => s.Path)];
        var extra = new List<string>();
        using (torch.no_grad())
        {
            foreach ((string path, nn.Module module) in saved)
            {
                foreach ((string name, Parameter parameter) in module.named_parameters())
                {
                    // Kept so that Remove() can restore the module PEFT would have left untouched (it trains a copy).
                    _savedOriginals[path + "." + name] = parameter.detach().clone().DetachFromDisposeScope();
                    extra.Add(path + "." + name);
                }
            }
        }

        var adapted = AdaptedModules.ToHashSet(StringComparer.Ordinal);
        foreach (string name in _originalRequiresGrad.Keys)
        {
            bool isBias = name.EndsWith(".bias", StringComparison.Ordinal) || name == "bias";
            string owner = name.Contains('.', StringComparison.Ordinal) ? name[..name.LastIndexOf('.')] : string.Empty;
            if ((options.Bias == LoRABias.All && isBias) || (options.Bias == LoRABias.LoRAOnly && isBias && adapted.Contains(owner)))
            {
                extra.Add(name);
            }
        }

        _extraTrainable = [.. extra.Distinct(StringComparer.Ordinal)];
        var trainable = _extraTrainable.ToHashSet(StringComparer.Ordinal);
        foreach ((string name, Parameter parameter) in model.named_parameters())
        {
            parameter.requires_grad = trainable.Contains(name) || IsLoRAParameter(name);
        }
    }

    /// <summary>The model the adapter is applied to.</summary>
    public nn.Module Model { get; }

    /// <summary>The settings it was applied with.</summary>
    public LoRAOptions Options { get; }

    /// <summary>The full names of the adapted modules, in model order, e.g. <c>transformer.h.0.attn.c_attn</c>.</summary>
    public ImmutableArray<string> AdaptedModules { get; }

    /// <summary>The full names of the modules trained in full and saved with the adapter (<see cref="LoRAOptions.ModulesToSave"/>).</summary>
    public ImmutableArray<string> SavedModules { get; }

    /// <summary>Whether the low-rank updates are currently added into the base weights (see <see cref="Merge"/>).</summary>
    public bool IsMerged => _layers.Length > 0 && _layers[0].IsMerged;

    /// <summary>Whether <see cref="Remove"/> or <see cref="MergeAndRemove"/> has been called; a removed adapter does nothing more.</summary>
    public bool IsRemoved { get; private set; }

    /// <summary>Number of weights in the low-rank matrices alone (r × (d_in + d_out) per adapted module).</summary>
    public long AdapterParameterCount => _layers.Sum(l => l.A.numel() + l.B.numel());

    /// <summary>Number of weights that currently have <c>requires_grad</c> set (low-rank matrices, trained biases, modules to save).</summary>
    public long TrainableParameterCount => Model.parameters().Where(p => p.requires_grad).Sum(p => p.numel());

    /// <summary>Number of weights in the model, the low-rank matrices included (as PEFT counts "all params").</summary>
    public long TotalParameterCount => Model.parameters().Sum(p => p.numel());

    /// <summary>
    /// The adapted modules whose forward hook has not run since the adapter was applied. After a forward pass this must be
    /// empty: a module listed here is invoked by its parent with <c>forward(x)</c>, which skips TorchSharp's hooks, so its
    /// low-rank update is never used; change the parent to <c>call(x)</c>.
    /// </summary>
    public ImmutableArray<string> UnusedModules => [.. _layers.Where(l => l.Calls == 0).Select(l => l.Path)];

    internal ImmutableArray<LoRALayer> Layers => _layers;

    /// <summary>
    /// One line like PEFT's <c>print_trainable_parameters()</c>, then the settings and the adapted modules, e.g.
    /// <c>trainable params: 12,288 || all params: 210,320 || trainable%: 5.8425</c>.
    /// </summary>
    /// <returns>The description.</returns>
    public string Describe()
    {
        long trainable = TrainableParameterCount;
        long total = TotalParameterCount;
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"trainable params: {trainable:N0} || all params: {total:N0} || trainable%: {100.0 * trainable / Math.Max(total, 1):F4}");
        text.AppendLine(CultureInfo.InvariantCulture, $"LoRA r={Options.Rank}, alpha={Options.Alpha:G6} (scaling {Options.Scaling:G6}), dropout={Options.Dropout:G6}, bias={PeftAdapterFormat.BiasName(Options.Bias)}, low-rank weights {AdapterParameterCount:N0}{(IsMerged ? ", merged" : string.Empty)}");
        text.Append(CultureInfo.InvariantCulture, $"adapted ({_layers.Length}): {string.Join(", ", _layers.Select(l => $"{l.Path} [{l.InFeatures}→{l.OutFeatures}]"))}");
        if (SavedModules.Length > 0)
        {
            text.AppendLine().Append(CultureInfo.InvariantCulture, $"trained in full: {string.Join(", ", SavedModules)}");
        }

        return text.ToString();
    }

    /// <summary>
    /// Adds s · B A into every adapted base weight, so the model runs at the base model's speed with the adapter's output
    /// (equal to the unmerged output within float rounding). The adapter stays attached: <see cref="Unmerge"/> reverses it.
    /// Training while merged is not meaningful; merge after training.
    /// </summary>
    /// <exception cref="InvalidOperationException">The adapter was removed.</exception>
    public void Merge()
    {
        ThrowIfRemoved();
        foreach (LoRALayer layer in _layers)
        {
            layer.Merge();
        }
    }

    /// <summary>Subtracts the update again, restoring the base weights (within float rounding of the merge).</summary>
    /// <exception cref="InvalidOperationException">The adapter was removed.</exception>
    public void Unmerge()
    {
        ThrowIfRemoved();
        foreach (LoRALayer layer in _layers)
        {
            layer.Unmerge();
        }
    }

    /// <summary>
    /// Takes the adapter off: unmerges if merged, unregisters the low-rank modules, restores the modules to save to their
    /// original values and every <c>requires_grad</c> flag to what it was before the adapter was applied. Biases trained
    /// with <see cref="LoRABias.All"/> or <see cref="LoRABias.LoRAOnly"/> keep their trained values.
    /// </summary>
    public void Remove()
    {
        if (IsRemoved)
        {
            return;
        }

        Unmerge();
        using (torch.no_grad())
        {
            var parameters = Model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
            foreach ((string name, Tensor original) in _savedOriginals)
            {
                parameters[name].copy_(original);
            }
        }

        Detach();
    }

    /// <summary>Bakes the adapter into the base weights (the deployed model) and takes it off; trained modules to save keep their values.</summary>
    /// <exception cref="InvalidOperationException">The adapter was removed.</exception>
    public void MergeAndRemove()
    {
        Merge();
        Detach();
    }

    /// <summary>
    /// Writes the adapter alone in PEFT's layout into <paramref name="directory"/>, atomically (a temporary folder renamed
    /// into place): <c>adapter_config.json</c> (peft_type LORA, r, lora_alpha, lora_dropout, target_modules, bias,
    /// fan_in_fan_out, task_type, modules_to_save, base_model_name_or_path) and <c>adapter_model.safetensors</c> with keys
    /// <c>base_model.model.&lt;module&gt;.lora_A.weight</c> / <c>lora_B.weight</c> (no adapter name, as PEFT saves), the
    /// trained biases and the modules to save.
    /// </summary>
    /// <param name="directory">The adapter folder; replaced if it exists.</param>
    /// <exception cref="InvalidOperationException">The adapter was removed, or it adapts both Linear and Conv1D modules (PEFT's single <c>fan_in_fan_out</c> flag cannot describe that).</exception>
    public void Save(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        ThrowIfRemoved();
        bool fanInFanOut = _layers.Length > 0 && _layers[0].FanInFanOut;
        if (_layers.Any(l => l.FanInFanOut != fanInFanOut))
        {
            throw new InvalidOperationException($"The adapter adapts both nn.Linear and GPT-2 Conv1D modules ({string.Join(", ", _layers.Select(l => l.Path))}); PEFT's adapter_config.json has one fan_in_fan_out flag, so save adapters of one layer kind only.");
        }

        string json = PeftAdapterFormat.WriteConfig(Options, fanInFanOut, Model);
        CheckpointStore.WriteAtomically(directory, folder =>
        {
            using var scope = torch.NewDisposeScope();
            var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            foreach ((string key, Tensor tensor) in StateDict())
            {
                tensors[key] = tensor.detach().cpu().contiguous();
            }

            Safetensors.SaveStateDict(Path.Combine(folder, PeftAdapterFormat.WeightsFile), tensors);
            File.WriteAllText(Path.Combine(folder, PeftAdapterFormat.ConfigFile), json);
        });
    }

    /// <summary>The tensors <see cref="Save"/> writes, by PEFT key (the live parameters, not copies).</summary>
    /// <returns>Key → parameter, in model order.</returns>
    public IReadOnlyDictionary<string, Tensor> StateDict()
    {
        ThrowIfRemoved();
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (LoRALayer layer in _layers)
        {
            result[PeftAdapterFormat.Prefix + layer.Path + "." + LoRALayer.AName + ".weight"] = layer.A;
            result[PeftAdapterFormat.Prefix + layer.Path + "." + LoRALayer.BName + ".weight"] = layer.B;
        }

        var parameters = Model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        foreach (string name in _extraTrainable)
        {
            result[PeftAdapterFormat.Prefix + PeftKeyOf(name)] = parameters[name];
        }

        return result;
    }

    internal void LoadWeights(string path)
    {
        SafetensorsFile.Validate(path);
        using var scope = torch.NewDisposeScope();
        Dictionary<string, Tensor> loaded = Safetensors.LoadStateDict(path);
        IReadOnlyDictionary<string, Tensor> expected = StateDict();
        var byModelKey = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var problems = new List<string>();
        foreach ((string key, Tensor tensor) in loaded)
        {
            // PEFT names an adapted module's own bias "<module>.base_layer.bias"; older files use "<module>.bias".
            string normalised = key.Replace(".base_layer.", ".", StringComparison.Ordinal);
            string? match = expected.ContainsKey(key) ? key : expected.Keys.FirstOrDefault(k => k.Replace(".base_layer.", ".", StringComparison.Ordinal) == normalised);
            if (match is null)
            {
                problems.Add($"'{key}' has no counterpart in the adapter applied to the model");
                continue;
            }

            Tensor target = expected[match];
            if (!target.shape.SequenceEqual(tensor.shape))
            {
                problems.Add($"'{key}' has shape [{string.Join(", ", tensor.shape)}] but the model expects [{string.Join(", ", target.shape)}]");
                continue;
            }

            byModelKey[match] = tensor;
        }

        foreach (string key in expected.Keys.Where(k => !byModelKey.ContainsKey(k)))
        {
            problems.Add($"'{key}' is missing from the file");
        }

        if (problems.Count > 0)
        {
            throw new InvalidDataException($"The adapter weights in '{path}' do not fit the model: {string.Join("; ", problems.Take(5))}{(problems.Count > 5 ? $"; and {problems.Count - 5} more" : string.Empty)}. Load an adapter trained on this base model.");
        }

        using var noGrad = torch.no_grad();
        bool wasMerged = IsMerged;
        Unmerge();
        foreach ((string key, Tensor tensor) in byModelKey)
        {
            Tensor target = expected[key];
            target.copy_(tensor.to(target.dtype, target.device));
        }

        if (wasMerged)
        {
            Merge();
        }
    }

    private static bool IsLoRAParameter(string name)
        => name.Contains("." + LoRALayer.AName + ".", StringComparison.Ordinal) || name.Contains("." + LoRALayer.BName + ".", StringComparison.Ordinal);

    private string PeftKeyOf(string parameterName)
    {
        int dot = parameterName.LastIndexOf('.');
        string owner = dot < 0 ? string.Empty : parameterName[..dot];
        // PEFT wraps an adapted module, so its own parameters live under "base_layer".
        return AdaptedModules.Contains(owner) ? owner + ".base_layer" + parameterName[dot..] : parameterName;
    }

    private void Detach()
    {
        foreach (LoRALayer layer in _layers)
        {
            layer.Dispose();
        }

        foreach ((string name, Parameter parameter) in Model.named_parameters())
        {
            if (_originalRequiresGrad.TryGetValue(name, out bool original))
            {
                parameter.requires_grad = original;
            }
        }

        foreach (Tensor original in _savedOriginals.Values)
        {
            original.Dispose();
        }

        _savedOriginals.Clear();
        IsRemoved = true;
    }

    private void ThrowIfRemoved()
    {
        if (IsRemoved)
        {
            throw new InvalidOperationException("The LoRA adapter was removed from the model; apply a new one with LoRA.Apply or LoRA.Load.");
        }
    }
}
