namespace NicheTune.Evaluation;

internal enum ScoreKind
{
    Precision,
    Recall,
    F1,
}

/// <summary>
/// Per-class true positives, predictions and support: everything precision, recall and F1 need. Follows scikit-learn:
/// a 0/0 score is 0 (<c>zero_division=0</c>), F1 is 2·TP / (predicted + support), and averages run over the classes
/// present in the targets or the predictions.
/// </summary>
internal sealed class ClassCounts
{
    public ClassCounts(long[] truePositives, long[] predicted, long[] support)
    {
        TruePositives = truePositives;
        Predicted = predicted;
        Support = support;
    }

    public long[] TruePositives { get; }

    public long[] Predicted { get; }

    public long[] Support { get; }

    public int ClassCount => Support.Length;

    public long Total => Sum(Support);

    public static ClassCounts FromMatrix(long[] matrix, int classes)
    {
        var tp = new long[classes];
        var predicted = new long[classes];
        var support = new long[classes];
        for (int t = 0; t < classes; t++)
        {
            for (int p = 0; p < classes; p++)
            {
                long n = matrix[(t * classes) + p];
                support[t] += n;
                predicted[p] += n;
            }

            tp[t] = matrix[(t * classes) + t];
        }

        return new ClassCounts(tp, predicted, support);
    }

    public bool IsPresent(int c) => Support[c] + Predicted[c] > 0;

    public double Precision(int c) => Ratio(TruePositives[c], Predicted[c]);

    public double Recall(int c) => Ratio(TruePositives[c], Support[c]);

    // 2PR / (P + R) simplified to 2·TP / (TP + FP + TP + FN); equal wherever both are defined and 0 where sklearn's zero_division=0 gives 0.
    public double F1(int c) => Ratio(2 * TruePositives[c], Predicted[c] + Support[c]);

    public double Score(ScoreKind kind, int c) => kind switch
    {
        ScoreKind.Precision => Precision(c),
        ScoreKind.Recall => Recall(c),
        _ => F1(c),
    };

    /// <returns>The averaged score; NaN when no class is present (nothing was counted).</returns>
    public double Score(ScoreKind kind, Average average)
    {
        switch (average)
        {
            case Average.Micro:
                long tp = Sum(TruePositives), predicted = Sum(Predicted), support = Sum(Support);
                if (predicted + support == 0)
                {
                    return double.NaN;
                }

                return kind switch
                {
                    ScoreKind.Precision => Ratio(tp, predicted),
                    ScoreKind.Recall => Ratio(tp, support),
                    _ => Ratio(2 * tp, predicted + support),
                };
            case Average.Weighted:
                long total = Total;
                if (total == 0)
                {
                    return double.NaN;
                }

                double weighted = 0;
                for (int c = 0; c < ClassCount; c++)
                {
                    weighted += Support[c] * Score(kind, c);
                }

                return weighted / total;
            default:
                double sum = 0;
                int present = 0;
                for (int c = 0; c < ClassCount; c++)
                {
                    if (IsPresent(c))
                    {
                        sum += Score(kind, c);
                        present++;
                    }
                }

                return present == 0 ? double.NaN : sum / present;
        }
    }

    private static double Ratio(long numerator, long denominator) => denominator == 0 ? 0.0 : numerator / (double)denominator;

    private static long Sum(long[] values)
    {
        long sum = 0;
        foreach (long v in values)
        {
            sum += v;
        }

        return sum;
    }
}
