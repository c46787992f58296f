using System.Text.Json.Nodes;
using NicheTune.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Models;

/// <summary>
/// Loads and saves models in the Hugging Face folder layout (<c>config.json</c> plus <c>model.safetensors</c>, or shards
/// with <c>model.safetensors.index.json</c>), so that a checkpoint downloaded from the Hub can be fine-tuned here and
/// the result read back by <c>transformers</c>. Supported: GPT-2 (<c>GPT2LMHeadModel</c>) and BERT (<c>BertModel</c>,
/// <c>BertForMaskedLM</c>, <c>BertForSequenceClassification</c>).
/// </summary>
/// <remarks>
/// Loading checks everything before copying: every safetensors header (byte ranges, sizes, dtypes), every tensor name
/// (missing and unexpected ones are errors unless allowed) and every shape. Checkpoints in bf16 or f16 are converted
/// to <see cref="PretrainedLoadOptions.Dtype"/> one tensor at a time, so memory holds the model plus one tensor.
/// </remarks>
public static class PretrainedModel
{
    private const string ConfigFileName = "config.json";

    /// <summary>The Hugging Face class names that <see cref="Load(string, PretrainedLoadOptions?)"/> can build.</summary>
    public static IReadOnlyList<string> SupportedArchitectures { get; } = PretrainedArchitectures.Names.ToArray();

    /// <summary>
    /// Builds the model a Hugging Face folder describes and loads its weights. The architecture comes from
    /// <c>config.json</c> (<c>architectures</c>, else <c>model_type</c>) unless <see cref="PretrainedLoadOptions.Architecture"/> names one.
    /// </summary>
    /// <param name="folder">A folder holding <c>config.json</c> and the weights.</param>
    /// <param name="options">Dtype, device, architecture and key policies; <see langword="null"/> for the defaults.</param>
    /// <returns>The model, in training mode; cast it to its type (e.g. <see cref="BertForMaskedLM"/>) or use <see cref="Load{TModel}"/>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="folder"/> is null.</exception>
    /// <exception cref="ArgumentException"><see cref="PretrainedLoadOptions.Dtype"/> is not a floating-point dtype.</exception>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">The folder has no <c>config.json</c> or no weights.</exception>
    /// <exception cref="NotSupportedException">The architecture is not supported, or the weights are pickle and <see cref="PretrainedLoadOptions.AllowPickle"/> is off.</exception>
    /// <exception cref="PretrainedModelException">Tensors are missing, unexpected or have the wrong shape (each named).</exception>
    /// <exception cref="InvalidDataException"><c>config.json</c>, an index or a safetensors file is invalid or truncated (the file and the problem are named).</exception>
    public static nn.Module Load(string folder, PretrainedLoadOptions? options = null) => LoadWithReport(folder, options).Model;

    /// <summary>
    /// Loads a folder as <typeparamref name="TModel"/>. When the checkpoint was saved from another class of the same
    /// family (a <c>BertForMaskedLM</c> checkpoint loaded as <see cref="BertForSequenceClassification"/>), the shared body
    /// is loaded and the new head keeps its initialization, as <c>AutoModelForSequenceClassification</c> does.
    /// </summary>
    /// <typeparam name="TModel">The module type, e.g. <see cref="BertForSequenceClassification"/>.</typeparam>
    /// <param name="folder">A folder holding <c>config.json</c> and the weights.</param>
    /// <param name="options">Dtype, device and key policies; <see langword="null"/> for the defaults.</param>
    /// <returns>The model.</returns>
    /// <exception cref="InvalidOperationException">No supported architecture builds <typeparamref name="TModel"/> from this folder's model type.</exception>
    /// <exception cref="PretrainedModelException">Tensors are missing, unexpected or have the wrong shape (each named).</exception>
    /// <exception cref="InvalidDataException">A file of the folder is invalid or truncated.</exception>
    public static TModel Load<TModel>(string folder, PretrainedLoadOptions? options = null)
        where TModel : nn.Module
    {
        options ??= new PretrainedLoadOptions();
        if (options.Architecture is null)
        {
            HuggingFaceJson config = ReadConfig(folder, out _);
            ArchitectureEntry natural = Resolve(config, null, Path.Combine(folder, ConfigFileName));
            if (natural.ModuleType != typeof(TModel))
            {
                ArchitectureEntry? wanted = PretrainedArchitectures.All.FirstOrDefault(e => e.ModuleType == typeof(TModel) && e.ModelType == natural.ModelType)
                    ?? throw new InvalidOperationException(
                        $"'{folder}' holds a '{natural.ModelType}' model ({natural.Architecture}); no supported architecture of that family builds a {typeof(TModel).Name}. " +
                        $"Supported: {string.Join(", ", SupportedArchitectures)}.");
                options = With(options, wanted.Architecture);
            }
        }

        nn.Module model = Load(folder, options);
        if (model is TModel typed)
        {
            return typed;
        }

        string built = model.GetType().Name;
        model.Dispose();
        throw new InvalidOperationException($"'{folder}' loads as a {built}, not a {typeof(TModel).Name}; load it as nn.Module or set PretrainedLoadOptions.Architecture.");
    }

    /// <summary>
    /// Loads like <see cref="Load(string, PretrainedLoadOptions?)"/> and also reports what happened to every name: the
    /// tensors skipped by rule, the parameters of a new head left at their initialization, and the missing or
    /// unexpected names that the options allowed.
    /// </summary>
    /// <param name="folder">A folder holding <c>config.json</c> and the weights.</param>
    /// <param name="options">Dtype, device, architecture and key policies; <see langword="null"/> for the defaults.</param>
    /// <returns>The model and the report.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="folder"/> is null.</exception>
    /// <exception cref="ArgumentException"><see cref="PretrainedLoadOptions.Dtype"/> is not a floating-point dtype.</exception>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">The folder has no <c>config.json</c> or no weights.</exception>
    /// <exception cref="NotSupportedException">The architecture is not supported, or the weights are pickle and <see cref="PretrainedLoadOptions.AllowPickle"/> is off.</exception>
    /// <exception cref="PretrainedModelException">Tensors are missing, unexpected or have the wrong shape (each named).</exception>
    /// <exception cref="InvalidDataException"><c>config.json</c>, an index or a safetensors file is invalid or truncated.</exception>
    public static PretrainedLoadResult LoadWithReport(string folder, PretrainedLoadOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(folder);
        options ??= new PretrainedLoadOptions();
        if (!IsFloat(options.Dtype))
        {
            throw new ArgumentException($"PretrainedLoadOptions.Dtype ({options.Dtype}) must be a floating-point dtype: Float32 (the default), BFloat16, Float16 or Float64.", nameof(options));
        }

        HuggingFaceJson config = ReadConfig(folder, out string configText);
        string configPath = Path.Combine(folder, ConfigFileName);
        ArchitectureEntry entry = Resolve(config, options.Architecture, configPath);
        string? checkpointArchitecture = config.Architectures.FirstOrDefault();
        bool headChanged = options.Architecture is not null && options.Architecture != checkpointArchitecture;

        using ICheckpointSource source = CheckpointSources.Open(folder, options.AllowPickle);
        nn.Module model;
        try
        {
            model = entry.Create(configText, options);
        }
        catch (ArgumentException ex)
        {
            throw new InvalidDataException($"'{configPath}' describes a model that cannot be built: {ex.Message}", ex);
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"'{configPath}': {ex.Message}", ex);
        }
        catch (NotSupportedException ex)
        {
            throw new NotSupportedException($"'{configPath}': {ex.Message}", ex);
        }

        try
        {
            if (model.parameters().Any(p => p.dtype != options.Dtype))
            {
                model.to(options.Dtype);
            }

            var plan = Plan(entry, model, source, headChanged);
            Check(plan, source, folder, options);
            Copy(plan, model, source);
            var dtypes = source.Tensors.Values.Select(t => t.Dtype).Distinct().OrderBy(d => d).ToArray();
            return new PretrainedLoadResult(model, entry.Architecture, checkpointArchitecture, source.Files, plan.Matched.Count,
                plan.Missing, plan.Unexpected, plan.Skipped, plan.NewlyInitialized, dtypes);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Writes <paramref name="model"/> as a Hugging Face folder: <c>config.json</c> (with <c>architectures</c>,
    /// <c>model_type</c> and <c>torch_dtype</c>) and <c>model.safetensors</c>, or shards of at most
    /// <see cref="PretrainedSaveOptions.MaxShardSize"/> bytes with <c>model.safetensors.index.json</c>. The folder is written
    /// under a temporary name and renamed into place, so it is never left half-written: on failure the previous folder
    /// is untouched. Other files already in the folder (tokenizer, README) are kept; stale weight files are removed.
    /// </summary>
    /// <param name="model">A model of a supported architecture (see <see cref="SupportedArchitectures"/>).</param>
    /// <param name="folder">The folder to create or replace.</param>
    /// <param name="options">Dtype and shard size; <see langword="null"/> for the defaults.</param>
    /// <exception cref="ArgumentNullException"><paramref name="model"/> or <paramref name="folder"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="PretrainedSaveOptions.MaxShardSize"/> is not positive.</exception>
    /// <exception cref="ArgumentException"><see cref="PretrainedSaveOptions.Dtype"/> is not a floating-point dtype.</exception>
    /// <exception cref="NotSupportedException">The model's type is not a supported architecture.</exception>
    /// <exception cref="IOException">The folder holds sub-folders (which an atomic replace would drop), or writing failed.</exception>
    public static void Save(nn.Module model, string folder, PretrainedSaveOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(folder);
        options ??= new PretrainedSaveOptions();
        if (options.MaxShardSize <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxShardSize, "PretrainedSaveOptions.MaxShardSize must be a positive number of bytes, e.g. 5_000_000_000.");
        }

        if (options.Dtype is { } requested && !IsFloat(requested))
        {
            throw new ArgumentException($"PretrainedSaveOptions.Dtype ({requested}) must be a floating-point dtype (BFloat16, Float16, Float32 or Float64) or null to keep each parameter's own.", nameof(options));
        }

        ArchitectureEntry entry = PretrainedArchitectures.ForModule(model.GetType())
            ?? throw new NotSupportedException(
                $"{model.GetType().Name} is not an architecture PretrainedModel can save; supported: {string.Join(", ", SupportedArchitectures)}. " +
                "Save its weights with model.save(...) or register the architecture.");

        string full = Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar);
        string[] kept = KeptFiles(full);
        var tensors = model.state_dict().ToList();
        var dtypes = tensors.Select(t => SafetensorsFile.StoredDtype(t.Value.dtype, options.Dtype)).Where(IsFloat).Distinct().ToArray();
        var shards = PlanShards(tensors, options);

        CheckpointStore.WriteAtomically(full, temp =>
        {
            File.WriteAllText(Path.Combine(temp, ConfigFileName), ConfigWithDtype(entry.ConfigJson(model), entry.Architecture, dtypes));
            options.AfterFileWrittenForTesting?.Invoke(Path.Combine(temp, ConfigFileName));
            for (int i = 0; i < shards.Count; i++)
            {
                string name = shards.Count == 1
                    ? CheckpointSources.SafetensorsFileName
                    : $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
                SafetensorsFile.Write(Path.Combine(temp, name), shards[i], options.Dtype);
                options.AfterFileWrittenForTesting?.Invoke(Path.Combine(temp, name));
            }

            if (shards.Count > 1)
            {
                File.WriteAllText(Path.Combine(temp, CheckpointSources.SafetensorsIndexFileName), IndexJson(shards, options.Dtype));
            }

            foreach (string file in kept)
            {
                File.Copy(file, Path.Combine(temp, Path.GetFileName(file)));
            }
        });
    }

    /// <summary>The Hugging Face <c>config.json</c> text for <paramref name="model"/> with its weights stored in <paramref name="dtypes"/>; null for an unsupported type.</summary>
    internal static string? ConfigJsonFor(nn.Module model, IEnumerable<ScalarType> dtypes)
    {
        ArchitectureEntry? entry = PretrainedArchitectures.ForModule(model.GetType());
        return entry is null ? null : ConfigWithDtype(entry.ConfigJson(model), entry.Architecture, dtypes.Where(IsFloat).Distinct().ToArray());
    }

    /// <summary>The Hugging Face class name <see cref="Save"/> writes for <paramref name="model"/>, or null for an unsupported type.</summary>
    internal static string? ArchitectureOf(nn.Module model) => PretrainedArchitectures.ForModule(model.GetType())?.Architecture;

    /// <summary>Builds (without weights) the model a <c>config.json</c> text describes, as <paramref name="architecture"/>.</summary>
    internal static nn.Module Create(string configJson, string architecture, PretrainedLoadOptions options)
    {
        ArchitectureEntry entry = PretrainedArchitectures.Find(architecture)
            ?? throw new NotSupportedException($"The architecture '{architecture}' is not supported; supported: {string.Join(", ", SupportedArchitectures)}.");
        nn.Module model = entry.Create(configJson, options);
        if (model.parameters().Any(p => p.dtype != options.Dtype))
        {
            model.to(options.Dtype);
        }

        return model;
    }

    private static PretrainedLoadOptions With(PretrainedLoadOptions options, string architecture) => new()
    {
        Dtype = options.Dtype,
        Device = options.Device,
        Architecture = architecture,
        LabelCount = options.LabelCount,
        AllowMissingKeys = options.AllowMissingKeys,
        AllowUnexpectedKeys = options.AllowUnexpectedKeys,
        AllowPickle = options.AllowPickle,
    };

    private static HuggingFaceJson ReadConfig(string folder, out string text)
    {
        ArgumentNullException.ThrowIfNull(folder);
        if (!Directory.Exists(folder))
        {
            throw new DirectoryNotFoundException($"The model folder '{folder}' does not exist; download the model (config.json and model.safetensors) into it first.");
        }

        string path = Path.Combine(folder, ConfigFileName);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"'{folder}' has no {ConfigFileName}; a Hugging Face model folder holds config.json next to model.safetensors.", path);
        }

        text = File.ReadAllText(path);
        try
        {
            return HuggingFaceJson.Parse(text);
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"'{path}': {ex.Message}", ex);
        }
    }

    private static ArchitectureEntry Resolve(HuggingFaceJson config, string? requested, string configPath)
    {
        string supported = string.Join(", ", SupportedArchitectures);
        string? modelType;
        IReadOnlyList<string> architectures;
        try
        {
            modelType = config.ModelType;
            architectures = config.Architectures;
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"'{configPath}': {ex.Message}", ex);
        }

        if (requested is not null)
        {
            ArchitectureEntry entry = PretrainedArchitectures.Find(requested)
                ?? throw new NotSupportedException($"PretrainedLoadOptions.Architecture '{requested}' is not supported; supported: {supported}.");
            if (modelType is not null && modelType != entry.ModelType)
            {
                throw new InvalidDataException($"'{configPath}' describes a '{modelType}' model, but {requested} is a '{entry.ModelType}' architecture; choose an architecture of the same family.");
            }

            return entry;
        }

        foreach (string architecture in architectures)
        {
            if (PretrainedArchitectures.Find(architecture) is { } entry)
            {
                return entry;
            }
        }

        if (architectures.Count > 0)
        {
            throw new NotSupportedException(
                $"'{configPath}' names architecture {string.Join(", ", architectures)}, which is not supported; supported: {supported}. " +
                "To load only the shared body (or another head of the same family), set PretrainedLoadOptions.Architecture.");
        }

        if (modelType is null)
        {
            throw new InvalidDataException($"'{configPath}' names neither 'architectures' nor 'model_type', so the architecture is unknown; add \"model_type\" (e.g. \"bert\").");
        }

        return PretrainedArchitectures.ForModelType(modelType)
            ?? throw new NotSupportedException($"'{configPath}' has model_type '{modelType}', which is not supported; supported: {supported}.");
    }

    private sealed record LoadPlan(
        Dictionary<string, string> Matched,
        List<string> Missing,
        List<string> Unexpected,
        List<string> Skipped,
        List<string> NewlyInitialized,
        Dictionary<string, Tensor> Targets);

    private static LoadPlan Plan(ArchitectureEntry entry, nn.Module model, ICheckpointSource source, bool headChanged)
    {
        var targets = model.state_dict();
        var tied = new HashSet<string>(entry.TiedKeys(model), StringComparer.Ordinal);
        var mapped = MapNames(entry, source.Tensors.Keys, targets.Keys, headChanged, out var skippedByPrefix);

        var matched = new Dictionary<string, string>(StringComparer.Ordinal);
        var unexpected = new List<string>();
        var skipped = new List<string>(skippedByPrefix);
        foreach ((string checkpointName, string name) in mapped)
        {
            if (targets.ContainsKey(name) && !matched.ContainsKey(name))
            {
                matched[name] = checkpointName;
            }
            else if (tied.Contains(name) || entry.IsSkipped(name) || (headChanged && entry.IsHead(name)))
            {
                skipped.Add(checkpointName);
            }
            else
            {
                unexpected.Add(checkpointName);
            }
        }

        var missing = new List<string>();
        var newlyInitialized = new List<string>();
        foreach (string name in targets.Keys)
        {
            if (!matched.ContainsKey(name))
            {
                (headChanged && entry.IsHead(name) ? newlyInitialized : missing).Add(name);
            }
        }

        return new LoadPlan(matched, missing, unexpected, skipped, newlyInitialized, targets);
    }

    /// <summary>
    /// Maps checkpoint names onto the model's: legacy LayerNorm names (gamma, beta) become weight and bias, and HF's
    /// base-model prefix is added (a bare-body checkpoint loaded into a task model) or stripped (a task checkpoint
    /// loaded into the bare body, whose head tensors are then skipped).
    /// </summary>
    private static List<(string CheckpointName, string Name)> MapNames(ArchitectureEntry entry, IEnumerable<string> checkpointNames, IEnumerable<string> modelNames, bool headChanged, out List<string> skipped)
    {
        skipped = [];
        var names = checkpointNames.Select(n => (CheckpointName: n, Name: RenameLegacy(n))).ToList();
        if (entry.BasePrefix is not { } basePrefix)
        {
            return names;
        }

        string prefix = basePrefix + ".";
        bool modelPrefixed = modelNames.Any(n => n.StartsWith(prefix, StringComparison.Ordinal));
        bool checkpointPrefixed = names.Any(n => n.Name.StartsWith(prefix, StringComparison.Ordinal));
        if (modelPrefixed && !checkpointPrefixed)
        {
            // A bare-body checkpoint: everything moves under the prefix, except names the model has as they are
            // (a head saved next to the body, such as lm_head.weight), as transformers does.
            var own = modelNames.ToHashSet(StringComparer.Ordinal);
            return names.Select(n => own.Contains(n.Name) ? n : (n.CheckpointName, prefix + n.Name)).ToList();
        }

        if (!modelPrefixed && checkpointPrefixed)
        {
            var result = new List<(string, string)>();
            foreach (var n in names)
            {
                if (n.Name.StartsWith(prefix, StringComparison.Ordinal))
                {
                    result.Add((n.CheckpointName, n.Name[prefix.Length..]));
                }
                else
                {
                    skipped.Add(n.CheckpointName);
                }
            }

            return result;
        }

        return names;
    }

    private static string RenameLegacy(string name)
    {
        if (name.EndsWith(".gamma", StringComparison.Ordinal))
        {
            return name[..^".gamma".Length] + ".weight";
        }

        if (name.EndsWith(".beta", StringComparison.Ordinal))
        {
            return name[..^".beta".Length] + ".bias";
        }

        return name;
    }

    private static void Check(LoadPlan plan, ICheckpointSource source, string folder, PretrainedLoadOptions options)
    {
        var mismatches = new List<string>();
        foreach ((string name, string checkpointName) in plan.Matched)
        {
            var (dtype, shape) = source.Tensors[checkpointName];
            long[] expected = plan.Targets[name].shape;
            if (!shape.SequenceEqual(expected))
            {
                mismatches.Add($"'{checkpointName}': the model expects [{string.Join(", ", expected)}] but the checkpoint has [{string.Join(", ", shape)}]");
            }
            else if (!IsFloat(dtype) && IsFloat(plan.Targets[name].dtype))
            {
                mismatches.Add($"'{checkpointName}': the model expects floating-point values but the checkpoint stores {dtype}");
            }
        }

        var missing = options.AllowMissingKeys ? [] : plan.Missing;
        var unexpected = options.AllowUnexpectedKeys ? [] : plan.Unexpected;
        if (missing.Count == 0 && unexpected.Count == 0 && mismatches.Count == 0)
        {
            return;
        }

        var message = new System.Text.StringBuilder($"The checkpoint in '{folder}' does not fit the model its config.json describes.");
        if (mismatches.Count > 0)
        {
            message.Append($" {mismatches.Count} tensor(s) have the wrong shape: ").Append(string.Join("; ", mismatches.Take(20))).Append(More(mismatches.Count))
                .Append(". config.json and the weights disagree: check that both come from the same model.");
        }

        if (missing.Count > 0)
        {
            message.Append($" {missing.Count} parameter(s) are missing from the checkpoint: ").Append(string.Join(", ", missing.Take(20))).Append(More(missing.Count))
                .Append(". Set PretrainedLoadOptions.AllowMissingKeys to keep them at their initialization.");
        }

        if (unexpected.Count > 0)
        {
            message.Append($" {unexpected.Count} checkpoint tensor(s) match no parameter: ").Append(string.Join(", ", unexpected.Take(20))).Append(More(unexpected.Count))
                .Append(". Set PretrainedLoadOptions.AllowUnexpectedKeys to skip them, or PretrainedLoadOptions.Architecture if the checkpoint has another head.");
        }

        throw new PretrainedModelException(message.ToString(), missing, unexpected, mismatches);

        static string More(int count) => count > 20 ? $" and {count - 20} more" : string.Empty;
    }

    private static void Copy(LoadPlan plan, nn.Module model, ICheckpointSource source)
    {
        using var noGrad = torch.no_grad();
        foreach ((string name, string checkpointName) in plan.Matched)
        {
            using var scope = torch.NewDisposeScope();
            // copy_ converts dtype (bf16/f16 → the model's) and device in one step.
            plan.Targets[name].copy_(source.Read(checkpointName));
        }

        model.train();
    }

    private static string[] KeptFiles(string folder)
    {
        if (!Directory.Exists(folder))
        {
            return [];
        }

        string? subfolder = Directory.GetDirectories(folder).FirstOrDefault();
        if (subfolder is not null)
        {
            throw new IOException(
                $"'{folder}' holds the sub-folder '{Path.GetFileName(subfolder)}'. Save replaces the folder atomically and keeps only its top-level files; " +
                "save into an empty folder or one holding only model files (config.json, weights, tokenizer files).");
        }

        return Directory.GetFiles(folder).Where(f => !IsModelFile(Path.GetFileName(f))).ToArray();
    }

    private static bool IsModelFile(string name)
        => name is ConfigFileName or CheckpointSources.SafetensorsFileName or CheckpointSources.SafetensorsIndexFileName
            or CheckpointSources.PickleFileName or CheckpointSources.PickleIndexFileName
        || (name.StartsWith("model-", StringComparison.Ordinal) && name.EndsWith(".safetensors", StringComparison.Ordinal))
        || (name.StartsWith("pytorch_model-", StringComparison.Ordinal) && name.EndsWith(".bin", StringComparison.Ordinal));

    private static List<List<KeyValuePair<string, Tensor>>> PlanShards(List<KeyValuePair<string, Tensor>> tensors, PretrainedSaveOptions options)
    {
        var shards = new List<List<KeyValuePair<string, Tensor>>> { new() };
        long size = 0;
        foreach (var tensor in tensors)
        {
            long bytes = tensor.Value.NumberOfElements * SafetensorsFile.ElementSize(SafetensorsFile.StoredDtype(tensor.Value.dtype, options.Dtype));
            if (size + bytes > options.MaxShardSize && shards[^1].Count > 0)
            {
                shards.Add([]);
                size = 0;
            }

            shards[^1].Add(tensor);
            size += bytes;
        }

        return shards;
    }

    private static string IndexJson(List<List<KeyValuePair<string, Tensor>>> shards, ScalarType? dtype)
    {
        long total = 0;
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < shards.Count; i++)
        {
            string file = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            foreach (var (name, tensor) in shards[i])
            {
                total += tensor.NumberOfElements * SafetensorsFile.ElementSize(SafetensorsFile.StoredDtype(tensor.dtype, dtype));
                weightMap[name] = file;
            }
        }

        var map = new JsonObject();
        foreach (var (name, file) in weightMap)
        {
            map[name] = file;
        }

        return HuggingFaceJson.Write(new JsonObject
        {
            ["metadata"] = new JsonObject { ["total_size"] = total },
            ["weight_map"] = map,
        });
    }

    private static string ConfigWithDtype(string configJson, string architecture, ScalarType[] dtypes)
    {
        var json = (JsonObject)JsonNode.Parse(configJson)!;
        json["architectures"] ??= new JsonArray(architecture);
        json["torch_dtype"] = dtypes.Length == 1 ? TorchDtypeName(dtypes[0]) : "float32";
        return HuggingFaceJson.Write(json);
    }

    private static bool IsFloat(ScalarType dtype) => dtype is ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Float64;

    private static string TorchDtypeName(ScalarType dtype) => dtype switch
    {
        ScalarType.BFloat16 => "bfloat16",
        ScalarType.Float16 => "float16",
        ScalarType.Float64 => "float64",
        _ => "float32",
    };
}
