using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NicheTune.Freezing;

/// <summary>What part of a network a <see cref="LayerGroup"/> is.</summary>
public enum LayerGroupKind
{
    /// <summary>Token, position and type embeddings (and their normalisation): the bottom of the network.</summary>
    Embeddings,

    /// <summary>One repeated block (transformer layer), numbered from the input side.</summary>
    Layer,

    /// <summary>
    /// The output side: language-model head, pooler, classifier — what Hugging Face keeps outside the base model. The
    /// backbone's final normalisation (<c>ln_f</c>, <c>model.norm</c>) belongs to the last layer, so that
    /// <c>Freeze.AllBut("head")</c> is linear probing: the frozen backbone's output feeds the head and no gradient flows
    /// into the backbone (the head's input gradient is not even computed).
    /// </summary>
    Head,

    /// <summary>Parameters the naming conventions do not place.</summary>
    Other,
}

/// <summary>One group of parameters of a <see cref="LayerMap"/>: the embeddings, one layer, the head, or the rest.</summary>
/// <param name="Name"><c>embeddings</c>, <c>layer 0</c> … <c>layer N-1</c>, <c>head</c> or <c>other</c>.</param>
/// <param name="Kind">Which part of the network it is.</param>
/// <param name="LayerIndex">The layer number for <see cref="LayerGroupKind.Layer"/>, otherwise <see langword="null"/>.</param>
/// <param name="ParameterNames">Its parameters, in model order.</param>
/// <param name="ElementCount">Total number of weights in it.</param>
public sealed record LayerGroup(string Name, LayerGroupKind Kind, int? LayerIndex, ImmutableArray<string> ParameterNames, long ElementCount)
{
    /// <summary>Position from the top of the network: 0 for the head (and other), 1 for the last layer, …, layers + 1 for the embeddings.</summary>
    /// <param name="layerCount">Number of layers in the map.</param>
    /// <returns>The depth used by layer-wise learning-rate decay.</returns>
    public int DepthFromTop(int layerCount) => Kind switch
    {
        LayerGroupKind.Head or LayerGroupKind.Other => 0,
        LayerGroupKind.Layer => layerCount - LayerIndex!.Value,
        _ => layerCount + 1,
    };
}

/// <summary>
/// The ordered layer groups of a model — <c>embeddings</c>, <c>layer 0 … layer N-1</c>, <c>head</c>, <c>other</c> —
/// discovered from <c>named_parameters()</c>. It knows the naming of common architectures: GPT-2 (<c>transformer.h.{i}.</c>,
/// <c>wte</c>/<c>wpe</c>, <c>ln_f</c>, <c>lm_head</c>), BERT (<c>encoder.layer.{i}.</c>, <c>embeddings.*</c>, <c>pooler</c>,
/// <c>classifier</c>, <c>cls</c>), Llama/Mistral/Qwen (<c>model.layers.{i}.</c>, <c>embed_tokens</c>, <c>model.norm</c>) and the
/// generic <c>layers.{i}.</c>, <c>blocks.{i}.</c>, <c>layer.{i}.</c>. Where a model uses another convention, pass a
/// classifier function to <see cref="For(nn.Module, Func{string, string?})"/>. Freezing strategies and per-layer
/// learning rates are expressed over this map.
/// </summary>
public sealed class LayerMap
{
    private static readonly Regex LayerPattern = new(@"(?:^|\.)(?:h|layers|layer|blocks|block)\.(\d+)(?:\.|$)", RegexOptions.CultureInvariant | RegexOptions.Compiled);
    private static readonly Regex CustomLayerName = new(@"^layer (\d+)$", RegexOptions.CultureInvariant | RegexOptions.Compiled);

    private static readonly HashSet<string> HeadSegments = new(StringComparer.OrdinalIgnoreCase)
    {
        "lm_head", "head", "heads", "classifier", "cls", "pooler", "score", "output_layer", "embed_out", "qa_outputs", "output",
    };

    // The backbone's last normalisation: it goes with the top layer (or the head when there are no layers).
    private static readonly HashSet<string> FinalNormSegments = new(StringComparer.OrdinalIgnoreCase)
    {
        "ln_f", "norm", "final_layer_norm", "final_norm", "final_layernorm", "norm_f",
    };

    private const int FinalNormIndex = -1;

    private static readonly HashSet<string> Wrappers = new(StringComparer.OrdinalIgnoreCase)
    {
        "transformer", "model", "bert", "roberta", "encoder", "decoder", "gpt_neox", "base_model", "backbone",
    };

    private readonly Dictionary<string, int> _groupOfParameter;
    private readonly Dictionary<string, Parameter> _parameters;

    private LayerMap(ImmutableArray<LayerGroup> groups, Dictionary<string, Parameter> parameters)
    {
        Groups = groups;
        _parameters = parameters;
        _groupOfParameter = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int g = 0; g < groups.Length; g++)
        {
            foreach (string name in groups[g].ParameterNames)
            {
                _groupOfParameter[name] = g;
            }
        }

        LayerCount = groups.Count(g => g.Kind == LayerGroupKind.Layer);
        ParameterNames = [.. parameters.Keys];
    }

    /// <summary>The groups, bottom to top: embeddings, layers in order, head, other (absent groups are omitted).</summary>
    public ImmutableArray<LayerGroup> Groups { get; }

    /// <summary>Number of <see cref="LayerGroupKind.Layer"/> groups.</summary>
    public int LayerCount { get; }

    /// <summary>Every parameter name of the model, in model order.</summary>
    public ImmutableArray<string> ParameterNames { get; }

    /// <summary>Maps <paramref name="model"/> with the built-in naming conventions.</summary>
    /// <param name="model">Any TorchSharp module.</param>
    /// <returns>The map.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="model"/> is <see langword="null"/>.</exception>
    public static LayerMap For(nn.Module model) => For(model, null);

    /// <summary>
    /// Maps <paramref name="model"/> with <paramref name="classify"/>: it returns a group name for a parameter name
    /// (<c>embeddings</c>, <c>layer {i}</c>, <c>head</c>, <c>other</c>, or <see langword="null"/> to fall back to the built-in conventions).
    /// </summary>
    /// <param name="model">Any TorchSharp module.</param>
    /// <param name="classify">The custom mapping, or <see langword="null"/>.</param>
    /// <returns>The map.</returns>
    /// <exception cref="ArgumentException"><paramref name="classify"/> returned a name that is not a group name.</exception>
    public static LayerMap For(nn.Module model, Func<string, string?>? classify)
    {
        ArgumentNullException.ThrowIfNull(model);
        var parameters = new Dictionary<string, Parameter>(StringComparer.Ordinal);
        var placed = new List<(string Name, LayerGroupKind Kind, int Index)>();
        foreach ((string name, Parameter parameter) in model.named_parameters())
        {
            parameters[name] = parameter;
            (LayerGroupKind kind, int index) = classify?.Invoke(name) is { } custom ? Parse(custom, name) : Classify(name);
            placed.Add((name, kind, index));
        }

        int topLayer = placed.Where(p => p.Kind == LayerGroupKind.Layer).Select(p => p.Index).DefaultIfEmpty(-1).Max();
        for (int i = 0; i < placed.Count; i++)
        {
            if (placed[i].Kind == LayerGroupKind.Head && placed[i].Index == FinalNormIndex)
            {
                placed[i] = topLayer >= 0 ? (placed[i].Name, LayerGroupKind.Layer, topLayer) : (placed[i].Name, LayerGroupKind.Head, 0);
            }
        }

        var groups = placed
            .GroupBy(p => (p.Kind, p.Index))
            .OrderBy(g => g.Key.Kind switch { LayerGroupKind.Embeddings => 0, LayerGroupKind.Layer => 1, LayerGroupKind.Head => 2, _ => 3 })
            .ThenBy(g => g.Key.Index)
            .Select(g => new LayerGroup(
                g.Key.Kind == LayerGroupKind.Layer ? $"layer {g.Key.Index.ToString(CultureInfo.InvariantCulture)}" : g.Key.Kind.ToString().ToLowerInvariant(),
                g.Key.Kind,
                g.Key.Kind == LayerGroupKind.Layer ? g.Key.Index : null,
                [.. g.Select(p => p.Name)],
                g.Sum(p => parameters[p.Name].numel())))
            .ToImmutableArray();
        return new LayerMap(groups, parameters);
    }

    /// <summary>The group that holds <paramref name="parameterName"/>.</summary>
    /// <param name="parameterName">A parameter name.</param>
    /// <returns>The group.</returns>
    /// <exception cref="KeyNotFoundException">The model has no such parameter.</exception>
    public LayerGroup GroupOf(string parameterName) => _groupOfParameter.TryGetValue(parameterName, out int g)
        ? Groups[g]
        : throw new KeyNotFoundException($"The model has no parameter '{parameterName}'.");

    /// <summary>The group called <paramref name="name"/> (e.g. <c>head</c>, <c>layer 3</c>), or <see langword="null"/>.</summary>
    /// <param name="name">A group name.</param>
    /// <returns>The group or <see langword="null"/>.</returns>
    public LayerGroup? Find(string name) => Groups.FirstOrDefault(g => string.Equals(g.Name, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>Whether the parameter currently has <c>requires_grad</c> set.</summary>
    /// <param name="parameterName">A parameter name.</param>
    /// <returns><see langword="true"/> when it will be trained.</returns>
    public bool IsTrainable(string parameterName) => _parameters[parameterName].requires_grad;

    /// <summary>The parameter called <paramref name="parameterName"/>.</summary>
    /// <param name="parameterName">A parameter name.</param>
    /// <returns>The parameter.</returns>
    public Parameter GetParameter(string parameterName) => _parameters[parameterName];

    /// <summary>
    /// A table a person can read: each group with its parameter count, number of weights and whether it trains
    /// (<c>trainable</c>, <c>frozen</c> or <c>partly (k/n)</c>) — how one identifies the layers to freeze.
    /// </summary>
    /// <returns>The table, one group per line.</returns>
    public string Describe()
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"{"group",-12} {"parameters",10} {"elements",14}  state       first parameter");
        long total = 0;
        foreach (LayerGroup group in Groups)
        {
            int trainable = group.ParameterNames.Count(IsTrainable);
            string state = trainable == group.ParameterNames.Length ? "trainable" : trainable == 0 ? "frozen" : $"partly ({trainable}/{group.ParameterNames.Length})";
            text.AppendLine(CultureInfo.InvariantCulture, $"{group.Name,-12} {group.ParameterNames.Length,10} {group.ElementCount,14:N0}  {state,-11} {group.ParameterNames[0]}");
            total += group.ElementCount;
        }

        text.Append(CultureInfo.InvariantCulture, $"{"total",-12} {ParameterNames.Length,10} {total,14:N0}");
        return text.ToString();
    }

    internal static (LayerGroupKind Kind, int Index) Classify(string name)
    {
        Match layer = LayerPattern.Match(name);
        if (layer.Success)
        {
            return (LayerGroupKind.Layer, int.Parse(layer.Groups[1].Value, CultureInfo.InvariantCulture));
        }

        string[] segments = name.Split('.');
        int first = 0;
        while (first < segments.Length - 1 && Wrappers.Contains(segments[first]))
        {
            first++;
        }

        string module = segments[first];
        if (HeadSegments.Contains(module))
        {
            return (LayerGroupKind.Head, 0);
        }

        if (FinalNormSegments.Contains(module))
        {
            return (LayerGroupKind.Head, FinalNormIndex);
        }

        foreach (string segment in segments)
        {
            if (segment.Contains("embed", StringComparison.OrdinalIgnoreCase) || segment is "wte" or "wpe" or "tok_embeddings")
            {
                return (LayerGroupKind.Embeddings, 0);
            }
        }

        return (LayerGroupKind.Other, 0);
    }

    private static (LayerGroupKind Kind, int Index) Parse(string group, string parameter)
    {
        switch (group.ToLowerInvariant())
        {
            case "embeddings":
                return (LayerGroupKind.Embeddings, 0);
            case "head":
                return (LayerGroupKind.Head, 0);
            case "other":
                return (LayerGroupKind.Other, 0);
        }

        Match m = CustomLayerName.Match(group.ToLowerInvariant());
        if (m.Success)
        {
            return (LayerGroupKind.Layer, int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
        }

        throw new ArgumentException($"The layer classifier put '{parameter}' in group '{group}'; group names are 'embeddings', 'layer <i>', 'head' and 'other'.", nameof(group));
    }
}
