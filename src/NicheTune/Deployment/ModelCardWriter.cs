using System.Globalization;
using System.Text;
using static TorchSharp.torch;

namespace NicheTune.Deployment;

/// <summary>Writes <c>model-card.md</c>: every section is present, and a missing one says so rather than disappearing.</summary>
internal static class ModelCardWriter
{
    public static string Write(ModelPackageManifest manifest, ModelPackageOptions options, nn.Module model)
    {
        ModelCard card = options.Card;
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"# {manifest.Name} (version {manifest.Version})\n\n");
        if (card.Description is { Length: > 0 } description)
        {
            text.Append(description.Trim()).Append("\n\n");
        }

        long parameters = model.named_parameters().Where(p => !ModelPackage.IsLoRAName(p.name)).Sum(p => p.parameter.numel());
        text.Append("## Model\n\n");
        text.Append(CultureInfo.InvariantCulture, $"- Kind: {manifest.Kind} ({manifest.Objective})\n");
        text.Append(CultureInfo.InvariantCulture, $"- Architecture: {manifest.Architecture}{(manifest.BodyArchitecture is { } body ? $" on a {body} body" : string.Empty)}, {parameters:N0} parameters, stored as {manifest.Dtype}\n");
        text.Append(CultureInfo.InvariantCulture, $"- LoRA: {manifest.LoRA}\n");
        text.Append(CultureInfo.InvariantCulture, $"- Tokenizer: {manifest.Tokenizer}; inputs are truncated to {manifest.MaxLength} tokens\n");
        if (!manifest.Labels.IsDefaultOrEmpty)
        {
            text.Append(CultureInfo.InvariantCulture, $"- Labels ({manifest.Labels.Length}, in id order): {string.Join(", ", manifest.Labels)}\n");
        }

        if (manifest.PromptTemplate is { } template)
        {
            text.Append(CultureInfo.InvariantCulture, $"- Prompt template (each label is scored after it): `{template.Replace("\n", "\\n", StringComparison.Ordinal)}`\n");
        }

        text.Append(CultureInfo.InvariantCulture, $"- Written by NicheTune {manifest.NicheTuneVersion} on {manifest.CreatedUtc:yyyy-MM-dd}\n\n");

        text.Append("## Training data\n\n").Append(card.TrainingData?.Trim() ?? "Not described by the exporter.").Append("\n\n");

        text.Append("## Hyper-parameters\n\n");
        if (card.HyperParameters.IsEmpty)
        {
            text.Append("Not recorded by the exporter.\n\n");
        }
        else
        {
            text.Append("| name | value |\n| --- | --- |\n");
            foreach ((string name, string value) in card.HyperParameters)
            {
                text.Append(CultureInfo.InvariantCulture, $"| {name} | {value} |\n");
            }

            text.Append('\n');
        }

        text.Append("## Evaluation\n\n");
        var overall = new SortedDictionary<string, double>(StringComparer.Ordinal);
        if (options.Result is { } result)
        {
            foreach ((string name, double value) in result.FinalMetrics)
            {
                overall[name] = value;
            }

            text.Append(CultureInfo.InvariantCulture, $"Training: {result.Steps} steps, stopped by {result.StopReason}, {result.WallTime.TotalSeconds:F1} s.\n\n");
        }

        foreach ((string name, double value) in options.Evaluation)
        {
            overall[name] = value;
        }

        if (overall.Count == 0 && card.SliceMetrics.IsEmpty)
        {
            text.Append("No evaluation results were given to the exporter.\n\n");
        }

        if (overall.Count > 0)
        {
            text.Append("| metric | value |\n| --- | ---: |\n");
            foreach ((string name, double value) in overall)
            {
                text.Append(CultureInfo.InvariantCulture, $"| {name} | {value:G4} |\n");
            }

            text.Append('\n');
        }

        if (!card.SliceMetrics.IsEmpty)
        {
            string[] metrics = [.. card.SliceMetrics.Values.SelectMany(m => m.Keys).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
            text.Append("Metrics per slice:\n\n| slice | ").Append(string.Join(" | ", metrics)).Append(" |\n| --- |").Append(string.Concat(metrics.Select(_ => " ---: |"))).Append('\n');
            foreach ((string slice, var values) in card.SliceMetrics)
            {
                text.Append(CultureInfo.InvariantCulture, $"| {slice} |");
                foreach (string metric in metrics)
                {
                    text.Append(values.TryGetValue(metric, out double v) ? string.Create(CultureInfo.InvariantCulture, $" {v:G4} |") : " – |");
                }

                text.Append('\n');
            }

            text.Append('\n');
        }

        text.Append("## Bias checks\n\n");
        if (card.BiasChecks.IsDefaultOrEmpty)
        {
            text.Append("None were run before export. Check the model's behaviour across the groups it will meet before relying on it.\n\n");
        }
        else
        {
            foreach (string finding in card.BiasChecks)
            {
                text.Append("- ").Append(finding.Trim()).Append('\n');
            }

            text.Append('\n');
        }

        text.Append("## Intended use\n\n").Append(card.IntendedUse?.Trim() ?? "Not stated by the exporter.").Append("\n\n");
        text.Append("## Limitations\n\n").Append(card.Limitations?.Trim() ?? "Not stated by the exporter.").Append("\n\n");
        text.Append("## Integrity\n\n");
        text.Append("`package.json` lists the SHA-256 of every file; `NicheModel.Load` refuses the folder if any file is missing or changed.\n");
        return text.ToString();
    }
}
