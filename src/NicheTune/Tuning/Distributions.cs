using System.Collections.Immutable;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace NicheTune.Tuning;

/// <summary>
/// The range a hyperparameter is drawn from. A sampled value is kept in its <em>internal</em> form, a
/// <see cref="double"/>: the value itself for numbers, the choice's index for categories, so samplers and storages
/// handle every kind alike.
/// </summary>
public abstract record ParameterDistribution
{
    private protected ParameterDistribution()
    {
    }

    /// <summary>Whether <paramref name="internalValue"/> lies in this distribution (inside the bounds, on the step grid, a valid index).</summary>
    /// <param name="internalValue">A value in internal form.</param>
    /// <returns><see langword="true"/> when it belongs.</returns>
    public abstract bool Contains(double internalValue);

    /// <summary>Turns an internal value into what <see cref="Trial"/>'s suggest methods return (a <see cref="double"/>, a <see cref="long"/> or the choice's text).</summary>
    /// <param name="internalValue">A value in internal form.</param>
    /// <returns>The external value.</returns>
    public abstract object ToExternal(double internalValue);

    /// <summary>A short description used in error messages and reports, e.g. <c>float [1e-05, 0.01] log</c>.</summary>
    /// <returns>The description.</returns>
    public abstract string Describe();

    /// <summary>Serialises the distribution to JSON (what storages persist).</summary>
    /// <returns>The JSON text.</returns>
    public abstract string ToJson();

    /// <summary>Reads a distribution written by <see cref="ToJson"/>.</summary>
    /// <param name="json">The JSON text.</param>
    /// <returns>The distribution.</returns>
    /// <exception cref="FormatException">The text is not a distribution written by <see cref="ToJson"/>.</exception>
    public static ParameterDistribution FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            JsonNode node = JsonNode.Parse(json) ?? throw new FormatException("null");
            string kind = (string)node["kind"]!;
            return kind switch
            {
                "float" => new FloatDistribution((double)node["low"]!, (double)node["high"]!, (bool)node["log"]!, (double?)node["step"]),
                "int" => new IntDistribution((long)node["low"]!, (long)node["high"]!, (bool)node["log"]!, (long)node["step"]!),
                "categorical" => new CategoricalDistribution(node["choices"]!.AsArray().Select(c => (string)c!)),
                _ => throw new FormatException($"unknown kind '{kind}'"),
            };
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or NullReferenceException or FormatException or ArgumentException)
        {
            throw new FormatException($"'{json}' is not a parameter distribution written by ParameterDistribution.ToJson ({ex.Message}).", ex);
        }
    }

    internal static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}

/// <summary>A real-valued parameter on [<see cref="Low"/>, <see cref="High"/>], uniform or log-uniform, optionally on a step grid.</summary>
public sealed record FloatDistribution : ParameterDistribution
{
    /// <summary>Creates the distribution.</summary>
    /// <param name="low">The lower bound (inclusive); positive when <paramref name="log"/>.</param>
    /// <param name="high">The upper bound (inclusive), at least <paramref name="low"/>.</param>
    /// <param name="log">Sample uniformly in log space (learning rates, weight decay).</param>
    /// <param name="step">Quantise to <c>low + k·step</c>; not with <paramref name="log"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException">A bound is not finite, <paramref name="high"/> &lt; <paramref name="low"/>, <paramref name="low"/> ≤ 0 with <paramref name="log"/>, or <paramref name="step"/> ≤ 0.</exception>
    /// <exception cref="ArgumentException"><paramref name="log"/> and <paramref name="step"/> are both set.</exception>
    public FloatDistribution(double low, double high, bool log = false, double? step = null)
    {
        if (!double.IsFinite(low) || !double.IsFinite(high) || high < low)
        {
            throw new ArgumentOutOfRangeException(nameof(high), high, $"A float range needs finite bounds with low ≤ high; got [{Number(low)}, {Number(high)}]. Swap or fix the bounds.");
        }

        if (log && low <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(low), low, $"A log-scale range needs low > 0; got {Number(low)}. Use a small positive bound such as 1e-8, or log: false.");
        }

        if (step is { } s)
        {
            if (!double.IsFinite(s) || s <= 0)
            {
                throw new ArgumentOutOfRangeException(nameof(step), s, $"The step must be positive; got {Number(s)}.");
            }

            if (log)
            {
                throw new ArgumentException("A float parameter cannot have both log: true and a step; drop one of them.", nameof(step));
            }
        }

        Low = low;
        High = step is { } q ? low + Math.Floor(((high - low) / q) + 1e-9) * q : high;
        Log = log;
        Step = step;
    }

    /// <summary>The lower bound.</summary>
    public double Low { get; }

    /// <summary>The upper bound (with a step: the largest grid point not above the requested bound).</summary>
    public double High { get; }

    /// <summary>Whether values are drawn uniformly in log space.</summary>
    public bool Log { get; }

    /// <summary>The quantisation step, or <see langword="null"/>.</summary>
    public double? Step { get; }

    /// <inheritdoc/>
    public override bool Contains(double internalValue)
    {
        if (!(internalValue >= Low && internalValue <= High))
        {
            return false;
        }

        if (Step is not { } step)
        {
            return true;
        }

        double k = (internalValue - Low) / step;
        return Math.Abs(k - Math.Round(k)) < 1e-6;
    }

    /// <summary>Rounds <paramref name="value"/> to the step grid (if any) and clips it to the bounds.</summary>
    /// <param name="value">A value.</param>
    /// <returns>The nearest valid value.</returns>
    public double Quantize(double value)
    {
        if (Step is { } step)
        {
            value = Low + Math.Round((value - Low) / step) * step;
        }

        return Math.Clamp(value, Low, High);
    }

    /// <inheritdoc/>
    public override object ToExternal(double internalValue) => internalValue;

    /// <inheritdoc/>
    public override string Describe() => $"float [{Number(Low)}, {Number(High)}]{(Log ? " log" : "")}{(Step is { } s ? $" step {Number(s)}" : "")}";

    /// <inheritdoc/>
    public override string ToJson()
        => new JsonObject { ["kind"] = "float", ["low"] = Low, ["high"] = High, ["log"] = Log, ["step"] = Step }.ToJsonString();
}

/// <summary>An integer parameter on [<see cref="Low"/>, <see cref="High"/>], uniform or log-uniform, on a step grid.</summary>
public sealed record IntDistribution : ParameterDistribution
{
    /// <summary>Creates the distribution.</summary>
    /// <param name="low">The lower bound (inclusive); at least 1 when <paramref name="log"/>.</param>
    /// <param name="high">The upper bound (inclusive), at least <paramref name="low"/>.</param>
    /// <param name="log">Sample uniformly in log space (layer widths, batch sizes).</param>
    /// <param name="step">Values are <c>low + k·step</c>; must be 1 with <paramref name="log"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="high"/> &lt; <paramref name="low"/>, <paramref name="low"/> &lt; 1 with <paramref name="log"/>, or <paramref name="step"/> &lt; 1.</exception>
    /// <exception cref="ArgumentException"><paramref name="log"/> with a step other than 1.</exception>
    public IntDistribution(long low, long high, bool log = false, long step = 1)
    {
        if (high < low)
        {
            throw new ArgumentOutOfRangeException(nameof(high), high, $"An int range needs low ≤ high; got [{low}, {high}]. Swap the bounds.");
        }

        if (log && low < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(low), low, $"A log-scale int range needs low ≥ 1; got {low}.");
        }

        if (step < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(step), step, $"The step must be at least 1; got {step}.");
        }

        if (log && step != 1)
        {
            throw new ArgumentException($"A log-scale int parameter needs step 1; got {step}. Drop the step or use log: false.", nameof(step));
        }

        Low = low;
        High = low + (high - low) / step * step;
        Log = log;
        Step = step;
    }

    /// <summary>The lower bound.</summary>
    public long Low { get; }

    /// <summary>The upper bound (the largest grid point not above the requested bound).</summary>
    public long High { get; }

    /// <summary>Whether values are drawn uniformly in log space.</summary>
    public bool Log { get; }

    /// <summary>The step between values (1 by default).</summary>
    public long Step { get; }

    /// <inheritdoc/>
    public override bool Contains(double internalValue)
        => internalValue >= Low && internalValue <= High && internalValue == Math.Round(internalValue) && ((long)internalValue - Low) % Step == 0;

    /// <summary>Rounds <paramref name="value"/> to the nearest grid point inside the bounds.</summary>
    /// <param name="value">A value.</param>
    /// <returns>The nearest valid value.</returns>
    public double Quantize(double value) => Math.Clamp(Low + Math.Round((value - Low) / Step) * Step, Low, High);

    /// <inheritdoc/>
    public override object ToExternal(double internalValue) => (long)Math.Round(internalValue);

    /// <inheritdoc/>
    public override string Describe() => $"int [{Low}, {High}]{(Log ? " log" : "")}{(Step != 1 ? $" step {Step}" : "")}";

    /// <inheritdoc/>
    public override string ToJson()
        => new JsonObject { ["kind"] = "int", ["low"] = Low, ["high"] = High, ["log"] = Log, ["step"] = Step }.ToJsonString();
}

/// <summary>A choice among named options; the internal value is the option's index.</summary>
public sealed record CategoricalDistribution : ParameterDistribution
{
    /// <summary>Creates the distribution.</summary>
    /// <param name="choices">At least one option; options are compared by their invariant-culture text and must be distinct.</param>
    /// <exception cref="ArgumentException">No choices, or two choices with the same text.</exception>
    public CategoricalDistribution(IEnumerable<string> choices)
    {
        ArgumentNullException.ThrowIfNull(choices);
        Choices = [.. choices];
        if (Choices.IsEmpty)
        {
            throw new ArgumentException("A categorical parameter needs at least one choice.", nameof(choices));
        }

        string? duplicate = Choices.GroupBy(c => c, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1)?.Key;
        if (duplicate is not null)
        {
            throw new ArgumentException($"The choice '{duplicate}' appears twice; choices must be distinct.", nameof(choices));
        }
    }

    /// <summary>The options, in order (their index is the internal value).</summary>
    public ImmutableArray<string> Choices { get; }

    /// <inheritdoc/>
    public override bool Contains(double internalValue)
        => internalValue >= 0 && internalValue < Choices.Length && internalValue == Math.Round(internalValue);

    /// <inheritdoc/>
    public override object ToExternal(double internalValue) => Choices[(int)internalValue];

    /// <inheritdoc/>
    public override string Describe() => $"categorical {{{string.Join(", ", Choices)}}}";

    /// <inheritdoc/>
    public override string ToJson()
        => new JsonObject { ["kind"] = "categorical", ["choices"] = new JsonArray([.. Choices.Select(c => (JsonNode?)JsonValue.Create(c))]) }.ToJsonString();

    /// <inheritdoc/>
    public bool Equals(CategoricalDistribution? other) => other is not null && Choices.SequenceEqual(other.Choices, StringComparer.Ordinal);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (string choice in Choices)
        {
            hash.Add(choice, StringComparer.Ordinal);
        }

        return hash.ToHashCode();
    }

    internal static string Text<T>(T choice) => choice switch
    {
        null => "null",
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        _ => choice.ToString() ?? "null",
    };
}
