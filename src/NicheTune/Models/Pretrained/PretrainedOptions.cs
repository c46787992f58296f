using static TorchSharp.torch;

namespace NicheTune.Models;

/// <summary>How <see cref="PretrainedModel.Load(string, PretrainedLoadOptions?)"/> builds a model from a Hugging Face folder.</summary>
public sealed class PretrainedLoadOptions
{
    /// <summary>The dtype of the model's parameters; checkpoint tensors (bf16, f16, f32, f64) are converted to it.</summary>
    /// <value>Default <see cref="ScalarType.Float32"/>, the dtype CPU training wants whatever the checkpoint was saved in.</value>
    public ScalarType Dtype { get; init; } = ScalarType.Float32;

    /// <summary>Where to allocate the parameters.</summary>
    /// <value>Default <see langword="null"/> (torch's default device, the CPU unless changed).</value>
    public Device? Device { get; init; }

    /// <summary>
    /// The HF class to build instead of the one <c>config.json</c> names in <c>architectures</c>, e.g.
    /// <c>BertForSequenceClassification</c> from a <c>BertForMaskedLM</c> checkpoint. When the head differs from the
    /// checkpoint's, the checkpoint's other head weights are skipped and the new head's weights start from the
    /// model's initialization (both listed in <see cref="PretrainedLoadResult"/>), as Hugging Face does.
    /// </summary>
    /// <value>Default <see langword="null"/> (the checkpoint's own architecture).</value>
    public string? Architecture { get; init; }

    /// <summary>The number of classes of a sequence-classification head, overriding <c>config.json</c> (HF <c>num_labels</c>).</summary>
    /// <value>Default <see langword="null"/> (the config's <c>id2label</c> size, or 2).</value>
    public int? LabelCount { get; init; }

    /// <summary>
    /// Whether parameters that the checkpoint lacks may keep their random initialization instead of failing the load.
    /// Leave it off unless the names are expected: a missing weight usually means the wrong checkpoint.
    /// </summary>
    /// <value>Default <see langword="false"/>.</value>
    public bool AllowMissingKeys { get; init; }

    /// <summary>Whether checkpoint tensors that match no parameter may be skipped instead of failing the load.</summary>
    /// <value>Default <see langword="false"/>.</value>
    public bool AllowUnexpectedKeys { get; init; }

    /// <summary>
    /// Whether a folder that holds only <c>pytorch_model.bin</c> (Python pickle) may be read through TorchSharp.PyBridge.
    /// Pickle is a program format: in Python, loading it can run arbitrary code, and a parser of it is far more exposed
    /// to crafted input than a safetensors header. Opt in only for files from a source you trust; better, convert them
    /// once with <c>safetensors</c> in Python.
    /// </summary>
    /// <value>Default <see langword="false"/>.</value>
    public bool AllowPickle { get; init; }
}

/// <summary>How <see cref="PretrainedModel.Save"/> writes a Hugging Face folder.</summary>
public sealed class PretrainedSaveOptions
{
    /// <summary>The dtype the weights are stored in, e.g. <see cref="ScalarType.BFloat16"/> to halve the folder's size.</summary>
    /// <value>Default <see langword="null"/> (each parameter's own dtype).</value>
    public ScalarType? Dtype { get; init; }

    /// <summary>
    /// The largest shard in bytes: above it the weights are split into <c>model-0000i-of-0000n.safetensors</c> files with a
    /// <c>model.safetensors.index.json</c>, as <c>save_pretrained</c> does. A single tensor larger than this gets a shard of its own.
    /// </summary>
    /// <value>Default 5 GB (Hugging Face's default).</value>
    public long MaxShardSize { get; init; } = 5_000_000_000;

    /// <summary>Test hook: runs after each file is written into the temporary folder.</summary>
    internal Action<string>? AfterFileWrittenForTesting { get; init; }
}

/// <summary>What <see cref="PretrainedModel.LoadWithReport"/> built and how each checkpoint tensor was used.</summary>
public sealed class PretrainedLoadResult
{
    internal PretrainedLoadResult(nn.Module model, string architecture, string? checkpointArchitecture, IReadOnlyList<string> weightFiles, int loadedCount,
        IReadOnlyList<string> missingKeys, IReadOnlyList<string> unexpectedKeys, IReadOnlyList<string> skippedKeys, IReadOnlyList<string> newlyInitializedKeys,
        IReadOnlyList<ScalarType> checkpointDtypes)
    {
        Model = model;
        Architecture = architecture;
        CheckpointArchitecture = checkpointArchitecture;
        WeightFiles = weightFiles;
        LoadedCount = loadedCount;
        MissingKeys = missingKeys;
        UnexpectedKeys = unexpectedKeys;
        SkippedKeys = skippedKeys;
        NewlyInitializedKeys = newlyInitializedKeys;
        CheckpointDtypes = checkpointDtypes;
    }

    /// <summary>The model, in training mode, with the checkpoint's weights.</summary>
    public nn.Module Model { get; }

    /// <summary>The HF class that was built, e.g. <c>BertForSequenceClassification</c>.</summary>
    public string Architecture { get; }

    /// <summary>The class the checkpoint was saved from (the first of <c>architectures</c>), when <c>config.json</c> names one.</summary>
    public string? CheckpointArchitecture { get; }

    /// <summary>The weight files read, relative to the folder.</summary>
    public IReadOnlyList<string> WeightFiles { get; }

    /// <summary>The number of parameters copied from the checkpoint.</summary>
    public int LoadedCount { get; }

    /// <summary>Parameters the checkpoint lacked, left at their initialization (only with <see cref="PretrainedLoadOptions.AllowMissingKeys"/>).</summary>
    public IReadOnlyList<string> MissingKeys { get; }

    /// <summary>Checkpoint tensors that matched no parameter and were skipped (only with <see cref="PretrainedLoadOptions.AllowUnexpectedKeys"/>).</summary>
    public IReadOnlyList<string> UnexpectedKeys { get; }

    /// <summary>
    /// Checkpoint tensors skipped by rule: copies of tied weights (<c>lm_head.weight</c>, <c>cls.predictions.decoder.*</c>),
    /// buffers old checkpoints carry (<c>position_ids</c>, GPT-2's <c>attn.bias</c>), and another head's weights.
    /// </summary>
    public IReadOnlyList<string> SkippedKeys { get; }

    /// <summary>Parameters of a head the checkpoint does not have (see <see cref="PretrainedLoadOptions.Architecture"/>), left at their initialization: train them.</summary>
    public IReadOnlyList<string> NewlyInitializedKeys { get; }

    /// <summary>The dtypes the checkpoint's tensors were stored in.</summary>
    public IReadOnlyList<ScalarType> CheckpointDtypes { get; }
}

/// <summary>
/// A checkpoint does not fit the model <c>config.json</c> describes: tensors are missing, unexpected or have the wrong
/// shape. The lists name every offending tensor; the message names the folder and what to do.
/// </summary>
public sealed class PretrainedModelException : Exception
{
    internal PretrainedModelException(string message, IReadOnlyList<string> missingKeys, IReadOnlyList<string> unexpectedKeys, IReadOnlyList<string> shapeMismatches)
        : base(message)
    {
        MissingKeys = missingKeys;
        UnexpectedKeys = unexpectedKeys;
        ShapeMismatches = shapeMismatches;
    }

    /// <summary>Parameters of the model that no checkpoint tensor provides.</summary>
    public IReadOnlyList<string> MissingKeys { get; }

    /// <summary>Checkpoint tensors that match no parameter.</summary>
    public IReadOnlyList<string> UnexpectedKeys { get; }

    /// <summary>One line per tensor whose shape differs: its name, the expected and the actual shape.</summary>
    public IReadOnlyList<string> ShapeMismatches { get; }
}
