using System.Collections.Immutable;
using System.Text.Json;

namespace NicheTune.Fairness;

/// <summary>One side of a counterfactual comparison: a named group of interchangeable terms, e.g. <c>female</c>: <c>["she"]</c>.</summary>
/// <param name="Name">The group's name.</param>
/// <param name="Terms">Its terms; term i of one group is swapped with term i of another (cycling through the shorter list).</param>
public sealed record AttributeGroup(string Name, ImmutableArray<string> Terms);

/// <summary>
/// An attribute that templates can vary: the slot it fills (<c>{pronoun}</c>) and the groups whose terms are swapped
/// in it. Word lists are data: load your own with <see cref="Load"/> / <see cref="Parse"/> (same JSON format as the
/// shipped <see cref="Defaults"/>), or build them in code.
/// </summary>
public sealed class CounterfactualAttribute
{
    private static readonly JsonSerializerOptions JsonOptions = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };

    /// <summary>Creates an attribute.</summary>
    /// <param name="name">The attribute's name, e.g. <c>gender (subject pronoun)</c>.</param>
    /// <param name="slot">The template slot it fills, e.g. <c>pronoun</c> for <c>{pronoun}</c>.</param>
    /// <param name="groups">At least two groups, each with at least one non-empty term, with distinct names.</param>
    /// <exception cref="ArgumentException">A name or slot is empty, there are fewer than two groups, a group has no term, a term is empty, or two groups share a name.</exception>
    public CounterfactualAttribute(string name, string slot, IEnumerable<AttributeGroup> groups)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentException.ThrowIfNullOrWhiteSpace(slot);
        ArgumentNullException.ThrowIfNull(groups);
        AttributeGroup[] all = [.. groups];
        if (all.Length < 2 || all.Any(g => g is null || string.IsNullOrWhiteSpace(g.Name) || g.Terms.IsDefaultOrEmpty || g.Terms.Any(string.IsNullOrEmpty)))
        {
            throw new ArgumentException(
                $"Attribute '{name}' needs at least two named groups, each with at least one non-empty term; got {all.Length} group(s): {string.Join("; ", all.Select(g => g is null ? "null" : $"{g.Name}: [{string.Join(", ", g.Terms.IsDefault ? [] : g.Terms)}]"))}.", nameof(groups));
        }

        if (all.Select(g => g.Name).Distinct(StringComparer.Ordinal).Count() != all.Length)
        {
            throw new ArgumentException($"Attribute '{name}' has two groups with the same name ({string.Join(", ", all.Select(g => g.Name))}); name each group once.", nameof(groups));
        }

        Name = name;
        Slot = slot;
        Groups = [.. all];
    }

    /// <summary>The attribute's name.</summary>
    public string Name { get; }

    /// <summary>The template slot it fills.</summary>
    public string Slot { get; }

    /// <summary>The groups, in the order given.</summary>
    public ImmutableArray<AttributeGroup> Groups { get; }

    /// <summary>
    /// The shipped word lists (English): subject, object and possessive pronouns (female / male), given names
    /// (female / male, from the U.S. Social Security Administration's most popular names of the last century, a
    /// public-domain U.S. government work) and nationalities (twelve demonyms, one group each). Small by design, to
    /// start a probe; see <c>Fairness/Resources/attribute-terms.NOTICE</c>.
    /// </summary>
    /// <returns>The attributes.</returns>
    public static ImmutableArray<CounterfactualAttribute> Defaults()
    {
        using Stream stream = typeof(CounterfactualAttribute).Assembly.GetManifestResourceStream("NicheTune.Fairness.attribute-terms.json")
            ?? throw new InvalidOperationException("The embedded resource NicheTune.Fairness.attribute-terms.json is missing from the NicheTune assembly; the package is damaged.");
        using var reader = new StreamReader(stream);
        return Parse(reader.ReadToEnd());
    }

    /// <summary>Reads attributes from JSON: <c>{"attributes": [{"name": …, "slot": …, "groups": [{"name": …, "terms": [ … ]}]}]}</c>.</summary>
    /// <param name="json">The JSON text (comments allowed).</param>
    /// <returns>The attributes.</returns>
    /// <exception cref="InvalidDataException">The text is not valid JSON of that shape, or an attribute is invalid (the message says which).</exception>
    public static ImmutableArray<CounterfactualAttribute> Parse(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        FileDto? dto;
        try
        {
            dto = JsonSerializer.Deserialize<FileDto>(json, JsonOptions);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"The attribute list is not valid JSON: {e.Message}", e);
        }

        if (dto?.Attributes is not { Length: > 0 } attributes)
        {
            throw new InvalidDataException("The attribute list has no \"attributes\" array; write {\"attributes\": [{\"name\": …, \"slot\": …, \"groups\": [{\"name\": …, \"terms\": […]}]}]}.");
        }

        try
        {
            return [.. attributes.Select(a => new CounterfactualAttribute(a.Name!, a.Slot!, (a.Groups ?? []).Select(g => new AttributeGroup(g.Name!, [.. g.Terms ?? []]))))];
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"The attribute list has an invalid attribute: {e.Message}", e);
        }
    }

    /// <summary>Reads attributes from a JSON file (see <see cref="Parse"/>).</summary>
    /// <param name="path">The file.</param>
    /// <returns>The attributes.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a valid attribute list.</exception>
    public static ImmutableArray<CounterfactualAttribute> Load(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"No attribute list at '{path}'.", path);
        }

        return Parse(File.ReadAllText(path));
    }

    /// <summary>The attribute's name and slot.</summary>
    /// <returns>E.g. <c>gender (subject pronoun) {pronoun}</c>.</returns>
    public override string ToString() => $"{Name} {{{Slot}}}";

    private sealed record FileDto(AttributeDto[]? Attributes);

    private sealed record AttributeDto(string? Name, string? Slot, GroupDto[]? Groups);

    private sealed record GroupDto(string? Name, string[]? Terms);
}
