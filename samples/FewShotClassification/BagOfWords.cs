// Classical baselines on word counts, fitted on the same few labelled examples as the neural methods: multinomial naive
// Bayes (Laplace smoothing) and multinomial logistic regression (L2-regularised, full-batch gradient descent on
// L2-normalised binary bag-of-words features). Small on purpose: they are the bar the neural methods have to clear.
using System.Text.RegularExpressions;

namespace NicheTune.Samples;

/// <summary>Lower-cased word tokens: runs of letters and digits.</summary>
internal static partial class Words
{
    /// <summary>The text's words, lower-cased, in order.</summary>
    public static IEnumerable<string> Of(string text) => WordRegex().Matches(text).Select(m => m.Value.ToLowerInvariant());

    [GeneratedRegex(@"[\p{L}\p{N}]+", RegexOptions.CultureInvariant)]
    private static partial Regex WordRegex();
}

/// <summary>Multinomial naive Bayes over word counts with add-α (Laplace) smoothing.</summary>
internal sealed class NaiveBayes
{
    private readonly double[] _logPrior;
    private readonly Dictionary<string, double[]> _logLikelihood;
    private readonly double[] _unseen;

    /// <summary>Fits the class priors and per-class word distributions.</summary>
    /// <exception cref="ArgumentException">No texts, a label out of range, or α ≤ 0.</exception>
    public NaiveBayes(IReadOnlyList<string> texts, IReadOnlyList<int> labels, int classCount, double alpha = 1.0)
    {
        if (texts.Count == 0 || texts.Count != labels.Count || classCount < 2 || !(alpha > 0))
        {
            throw new ArgumentException($"Naive Bayes needs texts with one label each (got {texts.Count} texts, {labels.Count} labels), at least two classes (got {classCount}) and α > 0 (got {alpha}).", nameof(texts));
        }

        var counts = new Dictionary<string, double[]>(StringComparer.Ordinal);
        var totals = new double[classCount];
        var documents = new double[classCount];
        for (int i = 0; i < texts.Count; i++)
        {
            int c = labels[i] is int l && l >= 0 && l < classCount ? l : throw new ArgumentException($"Label {labels[i]} of text {i} is outside 0..{classCount - 1}.", nameof(labels));
            documents[c]++;
            foreach (string word in Words.Of(texts[i]))
            {
                if (!counts.TryGetValue(word, out double[]? row))
                {
                    counts[word] = row = new double[classCount];
                }

                row[c]++;
                totals[c]++;
            }
        }

        int vocabulary = counts.Count;
        _logPrior = [.. documents.Select(d => Math.Log((d + 1) / (texts.Count + classCount)))];
        _unseen = [.. totals.Select(t => Math.Log(alpha / (t + alpha * vocabulary)))];
        _logLikelihood = counts.ToDictionary(
            kv => kv.Key,
            kv => kv.Value.Select((n, c) => Math.Log((n + alpha) / (totals[c] + alpha * vocabulary))).ToArray(),
            StringComparer.Ordinal);
    }

    /// <summary>The most probable class; words never seen in training are skipped (they carry no evidence).</summary>
    public int Predict(string text)
    {
        double[] score = [.. _logPrior];
        foreach (string word in Words.Of(text))
        {
            if (_logLikelihood.TryGetValue(word, out double[]? row))
            {
                for (int c = 0; c < score.Length; c++)
                {
                    score[c] += row[c];
                }
            }
        }

        return ArgMax(score);
    }

    internal static int ArgMax(double[] values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }
}

/// <summary>Multinomial logistic regression on L2-normalised binary bag-of-words features, L2-regularised.</summary>
internal sealed class LogisticRegression
{
    private readonly Dictionary<string, int> _vocabulary;
    private readonly double[,] _weights;
    private readonly double[] _bias;

    /// <summary>Fits by full-batch gradient descent on the mean cross-entropy plus λ/2·‖W‖².</summary>
    /// <exception cref="ArgumentException">No texts or mismatched labels.</exception>
    public LogisticRegression(IReadOnlyList<string> texts, IReadOnlyList<int> labels, int classCount, double l2 = 1e-3, double learningRate = 2.0, int iterations = 500)
    {
        if (texts.Count == 0 || texts.Count != labels.Count || classCount < 2)
        {
            throw new ArgumentException($"Logistic regression needs texts with one label each (got {texts.Count} texts, {labels.Count} labels) and at least two classes (got {classCount}).", nameof(texts));
        }

        _vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (string word in texts.SelectMany(Words.Of))
        {
            _vocabulary.TryAdd(word, _vocabulary.Count);
        }

        (int Feature, double Value)[][] features = [.. texts.Select(Featurize)];
        _weights = new double[classCount, _vocabulary.Count];
        _bias = new double[classCount];
        var gradient = new double[classCount, _vocabulary.Count];
        var biasGradient = new double[classCount];
        var probabilities = new double[classCount];
        for (int iteration = 0; iteration < iterations; iteration++)
        {
            Array.Clear(gradient);
            Array.Clear(biasGradient);
            for (int i = 0; i < features.Length; i++)
            {
                Probabilities(features[i], probabilities);
                probabilities[labels[i]] -= 1;
                for (int c = 0; c < classCount; c++)
                {
                    biasGradient[c] += probabilities[c] / features.Length;
                    foreach ((int f, double v) in features[i])
                    {
                        gradient[c, f] += probabilities[c] * v / features.Length;
                    }
                }
            }

            for (int c = 0; c < classCount; c++)
            {
                _bias[c] -= learningRate * biasGradient[c];
                for (int f = 0; f < _vocabulary.Count; f++)
                {
                    _weights[c, f] -= learningRate * (gradient[c, f] + l2 * _weights[c, f]);
                }
            }
        }
    }

    /// <summary>The most probable class.</summary>
    public int Predict(string text) => NaiveBayes.ArgMax(Probabilities(text));

    /// <summary>Every class's probability (softmax of the linear scores); words never seen in training are skipped.</summary>
    public double[] Probabilities(string text)
    {
        var probabilities = new double[_bias.Length];
        Probabilities(Featurize(text), probabilities);
        return probabilities;
    }

    private (int Feature, double Value)[] Featurize(string text)
    {
        int[] present = [.. Words.Of(text).Select(w => _vocabulary.TryGetValue(w, out int f) ? f : -1).Where(f => f >= 0).Distinct()];
        double value = present.Length == 0 ? 0 : 1 / Math.Sqrt(present.Length);
        return [.. present.Select(f => (f, value))];
    }

    private void Probabilities((int Feature, double Value)[] features, double[] into)
    {
        double max = double.NegativeInfinity;
        for (int c = 0; c < into.Length; c++)
        {
            double z = _bias[c];
            foreach ((int f, double v) in features)
            {
                z += _weights[c, f] * v;
            }

            into[c] = z;
            max = Math.Max(max, z);
        }

        double sum = 0;
        for (int c = 0; c < into.Length; c++)
        {
            into[c] = Math.Exp(into[c] - max);
            sum += into[c];
        }

        for (int c = 0; c < into.Length; c++)
        {
            into[c] /= sum;
        }
    }
}
