using System.Globalization;
using NicheTune.Training;

namespace NicheTune.Tuning;

/// <summary>Connects a fine-tuning run to a <see cref="Trial"/>: <c>FineTuner.For(model)….WithTrial(trial).Fit(…)</c>.</summary>
public static class TrialFineTunerExtensions
{
    /// <summary>
    /// Reports <paramref name="metric"/> to <paramref name="trial"/> after every validation evaluation (step = optimizer
    /// step) and stops training when the study's pruner says so; the study then records the trial as pruned even though
    /// the objective returns normally. Needs validation data and an evaluation interval (<c>EvaluateEvery</c>) to prune
    /// before the end.
    /// </summary>
    /// <typeparam name="TBatch">The batch type.</typeparam>
    /// <param name="builder">The builder.</param>
    /// <param name="trial">The running trial.</param>
    /// <param name="metric">The validation metric reported, in the study's direction.</param>
    /// <returns>The builder.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="builder"/> or <paramref name="trial"/> is <see langword="null"/>.</exception>
    public static FineTunerBuilder<TBatch> WithTrial<TBatch>(this FineTunerBuilder<TBatch> builder, Trial trial, string metric = "validation.loss")
        where TBatch : ITrainingBatch
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(trial);
        ArgumentException.ThrowIfNullOrWhiteSpace(metric);
        return builder.WithCallback(new TrialReportingCallback(trial, metric));
    }
}

/// <summary>The training callback behind <see cref="TrialFineTunerExtensions.WithTrial"/>.</summary>
internal sealed class TrialReportingCallback(Trial trial, string metric) : ITrainingCallback
{
    public void OnEvaluationEnd(in EvaluationEndArguments args)
    {
        if (!args.Metrics.TryGetValue(metric, out double value))
        {
            throw new InvalidOperationException(
                $"WithTrial reports '{metric}', but the evaluation produced only {string.Join(", ", args.Metrics.Keys.Select(k => $"'{k}'"))}; pass one of those as the metric.");
        }

        trial.Report(args.Step, value);
        if (!args.Control.IsStopRequested && trial.ShouldPrune())
        {
            trial.MarkPruned(args.Step);
            args.Control.RequestStop(string.Create(CultureInfo.InvariantCulture, $"trial {trial.Number} pruned at step {args.Step} ({metric} = {value:G6})"));
        }
    }
}
