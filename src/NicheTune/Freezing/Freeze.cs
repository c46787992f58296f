using System.Collections.Immutable;
using System.Globalization;
using System.Text.RegularExpressions;

namespace NicheTune.Freezing;

/// <summary>Factories for the built-in freezing strategies.</summary>
public static class Freeze
{
    /// <summary>Freezes nothing: every parameter trains (full fine-tuning).</summary>
    /// <returns>The strategy.</returns>
    public static IFreezeStrategy Nothing() => new GroupFreeze("nothing", static _ => []);

    /// <summary>Freezes the embeddings group: keeps the general vocabulary knowledge while the layers adapt.</summary>
    /// <returns>The strategy.</returns>
    public static IFreezeStrategy Embeddings() => new GroupFreeze("embeddings", static map => map.Groups.Where(g => g.Kind == LayerGroupKind.Embeddings));

    /// <summary>Freezes layers 0 … <paramref name="count"/> − 1 (the bottom, most general layers). Combine with <see cref="Embeddings"/> to freeze everything below.</summary>
    /// <param name="count">Number of layers, 0 … the model's layer count.</param>
    /// <returns>The strategy.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative.</exception>
    public static IFreezeStrategy BottomLayers(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        return new BottomLayersFreeze(count, null);
    }

    /// <summary>Freezes the bottom <paramref name="fraction"/> of the layers (rounded to the nearest layer).</summary>
    /// <param name="fraction">In [0, 1], e.g. 0.5 for the bottom half.</param>
    /// <returns>The strategy.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="fraction"/> is outside [0, 1].</exception>
    public static IFreezeStrategy BottomLayers(double fraction)
    {
        if (!(fraction >= 0 && fraction <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "The fraction of layers to freeze must be in [0, 1], e.g. 0.5 for the bottom half.");
        }

        return new BottomLayersFreeze(null, fraction);
    }

    /// <summary>Freezes the named groups (<c>embeddings</c>, <c>layer 3</c>, <c>head</c>, <c>other</c>).</summary>
    /// <param name="groupNames">Group names as <see cref="LayerMap.Describe"/> shows them.</param>
    /// <returns>The strategy.</returns>
    public static IFreezeStrategy Groups(params string[] groupNames) => new SelectorFreeze("groups", Selectors(groupNames, groupsOnly: true), invert: false);

    /// <summary>
    /// Freezes parameters whose names match any glob (<c>*</c> any text including dots, <c>?</c> one character),
    /// e.g. <c>"transformer.h.0.*"</c>, <c>"*.ln_*"</c>. A glob that matches nothing is reported by <c>Build()</c> with the closest names.
    /// </summary>
    /// <param name="globs">Glob patterns over full parameter names.</param>
    /// <returns>The strategy.</returns>
    public static IFreezeStrategy Matching(params string[] globs) => new SelectorFreeze("matching", Selectors(globs, groupsOnly: false), invert: false);

    /// <summary>Freezes parameters whose names match any regular expression (searched anywhere in the name; anchor with ^ and $).</summary>
    /// <param name="patterns">.NET regular expressions.</param>
    /// <returns>The strategy.</returns>
    /// <exception cref="ArgumentException">A pattern is not a valid regular expression.</exception>
    public static IFreezeStrategy MatchingRegex(params string[] patterns)
    {
        ArgumentNullException.ThrowIfNull(patterns);
        var selectors = patterns.Select(p =>
        {
            try
            {
                var regex = new Regex(p, RegexOptions.CultureInvariant);
                return new Selector($"regex '{p}'", (map, name) => regex.IsMatch(name));
            }
            catch (ArgumentException ex)
            {
                throw new ArgumentException($"Freeze pattern '{p}' is not a valid regular expression: {ex.Message}", nameof(patterns), ex);
            }
        }).ToImmutableArray();
        return new SelectorFreeze("regex", selectors, invert: false);
    }

    /// <summary>
    /// Freezes everything except the named groups or globs — <c>Freeze.AllBut("head")</c> is linear probing,
    /// <c>Freeze.AllBut("head", "layer 11")</c> trains the top.
    /// </summary>
    /// <param name="keepTrainable">Group names or globs of the parameters that keep training.</param>
    /// <returns>The strategy.</returns>
    public static IFreezeStrategy AllBut(params string[] keepTrainable) => new SelectorFreeze("all but", Selectors(keepTrainable, groupsOnly: false), invert: true);

    /// <summary>
    /// ULMFiT's gradual unfreezing (Howard &amp; Ruder 2018): training starts with only the top group (head and other)
    /// trainable, and every <paramref name="everyEpochs"/> epochs one more group joins, from the top down (last layer
    /// first, embeddings last). Newly unfrozen parameters join the optimizer with fresh state.
    /// </summary>
    /// <param name="everyEpochs">Epochs between unfreezing steps, at least 1.</param>
    /// <returns>The strategy.</returns>
    public static IFreezeStrategy UnfreezeGradually(int everyEpochs = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(everyEpochs, 1);
        return new GradualUnfreezing(everyEpochs, null);
    }

    /// <summary>Gradual unfreezing counted in optimizer steps: one more group every <paramref name="everySteps"/> steps.</summary>
    /// <param name="everySteps">Steps between unfreezing steps, at least 1.</param>
    /// <returns>The strategy.</returns>
    public static IFreezeStrategy UnfreezeGraduallyBySteps(int everySteps)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(everySteps, 1);
        return new GradualUnfreezing(null, everySteps);
    }

    /// <summary>
    /// Lightning's backbone fine-tuning: only the head trains until epoch <paramref name="unfreezeAtEpoch"/>; then the
    /// whole backbone joins at <paramref name="learningRateFactor"/> × its group's rate, so the pretrained layers move gently.
    /// </summary>
    /// <param name="unfreezeAtEpoch">The epoch (from 0) at which the backbone starts training, at least 1.</param>
    /// <param name="learningRateFactor">Factor on the backbone's learning rate, in (0, 1].</param>
    /// <returns>The strategy.</returns>
    public static IFreezeStrategy Backbone(int unfreezeAtEpoch, double learningRateFactor = 0.1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(unfreezeAtEpoch, 1);
        if (!(learningRateFactor > 0 && learningRateFactor <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(learningRateFactor), learningRateFactor, "The backbone's learning-rate factor must be in (0, 1], e.g. 0.1.");
        }

        return new BackboneFreeze(unfreezeAtEpoch, learningRateFactor);
    }

    private static ImmutableArray<Selector> Selectors(string[] items, bool groupsOnly)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (items.Length == 0)
        {
            throw new ArgumentException("Give at least one group name or pattern.", nameof(items));
        }

        return [.. items.Select(item =>
        {
            ArgumentException.ThrowIfNullOrWhiteSpace(item, nameof(items));
            if (groupsOnly || IsGroupName(item))
            {
                return new Selector($"group '{item}'", (map, name) => string.Equals(map.GroupOf(name).Name, item, StringComparison.OrdinalIgnoreCase));
            }

            Regex glob = Glob.ToRegex(item);
            return new Selector($"pattern '{item}'", (map, name) => glob.IsMatch(name));
        })];
    }

    private static bool IsGroupName(string item) =>
        item is "embeddings" or "head" or "other" || Regex.IsMatch(item, @"^layer \d+$", RegexOptions.CultureInvariant);
}

/// <summary>Composition of freezing strategies; works for user-written strategies too.</summary>
public static class FreezeComposition
{
    /// <summary>Freezes what either strategy freezes: <c>Freeze.Embeddings().And(Freeze.BottomLayers(2))</c>.</summary>
    /// <param name="first">A strategy.</param>
    /// <param name="second">Another strategy.</param>
    /// <returns>The union.</returns>
    public static IFreezeStrategy And(this IFreezeStrategy first, IFreezeStrategy second)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        return new CombinedFreeze(first, second, union: true);
    }

    /// <summary>Freezes what <paramref name="first"/> freezes except what <paramref name="keep"/> would freeze: <c>Freeze.BottomLayers(6).Except(Freeze.Matching("*.ln_*"))</c> keeps the layer norms training.</summary>
    /// <param name="first">A strategy.</param>
    /// <param name="keep">The parameters to keep trainable, as a strategy.</param>
    /// <returns>The difference.</returns>
    public static IFreezeStrategy Except(this IFreezeStrategy first, IFreezeStrategy keep)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(keep);
        return new CombinedFreeze(first, keep, union: false);
    }
}

internal sealed record Selector(string Description, Func<LayerMap, string, bool> Matches);

internal static class Glob
{
    public static Regex ToRegex(string glob) =>
        new("^" + Regex.Escape(glob).Replace(@"\*", ".*", StringComparison.Ordinal).Replace(@"\?", ".", StringComparison.Ordinal) + "$", RegexOptions.CultureInvariant);

    public static string Closest(IEnumerable<string> names, string pattern, int count = 3)
    {
        string probe = pattern.Replace("*", string.Empty, StringComparison.Ordinal).Replace("?", string.Empty, StringComparison.Ordinal);
        return string.Join(", ", names.OrderBy(n => Distance(probe, n)).ThenBy(n => n, StringComparer.Ordinal).Take(count).Select(n => $"'{n}'"));
    }

    // Levenshtein distance; names are short and this runs only when building an error message.
    private static int Distance(string a, string b)
    {
        var row = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++)
        {
            row[j] = j;
        }

        for (int i = 1; i <= a.Length; i++)
        {
            int previous = row[0];
            row[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int saved = row[j];
                row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), previous + (a[i - 1] == b[j - 1] ? 0 : 1));
                previous = saved;
            }
        }

        return row[b.Length];
    }
}

internal sealed class GroupFreeze(string name, Func<LayerMap, IEnumerable<LayerGroup>> groups) : IFreezeStrategy
{
    public IReadOnlySet<string> Frozen(LayerMap map, FreezePosition position)
        => groups(map).SelectMany(g => g.ParameterNames).ToHashSet(StringComparer.Ordinal);

    public override string ToString() => $"Freeze.{name}";
}

internal sealed class BottomLayersFreeze(int? count, double? fraction) : IFreezeStrategy
{
    private int Count(LayerMap map) => count ?? (int)Math.Round(fraction!.Value * map.LayerCount, MidpointRounding.AwayFromZero);

    public IReadOnlySet<string> Frozen(LayerMap map, FreezePosition position)
    {
        int n = Count(map);
        return map.Groups.Where(g => g.Kind == LayerGroupKind.Layer && g.LayerIndex < n).SelectMany(g => g.ParameterNames).ToHashSet(StringComparer.Ordinal);
    }

    public IEnumerable<string> Validate(LayerMap map)
    {
        if (map.LayerCount == 0)
        {
            yield return "Freeze.BottomLayers found no layers in the model (no 'h.{i}.', 'layers.{i}.', 'layer.{i}.' or 'blocks.{i}.' in its parameter names); use Freeze.Matching(...) or a custom LayerMap classifier.";
        }
        else if (count > map.LayerCount)
        {
            yield return $"Freeze.BottomLayers({count}) asks for more layers than the model has ({map.LayerCount}); use at most {map.LayerCount}.";
        }
    }
}

internal sealed class SelectorFreeze(string name, ImmutableArray<Selector> selectors, bool invert) : IFreezeStrategy
{
    public IReadOnlySet<string> Frozen(LayerMap map, FreezePosition position)
    {
        var frozen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string parameter in map.ParameterNames)
        {
            bool matched = false;
            foreach (Selector selector in selectors)
            {
                if (selector.Matches(map, parameter))
                {
                    matched = true;
                    break;
                }
            }

            if (matched != invert)
            {
                frozen.Add(parameter);
            }
        }

        return frozen;
    }

    public IEnumerable<string> Validate(LayerMap map)
    {
        foreach (Selector selector in selectors)
        {
            if (!map.ParameterNames.Any(p => selector.Matches(map, p)))
            {
                string probe = selector.Description[(selector.Description.IndexOf('\'', StringComparison.Ordinal) + 1)..^1];
                string candidates = selector.Description.StartsWith("group", StringComparison.Ordinal)
                    ? "groups: " + string.Join(", ", map.Groups.Select(g => $"'{g.Name}'"))
                    : "closest names: " + Glob.Closest(map.ParameterNames, probe);
                yield return $"Freeze {selector.Description} ({name}) matched no parameter; {candidates}.";
            }
        }
    }

    public override string ToString() => $"Freeze.{name}({string.Join(", ", selectors.Select(s => s.Description))})";
}

internal sealed class CombinedFreeze(IFreezeStrategy first, IFreezeStrategy second, bool union) : IFreezeStrategy
{
    public IReadOnlySet<string> Frozen(LayerMap map, FreezePosition position)
    {
        var result = new HashSet<string>(first.Frozen(map, position), StringComparer.Ordinal);
        IReadOnlySet<string> other = second.Frozen(map, position);
        if (union)
        {
            result.UnionWith(other);
        }
        else
        {
            result.ExceptWith(other);
        }

        return result;
    }

    public IEnumerable<string> Validate(LayerMap map) => first.Validate(map).Concat(second.Validate(map));

    public bool ChangesAt(FreezePosition position) => first.ChangesAt(position) || second.ChangesAt(position);

    public double UnfrozenLearningRateFactor => Math.Min(first.UnfrozenLearningRateFactor, second.UnfrozenLearningRateFactor);
}

internal sealed class GradualUnfreezing(int? everyEpochs, int? everySteps) : IFreezeStrategy
{
    public IReadOnlySet<string> Frozen(LayerMap map, FreezePosition position)
    {
        long stage = everyEpochs is { } e ? position.Epoch / e : position.Step / everySteps!.Value;
        // Top group (head + other) trains from the start; each stage adds one more group going down.
        var ordered = map.Groups.OrderBy(g => g.DepthFromTop(map.LayerCount)).ToList();
        int topCount = ordered.Count(g => g.DepthFromTop(map.LayerCount) == 0);
        long trainableGroups = Math.Min(ordered.Count, Math.Max(topCount, 1) + stage);
        return ordered.Skip((int)trainableGroups).SelectMany(g => g.ParameterNames).ToHashSet(StringComparer.Ordinal);
    }

    public bool ChangesAt(FreezePosition position) => everyEpochs is { } e
        ? position.AtEpochStart && position.Epoch > 0 && position.Epoch % e == 0
        : !position.AtEpochStart && position.Step > 0 && position.Step % everySteps!.Value == 0;

    public IEnumerable<string> Validate(LayerMap map)
    {
        if (map.Groups.Length < 2)
        {
            yield return "Gradual unfreezing needs at least two layer groups; this model maps to one. Use a custom LayerMap classifier or another strategy.";
        }
    }

    public override string ToString() => everyEpochs is { } e
        ? $"Freeze.UnfreezeGradually(everyEpochs: {e.ToString(CultureInfo.InvariantCulture)})"
        : $"Freeze.UnfreezeGraduallyBySteps({everySteps!.Value.ToString(CultureInfo.InvariantCulture)})";
}

internal sealed class BackboneFreeze(int unfreezeAtEpoch, double learningRateFactor) : IFreezeStrategy
{
    public IReadOnlySet<string> Frozen(LayerMap map, FreezePosition position) => position.Epoch >= unfreezeAtEpoch
        ? new HashSet<string>(StringComparer.Ordinal)
        : map.Groups.Where(g => g.Kind != LayerGroupKind.Head).SelectMany(g => g.ParameterNames).ToHashSet(StringComparer.Ordinal);

    public bool ChangesAt(FreezePosition position) => position.AtEpochStart && position.Epoch == unfreezeAtEpoch;

    public double UnfrozenLearningRateFactor => learningRateFactor;

    public IEnumerable<string> Validate(LayerMap map)
    {
        if (!map.Groups.Any(g => g.Kind == LayerGroupKind.Head))
        {
            yield return "Freeze.Backbone found no head group in the model (e.g. 'lm_head', 'classifier', 'head'); use Freeze.AllBut(...) with the output layer's name.";
        }
    }
}
