using System.Text.RegularExpressions;
using static TorchSharp.torch;

namespace NicheTune.Models;

/// <summary>
/// The architectures <see cref="PretrainedModel"/> can build, keyed by Hugging Face class name (<c>architectures</c>
/// in <c>config.json</c>). Each entry says how to read the config, how to build the module, how to write the config
/// back, and which checkpoint names it treats specially.
/// </summary>
/// <remarks>
/// To add an architecture, add one <see cref="ArchitectureEntry{TConfig, TModel}"/> to <see cref="All"/>: the config
/// type needs <c>FromHuggingFaceJson(string)</c> and <c>ToHuggingFaceJson(...)</c>, the module HF's parameter names.
/// For example, a Llama causal LM (model_type "llama", body under "model.", head "lm_head"):
/// <code>
/// new ArchitectureEntry&lt;LlamaConfig, LlamaForCausalLM&gt;(
///     "llama", "LlamaForCausalLM", LlamaConfig.FromHuggingFaceJson, (c, device) =&gt; new LlamaForCausalLM(c, device),
///     m =&gt; m.Config.ToHuggingFaceJson(), basePrefix: "model", headPrefixes: ["lm_head."],
///     tiedKeys: m =&gt; m.Config.TieWordEmbeddings ? ["lm_head.weight"] : [],
///     skippedPattern: @"\.rotary_emb\.inv_freq$"),
/// </code>
/// The first entry listed for a module type is the one <see cref="PretrainedModel.Save"/> writes; the first listed for
/// a <c>model_type</c> is used when <c>config.json</c> has no <c>architectures</c>.
/// </remarks>
internal static class PretrainedArchitectures
{
    public static IReadOnlyList<ArchitectureEntry> All { get; } =
    [
        new ArchitectureEntry<Gpt2Config, Gpt2LMHeadModel>(
            "gpt2", "GPT2LMHeadModel", Gpt2Config.FromHuggingFaceJson, (c, device) => new Gpt2LMHeadModel(c, device),
            m => m.Config.ToHuggingFaceJson("GPT2LMHeadModel"), basePrefix: "transformer", headPrefixes: ["lm_head."],
            tiedKeys: m => m.Config.TieWordEmbeddings ? ["lm_head.weight"] : [],
            // Checkpoints written by older transformers carry the causal-mask buffers of every block.
            skippedPattern: @"(^|\.)h\.\d+\.attn\.(masked_)?bias$"),
        // The bare GPT2Model has the same body; with tied embeddings the head adds no parameter, so it loads as the LM.
        new ArchitectureEntry<Gpt2Config, Gpt2LMHeadModel>(
            "gpt2", "GPT2Model", Gpt2Config.FromHuggingFaceJson, (c, device) => new Gpt2LMHeadModel(c, device),
            m => m.Config.ToHuggingFaceJson("GPT2LMHeadModel"), basePrefix: "transformer", headPrefixes: ["lm_head."],
            tiedKeys: m => m.Config.TieWordEmbeddings ? ["lm_head.weight"] : [],
            skippedPattern: @"(^|\.)h\.\d+\.attn\.(masked_)?bias$"),
        new ArchitectureEntry<BertConfig, BertModel>(
            "bert", "BertModel", BertConfig.FromHuggingFaceJson, (c, device) => new BertModel(c, device),
            m => m.Config.ToHuggingFaceJson("BertModel"), basePrefix: "bert", headPrefixes: BertHeads,
            tiedKeys: _ => [], skippedPattern: BertSkipped),
        new ArchitectureEntry<BertConfig, BertForMaskedLM>(
            "bert", "BertForMaskedLM", BertConfig.FromHuggingFaceJson, (c, device) => new BertForMaskedLM(c, device),
            m => m.Config.ToHuggingFaceJson("BertForMaskedLM"), basePrefix: "bert", headPrefixes: BertHeads,
            tiedKeys: m => m.Config.TieWordEmbeddings ? ["cls.predictions.decoder.weight", "cls.predictions.decoder.bias"] : ["cls.predictions.decoder.bias"],
            // Released "BertForMaskedLM" checkpoints (bert-base-uncased) are pre-training checkpoints: they also hold the
            // pooler and the next-sentence head, which this class does not have (HF skips them the same way).
            skippedPattern: BertSkipped + @"|^bert\.pooler\.|^cls\.seq_relationship\."),
        new ArchitectureEntry<BertConfig, BertForSequenceClassification>(
            "bert", "BertForSequenceClassification", BertConfig.FromHuggingFaceJson, (c, device) => new BertForSequenceClassification(c, device),
            m => m.Config.ToHuggingFaceJson("BertForSequenceClassification"), basePrefix: "bert", headPrefixes: BertHeads,
            tiedKeys: _ => [], skippedPattern: BertSkipped,
            adjust: (c, options) => options.LabelCount is int count && count != c.ResolvedLabelCount ? c with { LabelCount = count, Labels = null } : c),
        Llama("llama", "LlamaForCausalLM"),
        Llama("mistral", "MistralForCausalLM"),
        Llama("qwen2", "Qwen2ForCausalLM"),
    ];

    // One module for the whole Llama family: the config's model_type decides the differences (biases, head_dim).
    private static ArchitectureEntry<LlamaConfig, LlamaForCausalLM> Llama(string modelType, string architecture) => new(
        modelType, architecture, LlamaConfig.FromHuggingFaceJson, (c, device) => new LlamaForCausalLM(c, device),
        m => m.Config.ToHuggingFaceJson(), basePrefix: "model", headPrefixes: ["lm_head."],
        tiedKeys: m => m.Config.TieWordEmbeddings ? ["lm_head.weight"] : [],
        // Older checkpoints store each layer's rotary inverse frequencies; they are recomputed from rope_theta.
        skippedPattern: @"\.rotary_emb\.inv_freq$");

    private static string[] BertHeads => ["cls.", "classifier.", "pooler.", "bert.pooler."];

    private const string BertSkipped = @"(^|\.)embeddings\.position_ids$";

    public static IEnumerable<string> Names => All.Select(e => e.Architecture);

    public static ArchitectureEntry? Find(string architecture)
        => All.FirstOrDefault(e => string.Equals(e.Architecture, architecture, StringComparison.Ordinal));

    public static ArchitectureEntry? ForModelType(string modelType)
        => All.FirstOrDefault(e => string.Equals(e.ModelType, modelType, StringComparison.Ordinal));

    public static ArchitectureEntry? ForModule(Type moduleType) => All.FirstOrDefault(e => e.ModuleType == moduleType);
}

/// <summary>One buildable architecture; see <see cref="PretrainedArchitectures"/>.</summary>
internal abstract class ArchitectureEntry(string modelType, string architecture, Type moduleType, string? basePrefix, string[] headPrefixes, string? skippedPattern)
{
    private readonly Regex? _skipped = skippedPattern is null ? null : new Regex(skippedPattern, RegexOptions.CultureInvariant);

    /// <summary>HF <c>model_type</c>, e.g. <c>bert</c>.</summary>
    public string ModelType { get; } = modelType;

    /// <summary>HF class name, e.g. <c>BertForMaskedLM</c>.</summary>
    public string Architecture { get; } = architecture;

    public Type ModuleType { get; } = moduleType;

    /// <summary>HF's <c>base_model_prefix</c>: checkpoints of the bare body lack it, those of a task model have it.</summary>
    public string? BasePrefix { get; } = basePrefix;

    /// <summary>Names that belong to a task head rather than the shared body.</summary>
    public bool IsHead(string key) => headPrefixes.Any(p => key.StartsWith(p, StringComparison.Ordinal));

    /// <summary>Checkpoint names skipped by rule (legacy buffers, unused pre-training heads).</summary>
    public bool IsSkipped(string key) => _skipped?.IsMatch(key) == true;

    /// <summary>Parses, adjusts, validates and builds; <see cref="ArgumentException"/> when the config is invalid.</summary>
    public abstract nn.Module Create(string configJson, PretrainedLoadOptions options);

    public abstract string ConfigJson(nn.Module model);

    /// <summary>Checkpoint names that are copies of a tied parameter (the model has no parameter of its own for them).</summary>
    public abstract IReadOnlyList<string> TiedKeys(nn.Module model);
}

/// <summary>An architecture built from <typeparamref name="TConfig"/> as <typeparamref name="TModel"/>.</summary>
internal sealed class ArchitectureEntry<TConfig, TModel>(
    string modelType,
    string architecture,
    Func<string, TConfig> parse,
    Func<TConfig, Device?, TModel> create,
    Func<TModel, string> toJson,
    string? basePrefix,
    string[] headPrefixes,
    Func<TModel, IReadOnlyList<string>> tiedKeys,
    string? skippedPattern = null,
    Func<TConfig, PretrainedLoadOptions, TConfig>? adjust = null)
    : ArchitectureEntry(modelType, architecture, typeof(TModel), basePrefix, headPrefixes, skippedPattern)
    where TModel : nn.Module
{
    public override nn.Module Create(string configJson, PretrainedLoadOptions options)
    {
        TConfig config = parse(configJson);
        if (adjust is not null)
        {
            config = adjust(config, options);
        }

        return create(config, options.Device);
    }

    public override string ConfigJson(nn.Module model) => toJson((TModel)model);

    public override IReadOnlyList<string> TiedKeys(nn.Module model) => tiedKeys((TModel)model);
}
