using System.Collections.Immutable;
using System.Text;

namespace NicheTune.Prompting;

/// <summary>
/// A prompt with named slots: <c>"As a {role}, classify the text.\nText: {text}\nCategory:"</c>. Slot names are
/// identifiers (letters, digits, underscore; not starting with a digit); <c>{{</c> and <c>}}</c> write literal braces.
/// The template is parsed and checked when constructed, and every render checks that each slot gets exactly one value
/// and no value names an unknown slot — errors name the slot and list the known ones. Values are inserted verbatim
/// (braces in a value are not slots).
/// </summary>
public sealed class PromptTemplate
{
    /// <summary>The role prefix of <see cref="WithRolePrefix"/>.</summary>
    public const string DefaultRolePrefix = "As a {role}, ";

    private readonly (string Text, bool IsSlot)[] _segments;

    /// <summary>Parses <paramref name="template"/>.</summary>
    /// <param name="template">The template text.</param>
    /// <param name="allowedSlots">When given, every slot must be one of these (catches a misspelt slot at construction).</param>
    /// <exception cref="ArgumentException">A brace is unbalanced, a slot name is empty or not an identifier, or a slot is not in <paramref name="allowedSlots"/>; the message gives the position.</exception>
    public PromptTemplate(string template, IEnumerable<string>? allowedSlots = null)
    {
        ArgumentNullException.ThrowIfNull(template);
        Template = template;
        _segments = Parse(template);
        Slots = [.. _segments.Where(s => s.IsSlot).Select(s => s.Text).Distinct(StringComparer.Ordinal)];
        if (allowedSlots is not null)
        {
            var allowed = allowedSlots.ToHashSet(StringComparer.Ordinal);
            foreach (string slot in Slots)
            {
                if (!allowed.Contains(slot))
                {
                    throw new ArgumentException($"Prompt template slot '{{{slot}}}' is not one of the allowed slots ({Describe(allowed)}); fix the name or write a literal brace as '{{{{'.", nameof(template));
                }
            }
        }
    }

    /// <summary>The template text as given.</summary>
    public string Template { get; }

    /// <summary>The distinct slot names, in order of first appearance.</summary>
    public ImmutableArray<string> Slots { get; }

    /// <summary>Escapes braces so that <paramref name="literal"/> reads as plain text inside a template.</summary>
    /// <param name="literal">Any text.</param>
    /// <returns>The text with <c>{</c> and <c>}</c> doubled.</returns>
    public static string Escape(string literal)
    {
        ArgumentNullException.ThrowIfNull(literal);
        return literal.Replace("{", "{{", StringComparison.Ordinal).Replace("}", "}}", StringComparison.Ordinal);
    }

    /// <summary>Fills every slot.</summary>
    /// <param name="values">One value per slot, by slot name (case-sensitive).</param>
    /// <returns>The prompt.</returns>
    /// <exception cref="ArgumentException">A slot has no value, a value names no slot, or a value is <see langword="null"/>; the message names it and lists the known slots.</exception>
    public string Render(IReadOnlyDictionary<string, string> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        foreach ((string name, string value) in values)
        {
            if (!Slots.Contains(name))
            {
                throw new ArgumentException($"Value given for unknown slot '{name}'; the template's slots are {Describe(Slots)}.", nameof(values));
            }

            if (value is null)
            {
                throw new ArgumentException($"The value of slot '{name}' is null; pass an empty string for an empty slot.", nameof(values));
            }
        }

        var builder = new StringBuilder(Template.Length + 64);
        foreach ((string text, bool isSlot) in _segments)
        {
            if (!isSlot)
            {
                builder.Append(text);
            }
            else if (values.TryGetValue(text, out string? value))
            {
                builder.Append(value);
            }
            else
            {
                throw new ArgumentException($"Missing value for slot '{text}'; the template's slots are {Describe(Slots)}.", nameof(values));
            }
        }

        return builder.ToString();
    }

    /// <summary>Fills every slot: <c>template.Render(("role", "network engineer"), ("text", input))</c>.</summary>
    /// <param name="values">Slot name and value pairs.</param>
    /// <returns>The prompt.</returns>
    /// <exception cref="ArgumentException">As <see cref="Render(IReadOnlyDictionary{string, string})"/>, or a slot is given twice.</exception>
    public string Render(params (string Slot, string Value)[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var map = new Dictionary<string, string>(values.Length, StringComparer.Ordinal);
        foreach ((string slot, string value) in values)
        {
            if (!map.TryAdd(slot, value))
            {
                throw new ArgumentException($"Slot '{slot}' is given two values; give each slot once.", nameof(values));
            }
        }

        return Render(map);
    }

    /// <summary>A new template with <paramref name="slot"/> filled in and every other slot left open (e.g. fix the role, vary the text).</summary>
    /// <param name="slot">A slot of this template.</param>
    /// <param name="value">Its value, inserted verbatim.</param>
    /// <returns>The partially filled template.</returns>
    /// <exception cref="ArgumentException"><paramref name="slot"/> is not a slot of this template.</exception>
    public PromptTemplate Fill(string slot, string value)
    {
        ArgumentNullException.ThrowIfNull(slot);
        ArgumentNullException.ThrowIfNull(value);
        if (!Slots.Contains(slot))
        {
            throw new ArgumentException($"Cannot fill unknown slot '{slot}'; the template's slots are {Describe(Slots)}.", nameof(slot));
        }

        var builder = new StringBuilder();
        foreach ((string text, bool isSlot) in _segments)
        {
            builder.Append(!isSlot ? Escape(text) : text == slot ? Escape(value) : "{" + text + "}");
        }

        return new PromptTemplate(builder.ToString());
    }

    /// <summary>A new template that starts with a role prefix, <c>"As a {role}, "</c> by default: the persona framing that helps instruction-tuned models.</summary>
    /// <param name="prefix">The prefix template; it should contain a slot such as <c>{role}</c>.</param>
    /// <returns>The prefixed template.</returns>
    /// <exception cref="ArgumentException"><paramref name="prefix"/> is not a valid template.</exception>
    public PromptTemplate WithRolePrefix(string prefix = DefaultRolePrefix)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        return new PromptTemplate(prefix + Template);
    }

    /// <inheritdoc />
    public override string ToString() => Template;

    private static string Describe(IEnumerable<string> slots)
    {
        string list = string.Join(", ", slots.Select(s => "'" + s + "'"));
        return list.Length == 0 ? "none" : list;
    }

    private static (string, bool)[] Parse(string template)
    {
        var segments = new List<(string, bool)>();
        var literal = new StringBuilder();
        int i = 0;
        while (i < template.Length)
        {
            char c = template[i];
            if (c == '{' && i + 1 < template.Length && template[i + 1] == '{')
            {
                literal.Append('{');
                i += 2;
            }
            else if (c == '}' && i + 1 < template.Length && template[i + 1] == '}')
            {
                literal.Append('}');
                i += 2;
            }
            else if (c == '}')
            {
                throw new ArgumentException($"Unmatched '}}' at position {i} of the prompt template; write '}}}}' for a literal brace.", nameof(template));
            }
            else if (c == '{')
            {
                int close = template.IndexOf('}', i + 1);
                if (close < 0)
                {
                    throw new ArgumentException($"Unclosed '{{' at position {i} of the prompt template; close the slot with '}}' or write '{{{{' for a literal brace.", nameof(template));
                }

                string name = template[(i + 1)..close];
                if (!IsIdentifier(name))
                {
                    throw new ArgumentException($"Invalid slot name '{name}' at position {i} of the prompt template; slot names are identifiers like 'text' or 'user_role' (write '{{{{' for a literal brace).", nameof(template));
                }

                if (literal.Length > 0)
                {
                    segments.Add((literal.ToString(), false));
                    literal.Clear();
                }

                segments.Add((name, true));
                i = close + 1;
            }
            else
            {
                literal.Append(c);
                i++;
            }
        }

        if (literal.Length > 0)
        {
            segments.Add((literal.ToString(), false));
        }

        return [.. segments];
    }

    private static bool IsIdentifier(string name)
    {
        if (name.Length == 0 || !(char.IsLetter(name[0]) || name[0] == '_'))
        {
            return false;
        }

        foreach (char c in name)
        {
            if (!(char.IsLetterOrDigit(c) || c == '_'))
            {
                return false;
            }
        }

        return true;
    }
}
