using System.Globalization;
using System.Text;

namespace NicheTune.Evaluation;

/// <summary>
/// A confusion matrix and everything derived from it: accuracy, per-class precision / recall / F1 / support, their
/// macro, micro and weighted averages, and the most confused class pairs. Follows scikit-learn's
/// <c>classification_report</c> conventions: a class never predicted has precision 0 and a class never targeted has
/// recall 0 (<c>zero_division=0</c>); averages include only the classes present in the targets or the predictions.
/// </summary>
public sealed class ClassificationReport
{
    private readonly long[] _matrix;
    private readonly ClassCounts _counts;

    internal ClassificationReport(long[] matrix, int classCount, IReadOnlyList<string>? classNames)
    {
        if (classNames is not null && classNames.Count != classCount)
        {
            throw new ArgumentException($"{classNames.Count} class names were given for {classCount} classes; pass one name per class or none.", nameof(classNames));
        }

        _matrix = matrix;
        ClassCount = classCount;
        ClassNames = classNames is null ? null : [.. classNames];
        _counts = ClassCounts.FromMatrix(matrix, classCount);
        var classes = new ClassScores[classCount];
        for (int c = 0; c < classCount; c++)
        {
            classes[c] = new ClassScores(c, ClassName(c), _counts.Precision(c), _counts.Recall(c), _counts.F1(c), _counts.Support[c], _counts.Predicted[c]);
        }

        Classes = classes;
        long correct = 0;
        for (int c = 0; c < classCount; c++)
        {
            correct += matrix[(c * classCount) + c];
        }

        Total = _counts.Total;
        Accuracy = Total == 0 ? double.NaN : correct / (double)Total;
    }

    /// <summary>Number of classes (rows and columns of the matrix).</summary>
    public int ClassCount { get; }

    /// <summary>Display names of the classes, or <see langword="null"/> when the classes are shown by index.</summary>
    public IReadOnlyList<string>? ClassNames { get; }

    /// <summary>Number of counted (target, prediction) pairs; ignored targets are not counted.</summary>
    public long Total { get; }

    /// <summary>Share of pairs on the diagonal; <see cref="double.NaN"/> when nothing was counted.</summary>
    public double Accuracy { get; }

    /// <summary>Precision, recall, F1, support and prediction count of every class, by class index.</summary>
    public IReadOnlyList<ClassScores> Classes { get; }

    /// <summary>Builds the report from a confusion matrix whose rows are targets and columns predictions (scikit-learn's layout).</summary>
    /// <param name="matrix">A square matrix of non-negative counts.</param>
    /// <param name="classNames">One display name per class, or <see langword="null"/>.</param>
    /// <returns>The report.</returns>
    /// <exception cref="ArgumentException">The matrix is not square, is empty, holds a negative count, or the names do not match it.</exception>
    public static ClassificationReport FromConfusionMatrix(long[,] matrix, IReadOnlyList<string>? classNames = null)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        int n = matrix.GetLength(0);
        if (n == 0 || matrix.GetLength(1) != n)
        {
            throw new ArgumentException($"A confusion matrix must be square and non-empty; got {matrix.GetLength(0)} × {matrix.GetLength(1)}.", nameof(matrix));
        }

        var flat = new long[n * n];
        for (int t = 0; t < n; t++)
        {
            for (int p = 0; p < n; p++)
            {
                if (matrix[t, p] < 0)
                {
                    throw new ArgumentException($"Confusion matrix entry [{t}, {p}] is {matrix[t, p]}; counts cannot be negative.", nameof(matrix));
                }

                flat[(t * n) + p] = matrix[t, p];
            }
        }

        return new ClassificationReport(flat, n, classNames);
    }

    /// <summary>
    /// Builds the report from class indices computed on the host, e.g. labels parsed from generated text
    /// (scikit-learn's <c>classification_report(y_true, y_pred)</c>).
    /// </summary>
    /// <param name="targets">True class per example.</param>
    /// <param name="predictions">Predicted class per example, same length as <paramref name="targets"/>.</param>
    /// <param name="classCount">Number of classes; every index must lie in [0, classCount).</param>
    /// <param name="classNames">One display name per class, or <see langword="null"/>.</param>
    /// <returns>The report.</returns>
    /// <exception cref="ArgumentException">The lists differ in length or an index is out of range.</exception>
    public static ClassificationReport FromLabels(IReadOnlyList<int> targets, IReadOnlyList<int> predictions, int classCount, IReadOnlyList<string>? classNames = null)
    {
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(predictions);
        ArgumentOutOfRangeException.ThrowIfLessThan(classCount, 1);
        if (targets.Count != predictions.Count)
        {
            throw new ArgumentException($"There are {targets.Count} targets but {predictions.Count} predictions; pass one prediction per target.", nameof(predictions));
        }

        var flat = new long[classCount * classCount];
        for (int i = 0; i < targets.Count; i++)
        {
            int t = targets[i], p = predictions[i];
            if ((uint)t >= (uint)classCount || (uint)p >= (uint)classCount)
            {
                throw new ArgumentException($"Pair {i} is (target {t}, prediction {p}); class indices must lie in [0, {classCount}).", nameof(targets));
            }

            flat[(t * classCount) + p]++;
        }

        return new ClassificationReport(flat, classCount, classNames);
    }

    /// <summary>How many examples of class <paramref name="trueClass"/> were predicted as <paramref name="predictedClass"/>.</summary>
    /// <param name="trueClass">Row: the target class.</param>
    /// <param name="predictedClass">Column: the predicted class.</param>
    /// <returns>The count.</returns>
    /// <exception cref="ArgumentOutOfRangeException">An index is outside [0, <see cref="ClassCount"/>).</exception>
    public long Count(int trueClass, int predictedClass)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(trueClass);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(trueClass, ClassCount);
        ArgumentOutOfRangeException.ThrowIfNegative(predictedClass);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(predictedClass, ClassCount);
        return _matrix[(trueClass * ClassCount) + predictedClass];
    }

    /// <summary>A copy of the matrix: rows are targets, columns predictions.</summary>
    /// <returns>A new <see cref="ClassCount"/> × <see cref="ClassCount"/> array.</returns>
    public long[,] ToMatrix()
    {
        var copy = new long[ClassCount, ClassCount];
        for (int t = 0; t < ClassCount; t++)
        {
            for (int p = 0; p < ClassCount; p++)
            {
                copy[t, p] = _matrix[(t * ClassCount) + p];
            }
        }

        return copy;
    }

    /// <summary>Precision averaged over classes.</summary>
    /// <param name="average">How to combine classes.</param>
    /// <returns>The score; <see cref="double.NaN"/> when nothing was counted.</returns>
    public double Precision(Average average) => _counts.Score(ScoreKind.Precision, average);

    /// <summary>Recall averaged over classes.</summary>
    /// <param name="average">How to combine classes.</param>
    /// <returns>The score; <see cref="double.NaN"/> when nothing was counted.</returns>
    public double Recall(Average average) => _counts.Score(ScoreKind.Recall, average);

    /// <summary>F1 averaged over classes (macro F1 is the mean of per-class F1, not the F1 of the mean precision and recall).</summary>
    /// <param name="average">How to combine classes.</param>
    /// <returns>The score; <see cref="double.NaN"/> when nothing was counted.</returns>
    public double F1(Average average) => _counts.Score(ScoreKind.F1, average);

    /// <summary>The off-diagonal cells with the largest counts: which true class the model most often mistakes for which.</summary>
    /// <param name="count">How many pairs to return at most.</param>
    /// <returns>Pairs by descending count, then by true and predicted class index; zero cells are never returned.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative.</exception>
    public IReadOnlyList<ConfusedPair> MostConfusedPairs(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var pairs = new List<ConfusedPair>();
        for (int t = 0; t < ClassCount; t++)
        {
            for (int p = 0; p < ClassCount; p++)
            {
                long n = _matrix[(t * ClassCount) + p];
                if (t != p && n > 0)
                {
                    pairs.Add(new ConfusedPair(t, p, n, ClassName(t), ClassName(p)));
                }
            }
        }

        pairs.Sort(static (a, b) => b.Count != a.Count ? b.Count.CompareTo(a.Count)
            : a.TrueClass != b.TrueClass ? a.TrueClass.CompareTo(b.TrueClass)
            : a.PredictedClass.CompareTo(b.PredictedClass));
        return pairs.Count > count ? pairs.GetRange(0, count) : pairs;
    }

    /// <summary>The display name of a class: its name when names were given, else its index.</summary>
    /// <param name="index">The class index.</param>
    /// <returns>The name.</returns>
    public string ClassName(int index) => ClassNames is { } names ? names[index] : index.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// Markdown: the per-class table with macro and weighted averages (like scikit-learn's text report), the accuracy,
    /// and the confusion matrix when it has at most <paramref name="maxMatrixClasses"/> classes.
    /// </summary>
    /// <param name="maxMatrixClasses">Largest matrix to print.</param>
    /// <param name="maxClassRows">Most per-class rows; beyond it only the classes with the largest support are listed (token vocabularies).</param>
    /// <returns>The Markdown text.</returns>
    public string ToMarkdown(int maxMatrixClasses = 20, int maxClassRows = 100)
    {
        var sb = new StringBuilder();
        AppendClassTable(sb, maxClassRows);
        if (ClassCount <= maxMatrixClasses)
        {
            sb.AppendLine().AppendLine("Confusion matrix (rows: target, columns: prediction):").AppendLine();
            var header = new List<string> { "target \\ predicted" };
            header.AddRange(Enumerable.Range(0, ClassCount).Select(ClassName));
            var align = Enumerable.Repeat(true, ClassCount + 1).ToArray();
            align[0] = false;
            Markdown.Table(sb, header, align, Enumerable.Range(0, ClassCount).Select(t =>
                (IReadOnlyList<string>)[ClassName(t), .. Enumerable.Range(0, ClassCount).Select(p => Markdown.Integer(_matrix[(t * ClassCount) + p]))]));
        }

        return sb.ToString();
    }

    internal void AppendClassTable(StringBuilder sb, int maxClassRows)
    {
        ClassScores[] present = [.. Classes.Where(c => c.Support + c.Predicted > 0)];
        IEnumerable<ClassScores> shown = present.Length <= maxClassRows
            ? present
            : present.OrderByDescending(c => c.Support).ThenBy(c => c.Index).Take(Math.Max(0, maxClassRows)).OrderBy(c => c.Index);
        IEnumerable<IReadOnlyList<string>> rows = shown
            .Select(c => (IReadOnlyList<string>)[c.Name, Markdown.Number(c.Precision), Markdown.Number(c.Recall), Markdown.Number(c.F1), Markdown.Integer(c.Support)])
            .Append([
                "**macro avg**", Markdown.Number(Precision(Average.Macro)), Markdown.Number(Recall(Average.Macro)), Markdown.Number(F1(Average.Macro)), Markdown.Integer(Total)])
            .Append([
                "**weighted avg**", Markdown.Number(Precision(Average.Weighted)), Markdown.Number(Recall(Average.Weighted)), Markdown.Number(F1(Average.Weighted)), Markdown.Integer(Total)]);
        Markdown.Table(sb, ["class", "precision", "recall", "f1", "support"], [false, true, true, true, true], rows);
        if (present.Length > maxClassRows)
        {
            sb.AppendLine().Append("Listed: the ").Append(Markdown.Integer(Math.Max(0, maxClassRows))).Append(" classes with the most support of ")
                .Append(Markdown.Integer(present.Length)).AppendLine(" present; the averages cover all of them.");
        }

        sb.AppendLine().Append("Accuracy: ").Append(Markdown.Number(Accuracy)).Append(" over ").Append(Markdown.Integer(Total)).AppendLine(" targets.");
    }
}

/// <summary>The scores of one class in a <see cref="ClassificationReport"/>.</summary>
/// <param name="Index">The class index (output column).</param>
/// <param name="Name">The class's display name (its index when no names were given).</param>
/// <param name="Precision">True positives over predictions of the class; 0 when it was never predicted.</param>
/// <param name="Recall">True positives over targets of the class; 0 when it never occurs.</param>
/// <param name="F1">Harmonic mean of precision and recall, 2·TP / (predicted + support); 0 when both are 0.</param>
/// <param name="Support">Number of targets of the class.</param>
/// <param name="Predicted">Number of predictions of the class.</param>
public sealed record ClassScores(int Index, string Name, double Precision, double Recall, double F1, long Support, long Predicted);

/// <summary>An off-diagonal cell of a confusion matrix: examples of one class predicted as another.</summary>
/// <param name="TrueClass">The target class index.</param>
/// <param name="PredictedClass">The predicted class index.</param>
/// <param name="Count">How many examples.</param>
/// <param name="TrueName">Display name of the target class.</param>
/// <param name="PredictedName">Display name of the predicted class.</param>
public sealed record ConfusedPair(int TrueClass, int PredictedClass, long Count, string TrueName, string PredictedName);
