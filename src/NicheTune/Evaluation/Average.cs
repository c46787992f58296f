namespace NicheTune.Evaluation;

/// <summary>
/// How per-class precision, recall or F1 are combined into one number, as scikit-learn's <c>average=</c> argument.
/// Only classes that occur among the targets or the predictions take part (scikit-learn's default label set,
/// <c>unique_labels(y_true, y_pred)</c>): a class the data never mentions does not drag a macro average down.
/// </summary>
public enum Average
{
    /// <summary>The unweighted mean of the per-class scores: every class counts the same, however rare (the usual choice for imbalanced niche labels).</summary>
    Macro,

    /// <summary>Computed from the pooled true-positive, false-positive and false-negative counts; for single-label data it equals accuracy.</summary>
    Micro,

    /// <summary>The mean of the per-class scores weighted by each class's support (number of targets).</summary>
    Weighted,
}
