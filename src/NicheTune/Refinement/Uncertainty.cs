namespace NicheTune.Refinement;

/// <summary>
/// How unsure a classifier is about one input, from its class probabilities: the quantity active learning ranks the
/// unlabelled pool by. Higher means more uncertain. Built-ins come from <see cref="Uncertainty"/>; a class of your own
/// plugs into <see cref="UncertaintySampler"/> the same way.
/// </summary>
public interface IUncertaintyMeasure
{
    /// <summary>A short name for reports, e.g. <c>"entropy"</c>.</summary>
    string Name { get; }

    /// <summary>The uncertainty of one prediction; higher is more uncertain, ideally in [0, 1] so it mixes with the diversity term.</summary>
    /// <param name="probabilities">Class probabilities (non-negative, summing to 1), at least two.</param>
    /// <returns>The score.</returns>
    double Score(ReadOnlySpan<float> probabilities);
}

/// <summary>
/// The classic uncertainty-sampling measures (Settles, <i>Active Learning Literature Survey</i>, 2009, §3.1), each in [0, 1]
/// with 0 for a one-hot prediction.
/// </summary>
public static class Uncertainty
{
    /// <summary>Least confidence: 1 − max<sub>c</sub> p(c). Looks only at the top class.</summary>
    /// <returns>The measure.</returns>
    public static IUncertaintyMeasure LeastConfidence() => LeastConfidenceMeasure.Instance;

    /// <summary>
    /// Margin: 1 − (p<sub>(1)</sub> − p<sub>(2)</sub>), one minus the gap between the two most probable classes. High when the
    /// model hesitates between two classes, whatever the rest.
    /// </summary>
    /// <returns>The measure.</returns>
    public static IUncertaintyMeasure Margin() => MarginMeasure.Instance;

    /// <summary>
    /// Entropy: −Σ p(c) ln p(c) / ln C, normalised by its maximum so that a uniform prediction scores 1. Uses the whole
    /// distribution.
    /// </summary>
    /// <returns>The measure.</returns>
    public static IUncertaintyMeasure Entropy() => EntropyMeasure.Instance;

    private sealed class LeastConfidenceMeasure : IUncertaintyMeasure
    {
        public static readonly LeastConfidenceMeasure Instance = new();

        public string Name => "least confidence";

        public double Score(ReadOnlySpan<float> probabilities)
        {
            float top = 0;
            foreach (float p in probabilities)
            {
                top = Math.Max(top, p);
            }

            return 1.0 - top;
        }
    }

    private sealed class MarginMeasure : IUncertaintyMeasure
    {
        public static readonly MarginMeasure Instance = new();

        public string Name => "margin";

        public double Score(ReadOnlySpan<float> probabilities)
        {
            float first = float.NegativeInfinity, second = float.NegativeInfinity;
            foreach (float p in probabilities)
            {
                if (p > first)
                {
                    second = first;
                    first = p;
                }
                else if (p > second)
                {
                    second = p;
                }
            }

            return probabilities.Length < 2 ? 0.0 : 1.0 - (first - (double)second);
        }
    }

    private sealed class EntropyMeasure : IUncertaintyMeasure
    {
        public static readonly EntropyMeasure Instance = new();

        public string Name => "entropy";

        public double Score(ReadOnlySpan<float> probabilities)
        {
            if (probabilities.Length < 2)
            {
                return 0.0;
            }

            double entropy = 0;
            foreach (float p in probabilities)
            {
                if (p > 0)
                {
                    entropy -= p * Math.Log(p);
                }
            }

            return entropy / Math.Log(probabilities.Length);
        }
    }
}
