using System.Collections.Immutable;
using System.Globalization;

namespace NicheTune.Tuning;

/// <summary>The built-in samplers: <c>Samplers.Tpe(seed: 1)</c>, <c>Samplers.Random(seed: 1)</c>, <c>Samplers.Grid(…)</c>.</summary>
public static class Samplers
{
    /// <summary>Uniform random search (log-uniform for log parameters); each value depends only on the seed, the trial number and the parameter's name.</summary>
    /// <param name="seed">Makes the search reproducible; <see langword="null"/> picks a random seed.</param>
    /// <returns>The sampler.</returns>
    public static ISampler Random(int? seed = null) => new RandomSampler(seed);

    /// <summary>
    /// Exhaustive search over a declared grid: trial <c>n</c> evaluates combination <c>n</c>, and the study stops at the
    /// grid's size, so every combination is evaluated exactly once even with several workers (trial numbers are
    /// unique). Parameters are combined in ordinal order of their names; give the study to the grid alone.
    /// </summary>
    /// <param name="grid">Each parameter's values (numbers for float and int parameters, the choices themselves for categorical ones).</param>
    /// <param name="seed">Shuffles the order of the combinations; <see langword="null"/> keeps lexicographic order.</param>
    /// <returns>The sampler.</returns>
    /// <exception cref="ArgumentException">The grid is empty, or a parameter has no values.</exception>
    public static ISampler Grid(IReadOnlyDictionary<string, IReadOnlyList<object>> grid, int? seed = null) => new GridSampler(grid, seed);

    /// <summary>
    /// The Tree-structured Parzen Estimator, as Optuna defines it (independent per parameter): random search for the
    /// first <see cref="TpeOptions.StartupTrials"/> finished trials, then split the finished trials into the best γ(n)
    /// and the rest, fit a Parzen estimator l(x) to the good ones and g(x) to the others, draw
    /// <see cref="TpeOptions.EiCandidates"/> candidates from l(x) and keep the one with the highest l(x)/g(x).
    /// </summary>
    /// <param name="seed">Makes the search reproducible (for a given history); <see langword="null"/> picks a random seed.</param>
    /// <param name="options">Settings; Optuna's defaults when <see langword="null"/>.</param>
    /// <returns>The sampler.</returns>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public static ISampler Tpe(int? seed = null, TpeOptions? options = null) => new TpeSampler(seed, options ?? new TpeOptions());

    internal static Random Rng(int seed, int trialNumber, string name, int stream = 0)
    {
        // Stable mixing (FNV-1a of the name, SplitMix64 finaliser), not HashCode, whose seed changes per process: a seeded
        // search must reproduce across processes and after a resume.
        ulong hash = 14695981039346656037UL;
        foreach (char c in name)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }

        ulong z = hash ^ ((ulong)(uint)seed << 32) ^ (uint)trialNumber ^ ((ulong)(uint)stream << 16);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return new Random((int)(z ^ (z >> 32)));
    }
}

/// <summary>Settings of the TPE sampler; the defaults are Optuna's.</summary>
public sealed class TpeOptions
{
    /// <summary>Finished trials sampled at random before TPE starts modelling.</summary>
    /// <value>10.</value>
    public int StartupTrials { get; init; } = 10;

    /// <summary>Candidates drawn from l(x) per parameter; the best l(x)/g(x) wins.</summary>
    /// <value>24.</value>
    public int EiCandidates { get; init; } = 24;

    /// <summary>Weight of the prior (a wide kernel at the centre of the range) in each estimator.</summary>
    /// <value>1.0.</value>
    public double PriorWeight { get; init; } = 1.0;

    /// <summary>Clip kernel widths to at least range / min(100, 1 + observations) (Optuna's "magic clip").</summary>
    /// <value><see langword="true"/>.</value>
    public bool ConsiderMagicClip { get; init; } = true;

    /// <summary>Let the kernels at the ends take their width from the distance to the bounds.</summary>
    /// <value><see langword="false"/>.</value>
    public bool ConsiderEndpoints { get; init; }

    /// <summary>How many of n finished trials count as good.</summary>
    /// <value>Optuna's gamma(n) = min(⌈0.1 n⌉, 25).</value>
    public Func<int, int> Gamma { get; init; } = DefaultGamma;

    /// <summary>Optuna's default γ: min(⌈0.1 n⌉, 25).</summary>
    /// <param name="n">Finished trials.</param>
    /// <returns>How many are "good".</returns>
    public static int DefaultGamma(int n) => Math.Min((int)Math.Ceiling(0.1 * n), 25);

    /// <summary>Optuna's default weights of n observations, oldest first: all 1 up to 25, then a ramp from 1/n to 1 for all but the newest 25.</summary>
    /// <param name="n">Observations.</param>
    /// <returns>The weights.</returns>
    public static double[] DefaultWeights(int n)
    {
        var weights = new double[n];
        int ramp = n < 25 ? 0 : n - 25;
        for (int i = 0; i < n; i++)
        {
            weights[i] = i < ramp ? (ramp == 1 ? 1.0 / n : 1.0 / n + (1.0 - 1.0 / n) * i / (ramp - 1)) : 1.0;
        }

        return weights;
    }
}

internal sealed class RandomSampler(int? seed) : ISampler
{
    private readonly int _seed = seed ?? System.Random.Shared.Next();

    public double Sample(in SamplerArguments args)
        => Draw(args.Distribution, Samplers.Rng(_seed, args.TrialNumber, args.ParameterName));

    internal static double Draw(ParameterDistribution distribution, Random random)
    {
        switch (distribution)
        {
            case FloatDistribution f when f.Log:
                return Math.Clamp(Math.Exp(Uniform(random, Math.Log(f.Low), Math.Log(f.High))), f.Low, f.High);
            case FloatDistribution f when f.Step is { } step:
                return f.Quantize(Uniform(random, f.Low - step / 2, f.High + step / 2));
            case FloatDistribution f:
                return Math.Min(Uniform(random, f.Low, f.High), f.High);
            case IntDistribution i when i.Log:
                return i.Quantize(Math.Exp(Uniform(random, Math.Log(i.Low - 0.5), Math.Log(i.High + 0.5))));
            case IntDistribution i:
                return i.Quantize(Uniform(random, i.Low - i.Step / 2.0, i.High + i.Step / 2.0));
            case CategoricalDistribution c:
                return random.Next(c.Choices.Length);
            default:
                throw new NotSupportedException($"Unknown distribution {distribution.GetType().Name}.");
        }
    }

    private static double Uniform(Random random, double low, double high) => low + (high - low) * random.NextDouble();
}

internal sealed class GridSampler : ISampler
{
    private readonly ImmutableArray<string> _names;
    private readonly ImmutableArray<IReadOnlyList<object>> _values;
    private readonly int[] _order;

    public GridSampler(IReadOnlyDictionary<string, IReadOnlyList<object>> grid, int? seed)
    {
        ArgumentNullException.ThrowIfNull(grid);
        if (grid.Count == 0)
        {
            throw new ArgumentException("The grid has no parameters; give at least one parameter with its values.", nameof(grid));
        }

        string? empty = grid.FirstOrDefault(p => p.Value is null || p.Value.Count == 0).Key;
        if (empty is not null)
        {
            throw new ArgumentException($"Grid parameter '{empty}' has no values.", nameof(grid));
        }

        _names = [.. grid.Keys.Order(StringComparer.Ordinal)];
        _values = [.. _names.Select(n => grid[n])];
        long size = _values.Aggregate(1L, (product, v) => product * v.Count);
        if (size > int.MaxValue)
        {
            throw new ArgumentException($"The grid has {size} combinations, more than a study can number; use random or TPE search.", nameof(grid));
        }

        _order = Enumerable.Range(0, (int)size).ToArray();
        if (seed is { } s)
        {
            new Random(s).Shuffle(_order);
        }
    }

    public int? MaxTrials => _order.Length;

    public double Sample(in SamplerArguments args)
    {
        int position = Array.BinarySearch([.. _names], args.ParameterName, StringComparer.Ordinal);
        if (position < 0)
        {
            throw new InvalidOperationException($"Parameter '{args.ParameterName}' is not in the grid ({string.Join(", ", _names)}); add its values to the grid.");
        }

        if (args.TrialNumber >= _order.Length)
        {
            throw new InvalidOperationException($"Trial {args.TrialNumber} is past the grid's {_order.Length} combinations; the grid is exhausted.");
        }

        int combination = _order[args.TrialNumber];
        for (int i = _names.Length - 1; i > position; i--)
        {
            combination /= _values[i].Count;
        }

        object value = _values[position][combination % _values[position].Count];
        double internalValue = args.Distribution switch
        {
            CategoricalDistribution c => c.Choices.IndexOf(CategoricalDistribution.Text(value)),
            _ => Convert.ToDouble(value, CultureInfo.InvariantCulture),
        };
        if (!args.Distribution.Contains(internalValue))
        {
            throw new InvalidOperationException($"Grid value {CategoricalDistribution.Text(value)} of '{args.ParameterName}' is not in the objective's {args.Distribution.Describe()}; fix the grid or the range.");
        }

        return internalValue;
    }
}
