using System.Globalization;
using System.Text.RegularExpressions;
using NicheTune.Freezing;
using NicheTune.Scheduling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NicheTune.Regularization;

internal sealed class DropoutOverride(double rate, string[] patterns) : IRegularizer
{
    private readonly Regex[] _patterns = [.. patterns.Select(Glob.ToRegex)];

    public string Name => "dropout";

    public IEnumerable<string> Validate(LayerMap map) => [];

    public void OnTrainingStart(RegularizationContext context)
    {
        int changed = 0;
        foreach ((string name, nn.Module module) in context.Model.named_modules())
        {
            if (module is Dropout dropout && (_patterns.Length == 0 || _patterns.Any(p => p.IsMatch(name))))
            {
                dropout.p = rate;
                changed++;
            }
        }

        if (changed == 0)
        {
            throw new InvalidOperationException(_patterns.Length == 0
                ? "Regularize(r => r.Dropout(...)) found no Dropout module in the model; the model applies dropout some other way (or not at all)."
                : $"Regularize(r => r.Dropout(..., {string.Join(", ", patterns.Select(p => $"'{p}'"))})) matched no Dropout module; check the module names with model.named_modules().");
        }
    }
}

internal sealed class L2SPRegularizer(double alpha, string[] exceptPatterns) : IRegularizer
{
    private readonly Regex[] _except = [.. exceptPatterns.Select(Glob.ToRegex)];
    private readonly Dictionary<string, Tensor> _start = new(StringComparer.Ordinal);
    private Parameter[] _parameters = [];
    private Tensor[] _anchors = [];
    private Tensor[] _parts = [];
    private int _trainableCount = -1;

    public string Name => "l2sp";

    public IEnumerable<string> Validate(LayerMap map)
    {
        foreach (string pattern in exceptPatterns)
        {
            Regex regex = Glob.ToRegex(pattern);
            if (!map.ParameterNames.Any(regex.IsMatch))
            {
                yield return $"L2-SP exception '{pattern}' matched no parameter; closest names: {Glob.Closest(map.ParameterNames, pattern)}.";
            }
        }
    }

    public void OnTrainingStart(RegularizationContext context)
    {
        // w₀: every parameter that is not excepted, including frozen ones that gradual unfreezing will release later.
        using var noGrad = torch.no_grad();
        Release();
        foreach ((string name, Parameter parameter) in context.Model.named_parameters())
        {
            if (!_except.Any(p => p.IsMatch(name)))
            {
                _start[name] = parameter.detach().clone().DetachFromDisposeScope();
            }
        }
    }

    public Tensor? Penalty(RegularizationContext context)
    {
        IReadOnlyList<(string Name, Parameter Parameter)> trainable = context.TrainableParameters;
        if (trainable.Count != _trainableCount)
        {
            Rebind(trainable);
        }

        if (_parameters.Length == 0)
        {
            return null;
        }

        // Σ‖w − w₀‖² as one reduction on the device: no host round trip per parameter.
        for (int i = 0; i < _parameters.Length; i++)
        {
            _parts[i] = (_parameters[i] - _anchors[i]).pow(Scalars.Two).sum();
        }

        using Scalar half = (alpha / 2).ToScalar();
        Tensor penalty = torch.stack(_parts).sum().mul(half);
        Array.Clear(_parts);
        return penalty;
    }

    private void Rebind(IReadOnlyList<(string Name, Parameter Parameter)> trainable)
    {
        var parameters = new List<Parameter>();
        var anchors = new List<Tensor>();
        foreach ((string name, Parameter parameter) in trainable)
        {
            if (_start.TryGetValue(name, out Tensor? anchor))
            {
                parameters.Add(parameter);
                anchors.Add(anchor);
            }
        }

        _parameters = [.. parameters];
        _anchors = [.. anchors];
        _parts = new Tensor[_parameters.Length];
        _trainableCount = trainable.Count;
    }

    public void SaveState(IDictionary<string, Tensor> tensors, IDictionary<string, double> scalars)
    {
        foreach ((string name, Tensor anchor) in _start)
        {
            tensors[name] = anchor;
        }
    }

    public void LoadState(IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, double> scalars)
    {
        using var noGrad = torch.no_grad();
        foreach ((string name, Tensor saved) in tensors)
        {
            if (_start.TryGetValue(name, out Tensor? anchor))
            {
                anchor.copy_(saved);
            }
        }
    }

    public bool OnTrainingEnd(RegularizationContext context)
    {
        Release();
        return false;
    }

    // A run that ended in an exception never reached OnTrainingEnd: the next start releases what it left.
    private void Release()
    {
        foreach (Tensor anchor in _start.Values)
        {
            anchor.Dispose();
        }

        _start.Clear();
        _parameters = [];
        _anchors = [];
        _trainableCount = -1;
    }
}

/// <summary>Shared machinery of EMA and SWA: a float copy of every parameter, updated in place after steps.</summary>
internal abstract class WeightAverager : IRegularizer
{
    private readonly Dictionary<string, Tensor> _average = new(StringComparer.Ordinal);
    private (Parameter Parameter, Tensor Average)[] _pairs = [];

    public abstract string Name { get; }

    protected long Updates { get; set; }

    public void OnTrainingStart(RegularizationContext context)
    {
        using var noGrad = torch.no_grad();
        Dispose();
        var pairs = new List<(Parameter, Tensor)>();
        foreach ((string name, Parameter parameter) in context.Model.named_parameters())
        {
            Tensor average = parameter.detach().clone().DetachFromDisposeScope();
            _average[name] = average;
            pairs.Add((parameter, average));
        }

        _pairs = [.. pairs];
        Updates = 0;
        Started(context);
    }

    protected virtual void Started(RegularizationContext context)
    {
    }

    public virtual ILearningRateSchedule AdjustSchedule(ILearningRateSchedule schedule) => schedule;

    public void OnOptimizerStep(RegularizationContext context, long step, long totalSteps)
    {
        if (!ShouldUpdate(step, totalSteps))
        {
            return;
        }

        Updates++;
        double weight = NewWeight();
        using var noGrad = torch.no_grad();
        for (int i = 0; i < _pairs.Length; i++)
        {
            // avg ← avg + w·(p − avg): w = 1 − decay for EMA, 1/n for SWA's running mean.
            _pairs[i].Average.lerp_(_pairs[i].Parameter, weight);
        }
    }

    protected abstract bool ShouldUpdate(long step, long totalSteps);

    protected abstract double NewWeight();

    public bool OnTrainingEnd(RegularizationContext context)
    {
        if (Updates == 0)
        {
            Dispose();
            return false;
        }

        using (torch.no_grad())
        {
            foreach ((Parameter parameter, Tensor average) in _pairs)
            {
                parameter.copy_(average);
            }
        }

        Dispose();
        AfterSwap(context);
        return true;
    }

    protected virtual void AfterSwap(RegularizationContext context)
    {
    }

    public void SaveState(IDictionary<string, Tensor> tensors, IDictionary<string, double> scalars)
    {
        foreach ((string name, Tensor average) in _average)
        {
            tensors[name] = average;
        }

        scalars["updates"] = Updates;
    }

    public void LoadState(IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, double> scalars)
    {
        using var noGrad = torch.no_grad();
        foreach ((string name, Tensor saved) in tensors)
        {
            if (_average.TryGetValue(name, out Tensor? average))
            {
                average.copy_(saved);
            }
        }

        Updates = scalars.TryGetValue("updates", out double updates) ? (long)updates : 0;
    }

    private void Dispose()
    {
        foreach (Tensor average in _average.Values)
        {
            average.Dispose();
        }

        _average.Clear();
        _pairs = [];
    }
}

internal sealed class EmaRegularizer(double decay, int everySteps) : WeightAverager
{
    public override string Name => "ema";

    protected override bool ShouldUpdate(long step, long totalSteps) => step % everySteps == 0;

    protected override double NewWeight() => 1 - decay;
}

internal sealed class SwaRegularizer(double startFraction, int? startEpoch, int everySteps, double? learningRateFactor, int annealSteps) : WeightAverager
{
    private long _stepsPerEpoch;

    public override string Name => "swa";

    // The first step that is averaged: ⌈fraction · total⌉, or the first step of the start epoch.
    public long StartStep(long totalSteps) => startEpoch is { } epoch
        ? Math.Max(1, epoch * _stepsPerEpoch + 1)
        : Math.Max(1, (long)Math.Ceiling(startFraction * totalSteps));

    protected override void Started(RegularizationContext context) => _stepsPerEpoch = context.StepsPerEpoch;

    protected override bool ShouldUpdate(long step, long totalSteps)
    {
        long start = StartStep(totalSteps);
        return step >= start && (step - start) % everySteps == 0;
    }

    // Running equal-weight mean: the n-th snapshot enters with weight 1/n (the first replaces the initial copy).
    protected override double NewWeight() => 1.0 / Updates;

    public override ILearningRateSchedule AdjustSchedule(ILearningRateSchedule schedule)
        => learningRateFactor is { } factor ? new SwaSchedule(schedule, this, factor, annealSteps) : schedule;

    protected override void AfterSwap(RegularizationContext context)
    {
        // The averaged weights never produced the running statistics batch norm holds: recompute them over the
        // training data with a cumulative average (momentum = null), as torch.optim.swa_utils.update_bn does.
        var norms = context.Model.modules().OfType<NormBase>().Where(m => m is BatchNorm1d or BatchNorm2d or BatchNorm3d).ToList();
        if (norms.Count == 0)
        {
            return;
        }

        var momenta = norms.Select(n => n.momentum).ToList();
        foreach (NormBase norm in norms)
        {
            norm.reset_running_stats();
            norm.momentum = null;
        }

        context.ForwardTrainingData(0);
        for (int i = 0; i < norms.Count; i++)
        {
            norms[i].momentum = momenta[i];
        }
    }

    public override string ToString() => startEpoch is { } epoch
        ? string.Create(CultureInfo.InvariantCulture, $"SWA from epoch {epoch}, every {everySteps} step(s)")
        : string.Create(CultureInfo.InvariantCulture, $"SWA from {startFraction:P0}, every {everySteps} step(s)");
}

/// <summary>The plan's schedule until SWA starts, then a cosine anneal to the constant SWA factor (torch's SWALR, anneal_strategy="cos").</summary>
internal sealed class SwaSchedule(ILearningRateSchedule inner, SwaRegularizer swa, double factor, int annealSteps) : ILearningRateSchedule
{
    public double Multiplier(long step, long totalSteps)
    {
        // `step` is the 0-based step about to be taken. As in torch's recipe, the first snapshot (after 1-based step
        // `start`) is taken at the plan's rate, and the steps after it run at the annealed SWA rate.
        long start = swa.StartStep(totalSteps);
        if (step < start)
        {
            return inner.Multiplier(step, totalSteps);
        }

        long into = step - start;
        if (annealSteps == 0 || into >= annealSteps)
        {
            return factor;
        }

        double from = inner.Multiplier(start, totalSteps);
        double t = (into + 1) / (double)annealSteps;
        double alpha = (1 - Math.Cos(Math.PI * t)) / 2;
        return from * (1 - alpha) + factor * alpha;
    }

    public IEnumerable<string> Validate(long? totalSteps) => inner.Validate(totalSteps);
}
