namespace NicheTune.Monitoring;

/// <summary>
/// Distances between two discrete distributions over the same bins, as used to compare a monitoring window with its
/// reference. Every method accepts counts or proportions (each side is normalised to sum to 1).
/// </summary>
/// <remarks>
/// PSI and KL use the natural logarithm and replace empty bins by a small proportion (<c>epsilon</c>), because an empty bin
/// would otherwise make them infinite; Jensen–Shannon uses base 2, needs no epsilon, and lies in [0, 1].
/// </remarks>
public static class Divergence
{
    /// <summary>The proportion an empty bin counts as in <see cref="PopulationStabilityIndex"/> and <see cref="KullbackLeibler"/>.</summary>
    public const double DefaultEpsilon = 1e-4;

    /// <summary>
    /// Population stability index: Σᵢ (aᵢ − eᵢ) · ln(aᵢ / eᵢ) over bins, with <c>e</c> the expected (reference) and <c>a</c> the
    /// actual (window) proportions. It is the symmetric KL divergence (KL(a‖e) + KL(e‖a)); a common reading is below 0.1
    /// stable, 0.1–0.25 a moderate shift, above 0.25 a significant shift.
    /// </summary>
    /// <param name="expected">Reference counts or proportions per bin.</param>
    /// <param name="actual">Window counts or proportions per bin (same length).</param>
    /// <param name="epsilon">Proportion used in place of an empty bin's.</param>
    /// <returns>The index (≥ 0).</returns>
    /// <exception cref="ArgumentException">The lengths differ, a value is negative or not finite, a side sums to 0, or <paramref name="epsilon"/> is not in (0, 1).</exception>
    public static double PopulationStabilityIndex(ReadOnlySpan<double> expected, ReadOnlySpan<double> actual, double epsilon = DefaultEpsilon)
    {
        Check(expected, actual, epsilon);
        double e = Sum(expected), a = Sum(actual), psi = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double p = Math.Max(expected[i] / e, epsilon), q = Math.Max(actual[i] / a, epsilon);
            psi += (q - p) * Math.Log(q / p);
        }

        return psi;
    }

    /// <summary>
    /// Kullback–Leibler divergence KL(P‖Q) = Σᵢ pᵢ · ln(pᵢ / qᵢ) in nats, with empty bins of <paramref name="q"/> counted as
    /// <paramref name="epsilon"/> (bins where pᵢ = 0 contribute nothing). The monitor reports KL(window‖reference).
    /// </summary>
    /// <param name="p">The distribution measured (counts or proportions).</param>
    /// <param name="q">The distribution it is compared with (same length).</param>
    /// <param name="epsilon">Proportion used in place of an empty bin of <paramref name="q"/>.</param>
    /// <returns>The divergence (≥ 0).</returns>
    /// <exception cref="ArgumentException">The lengths differ, a value is negative or not finite, a side sums to 0, or <paramref name="epsilon"/> is not in (0, 1).</exception>
    public static double KullbackLeibler(ReadOnlySpan<double> p, ReadOnlySpan<double> q, double epsilon = DefaultEpsilon)
    {
        Check(p, q, epsilon);
        double sp = Sum(p), sq = Sum(q), kl = 0;
        for (int i = 0; i < p.Length; i++)
        {
            double pi = p[i] / sp;
            if (pi > 0)
            {
                kl += pi * Math.Log(pi / Math.Max(q[i] / sq, epsilon));
            }
        }

        return kl;
    }

    /// <summary>
    /// Jensen–Shannon divergence in bits: ½ KL(P‖M) + ½ KL(Q‖M) with M = ½ (P + Q), logarithm base 2. Symmetric, finite
    /// without smoothing, 0 for equal distributions and 1 for distributions with disjoint support.
    /// </summary>
    /// <param name="p">One distribution (counts or proportions).</param>
    /// <param name="q">The other (same length).</param>
    /// <returns>The divergence in [0, 1].</returns>
    /// <exception cref="ArgumentException">The lengths differ, a value is negative or not finite, or a side sums to 0.</exception>
    public static double JensenShannon(ReadOnlySpan<double> p, ReadOnlySpan<double> q)
    {
        Check(p, q, DefaultEpsilon);
        double sp = Sum(p), sq = Sum(q), js = 0;
        for (int i = 0; i < p.Length; i++)
        {
            double pi = p[i] / sp, qi = q[i] / sq, m = (pi + qi) / 2;
            if (pi > 0)
            {
                js += 0.5 * pi * Math.Log2(pi / m);
            }

            if (qi > 0)
            {
                js += 0.5 * qi * Math.Log2(qi / m);
            }
        }

        return Math.Clamp(js, 0, 1);
    }

    private static double Sum(ReadOnlySpan<double> values)
    {
        double sum = 0;
        foreach (double v in values)
        {
            sum += v;
        }

        return sum;
    }

    private static void Check(ReadOnlySpan<double> first, ReadOnlySpan<double> second, double epsilon)
    {
        if (first.Length != second.Length || first.Length == 0)
        {
            throw new ArgumentException($"Both distributions need the same, non-zero number of bins; got {first.Length} and {second.Length}. Bin both with the same edges.", nameof(second));
        }

        if (!(epsilon > 0 && epsilon < 1))
        {
            throw new ArgumentException($"epsilon must be in (0, 1); got {epsilon}. Use a small proportion such as 1e-4.", nameof(epsilon));
        }

        CheckSide(first, nameof(first));
        CheckSide(second, nameof(second));
    }

    private static void CheckSide(ReadOnlySpan<double> values, string name)
    {
        double sum = 0;
        for (int i = 0; i < values.Length; i++)
        {
            if (!double.IsFinite(values[i]) || values[i] < 0)
            {
                throw new ArgumentException($"Bin {i} holds {values[i]}; counts and proportions must be finite and non-negative.", name);
            }

            sum += values[i];
        }

        if (sum <= 0)
        {
            throw new ArgumentException("A distribution sums to 0; it needs at least one observation.", name);
        }
    }
}
