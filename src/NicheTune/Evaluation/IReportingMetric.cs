namespace NicheTune.Evaluation;

/// <summary>
/// A metric that, besides its one number, keeps a structured result worth reading (a confusion matrix, a reliability
/// diagram). Keep a reference to the metric you pass to an evaluation and call <see cref="Report"/> after it.
/// </summary>
/// <typeparam name="TReport">The type of the detailed result.</typeparam>
public interface IReportingMetric<out TReport> : IMetric
{
    /// <summary>The detailed result over every batch since <see cref="IMetric.Reset"/>; reads the accumulated tensors once.</summary>
    /// <returns>The report.</returns>
    /// <exception cref="InvalidOperationException">Nothing was accumulated since the last reset.</exception>
    TReport Report();
}
