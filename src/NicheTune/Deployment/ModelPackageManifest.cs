using System.Collections.Immutable;

namespace NicheTune.Deployment;

/// <summary>What a packaged model is, which decides the operations <see cref="NicheModel"/> offers.</summary>
public enum ModelPackageKind
{
    /// <summary>A causal language model (GPT-2, Llama family): Score, Generate, Embed, and Classify when the package holds a prompt template and labels (zero-shot label scoring).</summary>
    CausalLanguageModel,

    /// <summary>A sequence classifier (<c>BertForSequenceClassification</c>, <c>MeanPoolClassifier</c>): Classify and Embed.</summary>
    SequenceClassifier,
}

/// <summary>
/// The <c>package.json</c> of an exported model: what it is, how to call it, and a SHA-256 of every file, so a folder
/// that was changed, truncated or half-copied is refused when loaded instead of serving wrong answers.
/// </summary>
public sealed record ModelPackageManifest
{
    /// <summary>The version of the folder layout this library writes.</summary>
    public const int CurrentFormatVersion = 1;

    /// <summary>The folder layout version (<see cref="CurrentFormatVersion"/> when written by this library).</summary>
    /// <value>Default <see cref="CurrentFormatVersion"/>.</value>
    public int FormatVersion { get; init; } = CurrentFormatVersion;

    /// <summary>The version of NicheTune that wrote the package.</summary>
    /// <value>Default empty.</value>
    public string NicheTuneVersion { get; init; } = string.Empty;

    /// <summary>The model's own version, as the exporter named it (e.g. <c>1.2.0</c>).</summary>
    /// <value>Default <c>1.0.0</c>.</value>
    public string Version { get; init; } = "1.0.0";

    /// <summary>The model's name.</summary>
    /// <value>Default empty.</value>
    public string Name { get; init; } = string.Empty;

    /// <summary>When the package was written.</summary>
    /// <value>Default <see cref="DateTimeOffset.MinValue"/>.</value>
    public DateTimeOffset CreatedUtc { get; init; }

    /// <summary>What the model is.</summary>
    /// <value>Default <see cref="ModelPackageKind.CausalLanguageModel"/>.</value>
    public ModelPackageKind Kind { get; init; }

    /// <summary>The module class: a Hugging Face class name (<c>GPT2LMHeadModel</c>, <c>BertForSequenceClassification</c>) or <c>MeanPoolClassifier</c>.</summary>
    /// <value>Default empty.</value>
    public string Architecture { get; init; } = string.Empty;

    /// <summary>For <c>MeanPoolClassifier</c>, the Hugging Face class of its body (whose <c>config.json</c> the package holds); otherwise <see langword="null"/>.</summary>
    /// <value>Default <see langword="null"/>.</value>
    public string? BodyArchitecture { get; init; }

    /// <summary>How the model was trained to be called: <c>sequence-classification</c>, <c>zero-shot-label-scoring</c> or <c>causal-language-modeling</c>.</summary>
    /// <value>Default empty.</value>
    public string Objective { get; init; } = string.Empty;

    /// <summary>The class labels in id order (also in <c>labels.json</c>); empty for a model that does not classify.</summary>
    /// <value>Default empty.</value>
    public ImmutableArray<string> Labels { get; init; } = [];

    /// <summary>The prompt template with a <c>{text}</c> slot that zero-shot classification renders; <see langword="null"/> otherwise.</summary>
    /// <value>Default <see langword="null"/>.</value>
    public string? PromptTemplate { get; init; }

    /// <summary>The continuation scored for each label in zero-shot classification (empty: the labels themselves with a leading space).</summary>
    /// <value>Default empty.</value>
    public ImmutableArray<string> Verbalizations { get; init; } = [];

    /// <summary>The tokenizer: <c>byte</c> (<c>ByteTokenizer</c>, no files) or <c>folder</c> (Hugging Face tokenizer files in the package).</summary>
    /// <value>Default <c>byte</c>.</value>
    public string Tokenizer { get; init; } = "byte";

    /// <summary>The most tokens of an input the model reads; longer inputs are truncated to it.</summary>
    /// <value>Default 0 (unset).</value>
    public int MaxLength { get; init; }

    /// <summary>The dtype the weights are stored in (<c>float32</c>, <c>bfloat16</c>…).</summary>
    /// <value>Default <c>float32</c>.</value>
    public string Dtype { get; init; } = "float32";

    /// <summary>What happened to a LoRA adapter: <c>none</c>, <c>merged</c> (baked into the weights) or <c>adapter</c> (kept apart in <c>adapter/</c>, applied at load).</summary>
    /// <value>Default <c>none</c>.</value>
    public string LoRA { get; init; } = "none";

    /// <summary>Every file of the package but <c>package.json</c>, by relative path (with <c>/</c>), with its SHA-256 in lower-case hex.</summary>
    /// <value>Default empty.</value>
    public ImmutableSortedDictionary<string, string> Files { get; init; } = ImmutableSortedDictionary<string, string>.Empty;

    /// <summary>The SHA-256 over <see cref="Files"/> (each path and file hash, in ordinal order): one value that identifies the package's content.</summary>
    /// <value>Default empty.</value>
    public string ContentHash { get; init; } = string.Empty;
}
