using Microsoft.Extensions.Logging;
using NicheTune.Evaluation;
using NicheTune.Monitoring;
using NicheTune.Text;

namespace NicheTune.Tests.Monitoring;

/// <summary>The code of docs/monitoring.md (between the DOC markers), compiled here and run by <see cref="MonitoringDocTests"/>.</summary>
public static class MonitoringDocExample
{
    public static (DriftReport Report, List<DriftAlert> Alerts) Watch(
        IReadOnlyList<string> domainTexts, IReadOnlyList<string> validationTexts, IEnumerable<string> productionTexts, string folder, ILogger<ModelMonitor>? logger)
    {
        // DOC-BEGIN
        // Input statistics by hand: tokens and perplexity under a cheap reference LM fitted on other domain text.
        var tokenizer = new ByteTokenizer();
        var referenceLm = new NGramLanguageModel(order: 3, ByteTokenizer.VocabularySize).Fit(domainTexts.Select(tokenizer.Encode));
        MonitorObservation Measure(string text)
        {
            int[] ids = tokenizer.Encode(text);
            return new MonitorObservation { InputLength = ids.Length, UnknownTokenRate = 0, InputPerplexity = referenceLm.Perplexity([ids]) };
        }

        // At export: capture what normal traffic looks like and ship it with the model.
        string path = Path.Combine(folder, "monitor-reference.json");
        MonitorReference.Capture(validationTexts.Select(Measure)).Save(path);

        // In production (a NicheModel calls IPredictionObserver.Observe for every request; here we observe by hand).
        using var monitor = new ModelMonitor(
            MonitorReference.Load(path),
            new ModelMonitorOptions { Name = "foldoc", WindowSize = 500, EvaluateEvery = 50 },
            logger);
        var alerts = new List<DriftAlert>();
        monitor.Alert += (_, alert) => alerts.Add(alert);
        foreach (string text in productionTexts)
        {
            monitor.Observe(Measure(text));
        }

        DriftReport report = monitor.Evaluate();
        string table = report.ToMarkdown();
        // DOC-END
        return (report, alerts);
    }
}
