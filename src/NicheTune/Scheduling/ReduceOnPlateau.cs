using System.Globalization;
using System.Text;
using System.Text.Json;
using NicheTune.Training;

namespace NicheTune.Scheduling;

// torch.optim.lr_scheduler.ReduceLROnPlateau, one call of step(metric) per Observe, as a multiplier λ (starts at 1):
//   better(a) = a < best · (1 − threshold)   (min, rel)   | a < best − threshold (min, abs)
//             = a > best · (1 + threshold)   (max, rel)   | a > best + threshold (max, abs);   best starts at ±∞.
//   if better(a): best = a, bad = 0 else bad += 1
//   if cooldown_left > 0: cooldown_left −= 1, bad = 0
//   if bad > patience: λ' = max(λ · factor, min); if λ − λ' > eps: λ = λ'; cooldown_left = cooldown; bad = 0
// torch applies eps (1e-8) to the learning rate itself; here it applies to the multiplier.
internal sealed class ReduceOnPlateauSchedule : IMetricDrivenSchedule
{
    private const double Eps = 1e-8;
    private const string Kind = "reduce_on_plateau";
    private const int FormatVersion = 1;

    private readonly double _factor;
    private readonly int _patience;
    private readonly double _threshold;
    private readonly ThresholdMode _thresholdMode;
    private readonly bool _lowerIsBetter;
    private readonly int _cooldown;
    private readonly double _minFactor;

    private double _multiplier;
    private double _best;
    private int _badEvaluations;
    private int _cooldownLeft;
    private long _observations;

    public ReduceOnPlateauSchedule(string metric, double factor, int patience, double threshold, ThresholdMode thresholdMode, MetricMode mode, int cooldown, double minFactor)
    {
        Metric = metric;
        _factor = factor;
        _patience = patience;
        _threshold = threshold;
        _thresholdMode = thresholdMode;
        _lowerIsBetter = mode switch
        {
            MetricMode.Min => true,
            MetricMode.Max => false,
            _ => LowerIsBetterByName(metric),
        };
        _cooldown = cooldown;
        _minFactor = minFactor;
        Reset();
    }

    public string Metric { get; }

    internal bool LowerIsBetter => _lowerIsBetter;

    public double Multiplier(long step, long totalSteps) => _multiplier;

    public void Observe(long step, long totalSteps, double value)
    {
        _observations++;
        if (IsBetter(value))
        {
            _best = value;
            _badEvaluations = 0;
        }
        else
        {
            _badEvaluations++;
        }

        if (_cooldownLeft > 0)
        {
            _cooldownLeft--;
            _badEvaluations = 0;
        }

        if (_badEvaluations > _patience)
        {
            double reduced = Math.Max(_multiplier * _factor, _minFactor);
            if (_multiplier - reduced > Eps)
            {
                _multiplier = reduced;
            }

            _cooldownLeft = _cooldown;
            _badEvaluations = 0;
        }
    }

    public void Reset()
    {
        _multiplier = 1.0;
        _best = _lowerIsBetter ? double.PositiveInfinity : double.NegativeInfinity;
        _badEvaluations = 0;
        _cooldownLeft = 0;
        _observations = 0;
    }

    public string SaveState()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("schedule", Kind);
            json.WriteNumber("version", FormatVersion);
            json.WriteString("metric", Metric);
            WriteDouble(json, "multiplier", _multiplier);
            WriteDouble(json, "best", _best);
            json.WriteNumber("bad_evaluations", _badEvaluations);
            json.WriteNumber("cooldown_left", _cooldownLeft);
            json.WriteNumber("observations", _observations);
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    public void LoadState(string state)
    {
        ArgumentNullException.ThrowIfNull(state);
        try
        {
            using JsonDocument document = JsonDocument.Parse(state);
            JsonElement root = document.RootElement;
            string? kind = root.GetProperty("schedule").GetString();
            if (kind != Kind)
            {
                throw new ArgumentException($"The state was saved by a '{kind}' schedule, not by reduce-on-plateau; load it into the schedule that saved it.", nameof(state));
            }

            int version = root.GetProperty("version").GetInt32();
            if (version != FormatVersion)
            {
                throw new ArgumentException($"The reduce-on-plateau state has format version {version}; this version of NicheTune reads version {FormatVersion}.", nameof(state));
            }

            string? metric = root.GetProperty("metric").GetString();
            if (!string.Equals(metric, Metric, StringComparison.Ordinal))
            {
                throw new ArgumentException($"The reduce-on-plateau state follows metric '{metric}', but this schedule follows '{Metric}'; resume with the metric the run was started with.", nameof(state));
            }

            double multiplier = ReadDouble(root, "multiplier");
            double best = ReadDouble(root, "best");
            int bad = root.GetProperty("bad_evaluations").GetInt32();
            int cooldownLeft = root.GetProperty("cooldown_left").GetInt32();
            long observations = root.GetProperty("observations").GetInt64();
            if (!(multiplier > 0.0 && multiplier <= 1.0) || bad < 0 || cooldownLeft < 0 || observations < 0)
            {
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"The reduce-on-plateau state is out of range (multiplier {multiplier}, bad evaluations {bad}, cooldown left {cooldownLeft}, observations {observations}); the checkpoint is damaged."), nameof(state));
            }

            _multiplier = multiplier;
            _best = best;
            _badEvaluations = bad;
            _cooldownLeft = cooldownLeft;
            _observations = observations;
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new ArgumentException($"The text is not a reduce-on-plateau state saved by SaveState ({ex.Message}); pass the text SaveState returned.", nameof(state), ex);
        }
    }

    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"reduce on plateau of {Metric} ({(_lowerIsBetter ? "min" : "max")}, ×{_factor} after {_patience} evaluation(s) without improvement)");

    // Loss-like metrics go down; every other metric (accuracy, F1, …) is taken to go up.
    internal static bool LowerIsBetterByName(string metric)
        => metric.Contains("loss", StringComparison.OrdinalIgnoreCase)
        || metric.Contains("perplexity", StringComparison.OrdinalIgnoreCase)
        || metric.Contains("error", StringComparison.OrdinalIgnoreCase);

    private static void WriteDouble(Utf8JsonWriter json, string name, double value)
    {
        if (double.IsFinite(value))
        {
            json.WriteNumber(name, value);
        }
        else
        {
            json.WriteString(name, value.ToString(CultureInfo.InvariantCulture));
        }
    }

    private static double ReadDouble(JsonElement root, string name)
    {
        JsonElement element = root.GetProperty(name);
        return element.ValueKind == JsonValueKind.String
            ? double.Parse(element.GetString()!, NumberStyles.Float, CultureInfo.InvariantCulture)
            : element.GetDouble();
    }

    private bool IsBetter(double value) => (_lowerIsBetter, _thresholdMode) switch
    {
        (true, ThresholdMode.Relative) => value < _best * (1.0 - _threshold),
        (true, _) => value < _best - _threshold,
        (false, ThresholdMode.Relative) => value > _best * (1.0 + _threshold),
        (false, _) => value > _best + _threshold,
    };
}
