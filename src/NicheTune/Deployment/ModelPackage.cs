using System.Collections.Immutable;
using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using NicheTune.Models;
using NicheTune.Text;
using NicheTune.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Deployment;

/// <summary>
/// Writes a trained model as one self-describing folder that <see cref="NicheModel.Load"/> serves: the weights
/// (<c>model.safetensors</c>, LoRA merged unless asked otherwise), <c>config.json</c>, the tokenizer files,
/// <c>labels.json</c>, <c>evaluation.json</c>, a <c>model-card.md</c>, and a <c>package.json</c> manifest with the
/// format and model versions, how to call the model (objective, prompt template) and a SHA-256 of every file.
/// </summary>
/// <remarks>
/// The folder is written under a temporary name beside the target and renamed into place, so readers see either the
/// previous package or the complete new one, never a half-written folder. Causal LMs and <c>BertForSequenceClassification</c>
/// are also ordinary Hugging Face folders (<c>PretrainedModel.Load</c> and <c>transformers</c> read them).
/// </remarks>
public static class ModelPackage
{
    /// <summary>The manifest's file name.</summary>
    public const string ManifestFileName = "package.json";

    internal const string WeightsFileName = "model.safetensors";
    internal const string ConfigFileName = "config.json";
    internal const string LabelsFileName = "labels.json";
    internal const string EvaluationFileName = "evaluation.json";
    internal const string CardFileName = "model-card.md";
    internal const string AdapterFolderName = "adapter";
    internal const string MeanPoolArchitecture = nameof(MeanPoolClassifier);

    private static readonly string[] TokenizerFiles =
    [
        "vocab.json", "merges.txt", "vocab.txt", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "tokenizer.json",
    ];

    internal static JsonSerializerOptions JsonOptions { get; } = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    /// <summary>
    /// Exports <paramref name="model"/> into <paramref name="folder"/> (created, or replaced atomically). Supported: causal
    /// LMs (<see cref="Gpt2LMHeadModel"/>, <see cref="LlamaForCausalLM"/>), <see cref="BertForSequenceClassification"/> and
    /// <see cref="MeanPoolClassifier"/>. The model is not changed (a LoRA adapter is merged for the copy and unmerged after).
    /// </summary>
    /// <param name="model">The trained model.</param>
    /// <param name="folder">The package folder.</param>
    /// <param name="options">Tokenizer, labels, template, card and versions.</param>
    /// <returns>The manifest written.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="NotSupportedException">The model's type cannot be packaged.</exception>
    /// <exception cref="ArgumentException">The options do not fit the model (labels missing or of the wrong count, no tokenizer files for a non-byte tokenizer, a template without <c>{text}</c>, verbalizations of another count).</exception>
    /// <exception cref="IOException">Writing failed; the target folder is left as it was.</exception>
    public static ModelPackageManifest Export(nn.Module model, string folder, ModelPackageOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(options.Tokenizer);

        string full = Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar);
        LoRAAdapter? adapter = LoRA.AdapterOf(model);
        bool keepAdapter = adapter is not null && !options.MergeLoRA;
        Description description = Describe(model, options);
        bool merged = false;
        if (adapter is not null && options.MergeLoRA && !adapter.IsMerged)
        {
            adapter.Merge();
            merged = true;
        }

        try
        {
            if (keepAdapter && adapter!.IsMerged)
            {
                throw new ArgumentException("The model's LoRA adapter is merged; with MergeLoRA = false the base weights and the adapter are written apart. Unmerge() it first, or export with MergeLoRA = true.", nameof(options));
            }

            ModelPackageManifest? written = null;
            CheckpointStore.WriteAtomically(full, temp =>
            {
                using var scope = torch.NewDisposeScope();
                var tensors = model.state_dict()
                    .Where(p => !IsLoRAName(p.Key))
                    .Select(p => new KeyValuePair<string, Tensor>(p.Key, p.Value.detach().cpu().contiguous()))
                    .ToList();
                var dtypes = tensors.Select(t => SafetensorsFile.StoredDtype(t.Value.dtype, options.Dtype)).ToArray();
                SafetensorsFile.Write(Path.Combine(temp, WeightsFileName), tensors, options.Dtype);
                File.WriteAllText(Path.Combine(temp, ConfigFileName), description.ConfigJson(dtypes));
                if (keepAdapter)
                {
                    adapter!.Save(Path.Combine(temp, AdapterFolderName));
                }

                if (options.TokenizerFolder is { } tokenizerFolder)
                {
                    foreach (string name in TokenizerFiles.Where(n => File.Exists(Path.Combine(tokenizerFolder, n))))
                    {
                        File.Copy(Path.Combine(tokenizerFolder, name), Path.Combine(temp, name));
                    }
                }

                if (description.Labels is { } labels)
                {
                    File.WriteAllText(Path.Combine(temp, LabelsFileName), labels.ToJson());
                }

                File.WriteAllText(Path.Combine(temp, EvaluationFileName), EvaluationJson(options));
                string name2 = options.Name ?? Path.GetFileName(full);
                var manifest = new ModelPackageManifest
                {
                    NicheTuneVersion = LibraryVersion,
                    Version = options.Version,
                    Name = name2,
                    CreatedUtc = DateTimeOffset.UtcNow,
                    Kind = description.Kind,
                    Architecture = description.Architecture,
                    BodyArchitecture = description.BodyArchitecture,
                    Objective = description.Objective,
                    Labels = description.Labels is null ? [] : [.. description.Labels.Labels],
                    PromptTemplate = description.Kind == ModelPackageKind.CausalLanguageModel ? options.PromptTemplate?.Template : null,
                    Verbalizations = options.Verbalizations,
                    Tokenizer = options.Tokenizer is ByteTokenizer ? "byte" : "folder",
                    MaxLength = description.MaxLength,
                    Dtype = SafetensorsFile.DtypeName(dtypes.Distinct().Count() == 1 ? dtypes[0] : ScalarType.Float32),
                    LoRA = adapter is null ? "none" : keepAdapter ? "adapter" : "merged",
                };
                File.WriteAllText(Path.Combine(temp, CardFileName), ModelCardWriter.Write(manifest, options, model));
                manifest = WithHashes(manifest, temp);
                File.WriteAllText(Path.Combine(temp, ManifestFileName), JsonSerializer.Serialize(manifest, JsonOptions));
                options.BeforeCommitForTesting?.Invoke(temp);
                written = manifest;
            });
            return written!;
        }
        finally
        {
            if (merged)
            {
                adapter!.Unmerge();
            }
        }
    }

    /// <summary>Reads a package's manifest without checking its files (see <see cref="Verify"/>).</summary>
    /// <param name="folder">The package folder.</param>
    /// <returns>The manifest.</returns>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="InvalidDataException">The folder has no <c>package.json</c>, or it is not a manifest this version reads.</exception>
    public static ModelPackageManifest ReadManifest(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        if (!Directory.Exists(folder))
        {
            throw new DirectoryNotFoundException($"The model package '{folder}' does not exist; export one with ModelPackage.Export(model, folder, options).");
        }

        string path = Path.Combine(folder, ManifestFileName);
        if (!File.Exists(path))
        {
            throw new InvalidDataException($"'{folder}' has no {ManifestFileName}, so it is not a complete model package (a partial copy, or a plain model folder); export it with ModelPackage.Export.");
        }

        ModelPackageManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<ModelPackageManifest>(File.ReadAllText(path), JsonOptions);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"'{path}' is not a valid package manifest: {ex.Message}", ex);
        }

        if (manifest is null || manifest.Files.IsEmpty)
        {
            throw new InvalidDataException($"'{path}' lists no files; the package is incomplete. Export it again.");
        }

        if (manifest.FormatVersion > ModelPackageManifest.CurrentFormatVersion)
        {
            throw new InvalidDataException($"'{path}' has format version {manifest.FormatVersion}, newer than this NicheTune ({LibraryVersion}) reads ({ModelPackageManifest.CurrentFormatVersion}); update NicheTune.");
        }

        return manifest;
    }

    /// <summary>
    /// Reads the manifest and checks every file it lists against its SHA-256, and the content hash against the list.
    /// </summary>
    /// <param name="folder">The package folder.</param>
    /// <returns>The verified manifest.</returns>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="InvalidDataException">A file is missing or changed (each named), or the manifest is invalid.</exception>
    public static ModelPackageManifest Verify(string folder)
    {
        ModelPackageManifest manifest = ReadManifest(folder);
        var problems = new List<string>();
        foreach ((string relative, string expected) in manifest.Files)
        {
            string path = Path.Combine(folder, relative.Replace('/', Path.DirectorySeparatorChar));
            if (!File.Exists(path))
            {
                problems.Add($"'{relative}' is missing");
            }
            else if (!string.Equals(HashFile(path), expected, StringComparison.Ordinal))
            {
                problems.Add($"'{relative}' has changed (SHA-256 differs from the manifest)");
            }
        }

        string content = ContentHash(manifest.Files);
        if (!string.Equals(content, manifest.ContentHash, StringComparison.Ordinal))
        {
            problems.Add($"the content hash {manifest.ContentHash} does not match the listed files ({content})");
        }

        if (problems.Count > 0)
        {
            throw new InvalidDataException(
                $"The model package '{folder}' is damaged or was modified: {string.Join("; ", problems)}. Export the model again, or copy the whole folder from its source.");
        }

        return manifest;
    }

    internal static string LibraryVersion { get; } =
        typeof(ModelPackage).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? typeof(ModelPackage).Assembly.GetName().Version?.ToString() ?? "0.0.0";

    internal static bool IsLoRAName(string name)
        => name.Contains(".lora_A.", StringComparison.Ordinal) || name.Contains(".lora_B.", StringComparison.Ordinal) || name.Contains(".lora_dropout.", StringComparison.Ordinal);

    private static ModelPackageManifest WithHashes(ModelPackageManifest manifest, string folder)
    {
        var files = ImmutableSortedDictionary.CreateBuilder<string, string>(StringComparer.Ordinal);
        foreach (string file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories))
        {
            string relative = Path.GetRelativePath(folder, file).Replace(Path.DirectorySeparatorChar, '/');
            if (relative != ManifestFileName)
            {
                files[relative] = HashFile(file);
            }
        }

        var list = files.ToImmutable();
        return manifest with { Files = list, ContentHash = ContentHash(list) };
    }

    private static string ContentHash(ImmutableSortedDictionary<string, string> files)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach ((string path, string fileHash) in files.OrderBy(f => f.Key, StringComparer.Ordinal))
        {
            hash.AppendData(Encoding.UTF8.GetBytes(path + "\n" + fileHash + "\n"));
        }

        return Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();
    }

    private static string HashFile(string path)
    {
        using FileStream stream = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(stream)).ToLowerInvariant();
    }

    private static string EvaluationJson(ModelPackageOptions options)
    {
        var json = new System.Text.Json.Nodes.JsonObject();
        var metrics = new System.Text.Json.Nodes.JsonObject();
        if (options.Result is { } result)
        {
            foreach ((string name, double value) in result.FinalMetrics.OrderBy(m => m.Key, StringComparer.Ordinal))
            {
                metrics[name] = value;
            }

            json["training"] = new System.Text.Json.Nodes.JsonObject
            {
                ["steps"] = result.Steps,
                ["stop_reason"] = result.StopReason.ToString(),
                ["monitored_metric"] = result.MonitoredMetric,
                ["best_metric"] = result.BestMetric,
                ["best_step"] = result.BestStep,
                ["wall_seconds"] = Math.Round(result.WallTime.TotalSeconds, 3),
                ["final_train_loss"] = result.TrainingLoss.IsDefaultOrEmpty ? null : result.TrainingLoss[^1].Loss,
            };
        }

        foreach ((string name, double value) in options.Evaluation)
        {
            metrics[name] = value;
        }

        json["metrics"] = metrics;
        var slices = new System.Text.Json.Nodes.JsonObject();
        foreach ((string slice, var values) in options.Card.SliceMetrics)
        {
            var sliceJson = new System.Text.Json.Nodes.JsonObject();
            foreach ((string name, double value) in values)
            {
                sliceJson[name] = value;
            }

            slices[slice] = sliceJson;
        }

        json["slices"] = slices;
        return json.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    private static Description Describe(nn.Module model, ModelPackageOptions options)
    {
        if (options.Tokenizer is not ByteTokenizer)
        {
            if (options.TokenizerFolder is null)
            {
                throw new ArgumentException($"The tokenizer is a {options.Tokenizer.GetType().Name}; set ModelPackageOptions.TokenizerFolder to the folder holding its files (vocab.json + merges.txt, vocab.txt or tokenizer.model) so the package can load it.", nameof(options));
            }

            if (!TokenizerFiles.Any(n => File.Exists(Path.Combine(options.TokenizerFolder, n))))
            {
                throw new ArgumentException($"ModelPackageOptions.TokenizerFolder '{options.TokenizerFolder}' holds none of the tokenizer files ({string.Join(", ", TokenizerFiles)}).", nameof(options));
            }
        }

        if (options.MaxLength is < 1)
        {
            throw new ArgumentException($"ModelPackageOptions.MaxLength is {options.MaxLength}; give a positive number of tokens or null for the model's context length.", nameof(options));
        }

        switch (model)
        {
            case MeanPoolClassifier classifier:
            {
                LabelMap labels = RequireLabels(options, classifier.ClassCount);
                string bodyArchitecture = PretrainedModel.ArchitectureOf(classifier.Body)
                    ?? throw new NotSupportedException($"The classifier's body ({classifier.Body.GetType().Name}) is not an architecture that can be saved; supported: {string.Join(", ", PretrainedModel.SupportedArchitectures)}.");
                return new Description(ModelPackageKind.SequenceClassifier, MeanPoolArchitecture, bodyArchitecture, "sequence-classification", labels,
                    options.MaxLength ?? classifier.ContextLength,
                    dtypes => AddHead(PretrainedModel.ConfigJsonFor(classifier.Body, dtypes)!, labels, classifier.Dropout));
            }

            case BertForSequenceClassification bert:
            {
                LabelMap labels = RequireLabels(options, bert.Config.ResolvedLabelCount);
                return new Description(ModelPackageKind.SequenceClassifier, "BertForSequenceClassification", null, "sequence-classification", labels,
                    options.MaxLength ?? bert.Config.MaxPositions,
                    dtypes => AddHead(PretrainedModel.ConfigJsonFor(bert, dtypes)!, labels, null));
            }

            case ICausalLanguageModel causal when PretrainedModel.ArchitectureOf(model) is { } architecture:
            {
                LabelMap? labels = null;
                string objective = "causal-language-modeling";
                if (options.PromptTemplate is { } template)
                {
                    if (!template.Slots.Contains("text"))
                    {
                        throw new ArgumentException($"ModelPackageOptions.PromptTemplate '{template.Template}' has no {{text}} slot; zero-shot classification puts the input there.", nameof(options));
                    }

                    labels = options.Labels ?? throw new ArgumentException("ModelPackageOptions.PromptTemplate is set but Labels is not; zero-shot classification needs the labels to score.", nameof(options));
                    if (!options.Verbalizations.IsDefaultOrEmpty && options.Verbalizations.Length != labels.Count)
                    {
                        throw new ArgumentException($"ModelPackageOptions.Verbalizations has {options.Verbalizations.Length} entries for {labels.Count} labels; give one per label or none.", nameof(options));
                    }

                    objective = "zero-shot-label-scoring";
                }

                return new Description(ModelPackageKind.CausalLanguageModel, architecture, null, objective, labels,
                    options.MaxLength ?? causal.ContextLength,
                    dtypes => PretrainedModel.ConfigJsonFor(model, dtypes)!);
            }

            default:
                throw new NotSupportedException(
                    $"A {model.GetType().Name} cannot be packaged; supported: causal LMs ({string.Join(", ", PretrainedModel.SupportedArchitectures.Where(a => a.EndsWith("ForCausalLM", StringComparison.Ordinal) || a == "GPT2LMHeadModel"))}), " +
                    "BertForSequenceClassification and MeanPoolClassifier (a classifier on a causal LM).");
        }
    }

    private static LabelMap RequireLabels(ModelPackageOptions options, int classCount)
    {
        LabelMap labels = options.Labels
            ?? throw new ArgumentException($"The model is a classifier with {classCount} classes; set ModelPackageOptions.Labels (a LabelMap in class-id order) so the package can name its answers.", nameof(options));
        if (labels.Count != classCount)
        {
            throw new ArgumentException($"ModelPackageOptions.Labels has {labels.Count} labels but the classifier has {classCount} outputs; give the labels in class-id order.", nameof(options));
        }

        return labels;
    }

    private static string AddHead(string configJson, LabelMap labels, double? dropout)
    {
        var json = (System.Text.Json.Nodes.JsonObject)System.Text.Json.Nodes.JsonNode.Parse(configJson)!;
        var id2label = new System.Text.Json.Nodes.JsonObject();
        var label2id = new System.Text.Json.Nodes.JsonObject();
        for (int i = 0; i < labels.Count; i++)
        {
            id2label[i.ToString(CultureInfo.InvariantCulture)] = labels.Labels[i];
            label2id[labels.Labels[i]] = i;
        }

        json["id2label"] = id2label;
        json["label2id"] = label2id;
        if (dropout is { } p)
        {
            json["nichetune_classifier"] = new System.Text.Json.Nodes.JsonObject { ["pooling"] = "mean", ["dropout"] = p, ["num_labels"] = labels.Count };
        }

        return json.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    private sealed record Description(
        ModelPackageKind Kind, string Architecture, string? BodyArchitecture, string Objective, LabelMap? Labels, int MaxLength, Func<IEnumerable<ScalarType>, string> ConfigJson);
}
