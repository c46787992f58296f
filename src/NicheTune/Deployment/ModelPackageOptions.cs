using System.Collections.Immutable;
using NicheTune.Prompting;
using NicheTune.Text;
using static TorchSharp.torch;

namespace NicheTune.Deployment;

/// <summary>What <see cref="ModelPackage.Export(TorchSharp.torch.nn.Module, string, ModelPackageOptions)"/> writes beside the weights.</summary>
public sealed class ModelPackageOptions
{
    /// <summary>The tokenizer the model was trained with. A <see cref="ByteTokenizer"/> needs no files; any other needs <see cref="TokenizerFolder"/>.</summary>
    /// <value>Required.</value>
    public required ITextTokenizer Tokenizer { get; init; }

    /// <summary>The folder holding the tokenizer's files (<c>vocab.json</c> + <c>merges.txt</c>, <c>vocab.txt</c>, <c>tokenizer.model</c>, <c>tokenizer_config.json</c>…), copied into the package.</summary>
    /// <value>Default <see langword="null"/> (only valid with a <see cref="ByteTokenizer"/>).</value>
    public string? TokenizerFolder { get; init; }

    /// <summary>The class labels in id order: required for a classifier (its output width must match), and with <see cref="PromptTemplate"/> for zero-shot classification by a causal LM.</summary>
    /// <value>Default <see langword="null"/>.</value>
    public LabelMap? Labels { get; init; }

    /// <summary>For a causal LM, the prompt (with a <c>{text}</c> slot) after which each label is scored: the package then classifies by zero-shot label scoring.</summary>
    /// <value>Default <see langword="null"/>.</value>
    public PromptTemplate? PromptTemplate { get; init; }

    /// <summary>The continuation scored for each label (same order as <see cref="Labels"/>), e.g. <c>" networking"</c>.</summary>
    /// <value>Default empty (each label with a leading space).</value>
    public ImmutableArray<string> Verbalizations { get; init; } = [];

    /// <summary>The most tokens of an input the served model reads (longer inputs are truncated).</summary>
    /// <value>Default <see langword="null"/>: the model's context length (512 positions for BERT, the body's context for a <c>MeanPoolClassifier</c>).</value>
    public int? MaxLength { get; init; }

    /// <summary>The model's name, shown in the card and the manifest.</summary>
    /// <value>Default <see langword="null"/> (the folder's name).</value>
    public string? Name { get; init; }

    /// <summary>The model's version, recorded in the manifest.</summary>
    /// <value>Default <c>1.0.0</c>.</value>
    public string Version { get; init; } = "1.0.0";

    /// <summary>Whether a LoRA adapter on the model is merged into the exported weights (fastest to serve); otherwise the base weights and the adapter (<c>adapter/</c>, PEFT layout) are written apart and combined at load.</summary>
    /// <value>Default <see langword="true"/>.</value>
    public bool MergeLoRA { get; init; } = true;

    /// <summary>The dtype the weights are stored in, e.g. <see cref="ScalarType.BFloat16"/> to halve the folder.</summary>
    /// <value>Default <see langword="null"/> (each parameter's own).</value>
    public ScalarType? Dtype { get; init; }

    /// <summary>The training run whose history and final metrics go into <c>evaluation.json</c> and the card.</summary>
    /// <value>Default <see langword="null"/>.</value>
    public FineTuneResult? Result { get; init; }

    /// <summary>Further evaluation results (e.g. test-set metrics) by name, recorded in <c>evaluation.json</c> and the card.</summary>
    /// <value>Default empty.</value>
    public ImmutableSortedDictionary<string, double> Evaluation { get; init; } = ImmutableSortedDictionary<string, double>.Empty;

    /// <summary>The model card's content.</summary>
    /// <value>Default an empty card (it still lists the architecture, labels, metrics and what is missing).</value>
    public ModelCard Card { get; init; } = new();

    /// <summary>Test hook: runs in the temporary folder just before it is renamed into place.</summary>
    internal Action<string>? BeforeCommitForTesting { get; init; }
}
