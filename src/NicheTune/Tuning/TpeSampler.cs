namespace NicheTune.Tuning;

/// <summary>
/// Independent TPE after Optuna (Bergstra et al. 2011; Watanabe 2023, "Tree-Structured Parzen Estimator: Understanding
/// Its Algorithm Components"): each parameter is modelled on its own from the finished trials that have it.
/// </summary>
internal sealed class TpeSampler : ISampler
{
    private readonly int _seed;
    private readonly TpeOptions _options;

    public TpeSampler(int? seed, TpeOptions options)
    {
        if (options.StartupTrials < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.StartupTrials, "TpeOptions.StartupTrials must be ≥ 0.");
        }

        if (options.EiCandidates < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.EiCandidates, "TpeOptions.EiCandidates must be ≥ 1.");
        }

        if (!(options.PriorWeight > 0) || !double.IsFinite(options.PriorWeight))
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.PriorWeight, "TpeOptions.PriorWeight must be positive and finite.");
        }

        ArgumentNullException.ThrowIfNull(options.Gamma);
        _seed = seed ?? Random.Shared.Next();
        _options = options;
    }

    public double Sample(in SamplerArguments args)
    {
        var finished = new List<FrozenTrial>();
        foreach (FrozenTrial t in args.Trials)
        {
            if (t.State == TrialState.Complete || t.State == TrialState.Pruned)
            {
                finished.Add(t);
            }
        }

        Random random = Samplers.Rng(_seed, args.TrialNumber, args.ParameterName);
        if (finished.Count < _options.StartupTrials)
        {
            return RandomSampler.Draw(args.Distribution, random);
        }

        int below = Math.Clamp(_options.Gamma(finished.Count), 0, finished.Count);
        (List<FrozenTrial> good, List<FrozenTrial> bad) = Split(finished, below, args.Directions);
        double[] goodObservations = Observations(good, args.ParameterName, args.Distribution);
        double[] badObservations = Observations(bad, args.ParameterName, args.Distribution);

        var l = new ParzenEstimator(args.Distribution, goodObservations, _options);
        var g = new ParzenEstimator(args.Distribution, badObservations, _options);
        double best = double.NaN;
        double bestScore = double.NegativeInfinity;
        for (int i = 0; i < _options.EiCandidates; i++)
        {
            double candidate = l.Sample(random);
            double score = l.LogDensity(candidate) - g.LogDensity(candidate);
            if (double.IsNaN(best) || score > bestScore)
            {
                best = candidate;
                bestScore = score;
            }
        }

        return best;
    }

    /// <summary>Optuna's split: complete trials by value (Pareto rank for several objectives), then pruned trials by how far they got.</summary>
    internal static (List<FrozenTrial> Below, List<FrozenTrial> Above) Split(List<FrozenTrial> trials, int below, IReadOnlyList<StudyDirection> directions)
    {
        var complete = trials.Where(t => t.State == TrialState.Complete && t.Values.Length == directions.Count).ToList();
        var ranked = new List<FrozenTrial>(trials.Count);
        if (directions.Count == 1)
        {
            double sign = directions[0] == StudyDirection.Maximize ? -1 : 1;
            ranked.AddRange(complete.OrderBy(t => sign * t.Values[0]).ThenBy(t => t.Number));
        }
        else
        {
            int[] rank = ParetoRanks(complete, directions);
            ranked.AddRange(complete.Select((t, i) => (t, rank[i])).OrderBy(p => p.Item2).ThenBy(p => p.t.Number).Select(p => p.t));
        }

        double prunedSign = directions.Count == 1 && directions[0] == StudyDirection.Maximize ? -1 : 1;
        ranked.AddRange(trials.Where(t => !complete.Contains(t))
            .OrderBy(t => t.LastIntermediate is null ? 1 : 0)
            .ThenByDescending(t => t.LastIntermediate?.Step ?? 0)
            .ThenBy(t => t.LastIntermediate is { } last && !double.IsNaN(last.Value) ? prunedSign * last.Value : double.PositiveInfinity)
            .ThenBy(t => t.Number));

        var good = ranked.Take(below).OrderBy(t => t.Number).ToList();
        var bad = ranked.Skip(below).OrderBy(t => t.Number).ToList();
        return (good, bad);
    }

    /// <summary>Non-dominated sorting: rank 0 is the Pareto front, rank 1 the front once rank 0 is removed, …</summary>
    internal static int[] ParetoRanks(IReadOnlyList<FrozenTrial> trials, IReadOnlyList<StudyDirection> directions)
    {
        int n = trials.Count;
        var rank = new int[n];
        Array.Fill(rank, -1);
        int assigned = 0;
        for (int current = 0; assigned < n; current++)
        {
            var front = new List<int>();
            for (int i = 0; i < n; i++)
            {
                if (rank[i] >= 0)
                {
                    continue;
                }

                bool dominated = false;
                for (int j = 0; j < n && !dominated; j++)
                {
                    dominated = j != i && rank[j] < 0 && Dominates(trials[j].Values, trials[i].Values, directions);
                }

                if (!dominated)
                {
                    front.Add(i);
                }
            }

            foreach (int i in front)
            {
                rank[i] = current;
            }

            assigned += front.Count;
        }

        return rank;
    }

    internal static bool Dominates(IReadOnlyList<double> a, IReadOnlyList<double> b, IReadOnlyList<StudyDirection> directions)
    {
        bool strictly = false;
        for (int k = 0; k < directions.Count; k++)
        {
            double sign = directions[k] == StudyDirection.Maximize ? -1 : 1;
            double x = sign * a[k];
            double y = sign * b[k];
            if (x > y)
            {
                return false;
            }

            strictly |= x < y;
        }

        return strictly;
    }

    private static double[] Observations(List<FrozenTrial> trials, string name, ParameterDistribution distribution)
    {
        var values = new List<double>(trials.Count);
        foreach (FrozenTrial t in trials)
        {
            if (!t.InternalParameters.TryGetValue(name, out double value) || !t.Distributions.TryGetValue(name, out ParameterDistribution? seen))
            {
                continue;
            }

            if (distribution is CategoricalDistribution categorical && seen is CategoricalDistribution before)
            {
                // Choices are matched by text, so a study may reorder or extend them.
                int index = categorical.Choices.IndexOf(before.Choices[(int)value]);
                if (index >= 0)
                {
                    values.Add(index);
                }
            }
            else if (seen.GetType() == distribution.GetType() && distribution.Contains(value))
            {
                values.Add(value);
            }
        }

        return [.. values];
    }
}

/// <summary>
/// A univariate Parzen estimator in Optuna's form: one truncated-normal kernel per observation (log space for log
/// parameters, discretised for stepped ones) plus a wide prior kernel; widths from the distance to the neighbours,
/// clipped. Categorical parameters: one smoothed one-hot kernel per observation plus a uniform prior.
/// </summary>
internal sealed class ParzenEstimator
{
    private readonly ParameterDistribution _distribution;
    private readonly double[] _weights;
    private readonly double[] _mus = [];
    private readonly double[] _sigmas = [];
    private readonly double[][] _categories = [];
    private readonly double _low;
    private readonly double _high;
    private readonly double _step;

    public ParzenEstimator(ParameterDistribution distribution, double[] observations, TpeOptions options)
    {
        _distribution = distribution;
        int n = observations.Length;
        double[] weights = n == 0 ? [] : Weights(n);
        _weights = new double[n + 1];
        Array.Copy(weights, _weights, n);
        _weights[n] = n == 0 ? 1.0 : options.PriorWeight;
        double total = _weights.Sum();
        for (int i = 0; i < _weights.Length; i++)
        {
            _weights[i] /= total;
        }

        if (distribution is CategoricalDistribution categorical)
        {
            int choices = categorical.Choices.Length;
            _categories = new double[n + 1][];
            for (int k = 0; k <= n; k++)
            {
                var row = new double[choices];
                Array.Fill(row, options.PriorWeight / (n + 1));
                if (k < n)
                {
                    row[(int)observations[k]] += 1;
                }

                double sum = row.Sum();
                for (int c = 0; c < choices; c++)
                {
                    row[c] /= sum;
                }

                _categories[k] = row;
            }

            return;
        }

        (_low, _high, _step) = distribution switch
        {
            FloatDistribution { Log: true } f => (Math.Log(f.Low), Math.Log(f.High), 0.0),
            FloatDistribution f => (f.Low, f.High, f.Step ?? 0.0),
            IntDistribution { Log: true } i => (Math.Log(i.Low - 0.5), Math.Log(i.High + 0.5), 0.0),
            IntDistribution i => (i.Low, i.High, i.Step),
            _ => throw new NotSupportedException(distribution.GetType().Name),
        };
        double[] mus = observations.Select(Transform).ToArray();
        double range = _high - _low + _step;
        double prior = 0.5 * (_low + _high);

        // Bandwidth of each kernel: the larger distance to its neighbours among the observations and the prior's centre,
        // with the bounds as outer neighbours (the end kernels look inward only unless ConsiderEndpoints).
        double[] withPrior = [.. mus, prior];
        int[] order = Enumerable.Range(0, withPrior.Length).OrderBy(i => withPrior[i]).ToArray();
        var sorted = new double[withPrior.Length + 2];
        sorted[0] = _low - _step / 2;
        sorted[^1] = _high + _step / 2;
        for (int i = 0; i < order.Length; i++)
        {
            sorted[i + 1] = withPrior[order[i]];
        }

        var sortedSigmas = new double[withPrior.Length];
        for (int i = 0; i < sortedSigmas.Length; i++)
        {
            sortedSigmas[i] = Math.Max(sorted[i + 1] - sorted[i], sorted[i + 2] - sorted[i + 1]);
        }

        if (!options.ConsiderEndpoints && sorted.Length >= 4)
        {
            sortedSigmas[0] = sorted[2] - sorted[1];
            sortedSigmas[^1] = sorted[^2] - sorted[^3];
        }

        double maxSigma = range;
        double minSigma = options.ConsiderMagicClip ? range / Math.Min(100.0, 1.0 + n + 1) : 1e-12;
        var sigmas = new double[withPrior.Length];
        for (int i = 0; i < order.Length; i++)
        {
            sigmas[order[i]] = Math.Clamp(sortedSigmas[i], minSigma, maxSigma);
        }

        _mus = [.. mus, prior];
        _sigmas = sigmas;
        _sigmas[^1] = range;
    }

    public double Sample(Random random)
    {
        int k = Pick(random, _weights);
        if (_distribution is CategoricalDistribution)
        {
            return Pick(random, _categories[k]);
        }

        double x = NormalMath.SampleTruncated(random, _mus[k], _sigmas[k], _low - _step / 2, _high + _step / 2);
        return Untransform(x);
    }

    public double LogDensity(double value)
    {
        if (_distribution is CategoricalDistribution)
        {
            double p = 0;
            for (int k = 0; k < _weights.Length; k++)
            {
                p += _weights[k] * _categories[k][(int)value];
            }

            return Math.Log(p);
        }

        double x = Transform(value);
        double low = _low - _step / 2;
        double high = _high + _step / 2;
        var terms = new double[_weights.Length];
        for (int k = 0; k < _weights.Length; k++)
        {
            double mu = _mus[k];
            double sigma = _sigmas[k];
            double normaliser = NormalMath.LogMass((low - mu) / sigma, (high - mu) / sigma);
            double log = _step > 0
                ? NormalMath.LogMass((x - _step / 2 - mu) / sigma, (x + _step / 2 - mu) / sigma)
                : NormalMath.LogPdf((x - mu) / sigma) - Math.Log(sigma);
            terms[k] = Math.Log(_weights[k]) + log - normaliser;
        }

        return NormalMath.LogSumExp(terms);
    }

    private static double[] Weights(int n) => TpeOptions.DefaultWeights(n);

    private double Transform(double value) => _distribution switch
    {
        FloatDistribution { Log: true } or IntDistribution { Log: true } => Math.Log(value),
        _ => value,
    };

    private double Untransform(double x) => _distribution switch
    {
        FloatDistribution { Log: true } f => Math.Clamp(Math.Exp(x), f.Low, f.High),
        FloatDistribution f => f.Quantize(x),
        IntDistribution { Log: true } i => i.Quantize(Math.Exp(x)),
        IntDistribution i => i.Quantize(x),
        _ => x,
    };

    private static int Pick(Random random, double[] probabilities)
    {
        double u = random.NextDouble();
        double cumulative = 0;
        for (int i = 0; i < probabilities.Length; i++)
        {
            cumulative += probabilities[i];
            if (u < cumulative)
            {
                return i;
            }
        }

        return probabilities.Length - 1;
    }
}

/// <summary>The standard normal's density, distribution and quantile functions, accurate in the tails.</summary>
internal static class NormalMath
{
    private static readonly double LogSqrt2Pi = 0.5 * Math.Log(2 * Math.PI);
    private const double QuantileLow = 0.02425;
    private static readonly double[] A = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00];
    private static readonly double[] B = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01];
    private static readonly double[] C = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00];
    private static readonly double[] D = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00];


    public static double LogPdf(double z) => -0.5 * z * z - LogSqrt2Pi;

    /// <summary>Φ(z) = erfc(−z/√2)/2, with erfc from a Chebyshev fit (Numerical Recipes' erfcc, relative error below 1.2e-7).</summary>
    public static double Cdf(double z) => 0.5 * Erfc(-z / Math.Sqrt(2));

    /// <summary>log(Φ(b) − Φ(a)) computed on the side where both tails are small, so a window far out in a tail keeps its precision.</summary>
    public static double LogMass(double a, double b)
    {
        if (b - a < 1e-3)
        {
            // A narrow window: Φ(b) − Φ(a) would cancel; the midpoint rule is exact to O((b − a)³).
            return LogPdf(0.5 * (a + b)) + Math.Log(b - a);
        }

        double mass = a > 0 ? Cdf(-a) - Cdf(-b) : Cdf(b) - Cdf(a);
        return Math.Log(Math.Max(mass, 1e-300));
    }

    public static double LogSumExp(double[] terms)
    {
        double max = terms.Max();
        if (double.IsNegativeInfinity(max))
        {
            return max;
        }

        double sum = 0;
        foreach (double t in terms)
        {
            sum += Math.Exp(t - max);
        }

        return max + Math.Log(sum);
    }

    /// <summary>Inverse-CDF sampling of N(mu, sigma²) truncated to [low, high], flipped to the lower tail for precision.</summary>
    public static double SampleTruncated(Random random, double mu, double sigma, double low, double high)
    {
        double a = (low - mu) / sigma;
        double b = (high - mu) / sigma;
        bool flip = a > 0;
        if (flip)
        {
            (a, b) = (-b, -a);
        }

        double pa = Cdf(a);
        double pb = Cdf(b);
        double z = pb - pa < 1e-300
            ? a + (b - a) * random.NextDouble()
            : Quantile(pa + (pb - pa) * random.NextDouble());
        z = Math.Clamp(z, a, b);
        if (flip)
        {
            z = -z;
        }

        return Math.Clamp(mu + sigma * z, low, high);
    }

    public static double Erfc(double x)
    {
        double z = Math.Abs(x);
        double t = 1.0 / (1.0 + 0.5 * z);
        double r = t * Math.Exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
            + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? r : 2.0 - r;
    }

    /// <summary>Φ⁻¹(p) by Acklam's rational approximation (relative error below 1.2e-9).</summary>
    public static double Quantile(double p)
    {
        if (p <= 0)
        {
            return double.NegativeInfinity;
        }

        if (p >= 1)
        {
            return double.PositiveInfinity;
        }

        if (p < QuantileLow)
        {
            double q = Math.Sqrt(-2 * Math.Log(p));
            return (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1);
        }

        if (p > 1 - QuantileLow)
        {
            double q = Math.Sqrt(-2 * Math.Log(1 - p));
            return -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1);
        }

        double r = p - 0.5;
        double s = r * r;
        return (((((A[0] * s + A[1]) * s + A[2]) * s + A[3]) * s + A[4]) * s + A[5]) * r / (((((B[0] * s + B[1]) * s + B[2]) * s + B[3]) * s + B[4]) * s + 1);
    }
}
