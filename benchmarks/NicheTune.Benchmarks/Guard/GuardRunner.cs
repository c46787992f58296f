using System.Globalization;
using TorchSharp;

namespace NicheTune.Benchmarks.Guard;

/// <summary>
/// <c>dotnet run -c Release -- guard [--rounds N] [--max-rounds N] [--steps S] [--rss-steps N] [--only overhead|rss|freeze|speed|bf16-quality|sweep|anatomy] [--verbose]</c>: the hot loop's
/// limits from DESIGN.md. Exit code 0 when the Trainer's step is within 3 % of the raw step and RSS grows under 3 %;
/// bit 1 set for the overhead, bit 2 for RSS, bit 4 for the freezing step ratios, bit 8 for the fp32 speed targets, bit 16 for
/// the bf16 speed target, bit 32 for the bf16 quality check. The last two lines are always <c>rss growth: X.X%</c> and
/// <c>trainer overhead ratio: X.XXX</c> (n/a for a part not run) so that scripts can read them.
/// </summary>
internal static class GuardRunner
{
    public const double MaxOverheadRatio = 1.03;
    public const double MaxRssGrowthPercent = 3.0;

    public static int Run(string[] args)
    {
        if (args.Length is 6 or 8 && args[0] == "--child" && args[2] == "--steps" && args[4] == "--out" && args[1] is "naive" or "nichetune" or "nichetune-bf16")
        {
            TorchBackend.EnsureAvailable();
            Workload.ModelShape? shape = null;
            if (args.Length == 8 && args[6] == "--shape")
            {
                int[] v = [.. args[7].Split(',').Select(x => int.Parse(x, CultureInfo.InvariantCulture))];
                shape = Workload.ModelShape.Benchmark with { VocabularySize = v[0], ContextLength = v[1], BatchSize = v[2] };
            }

            return SpeedGuard.Child(args[1], int.Parse(args[3], CultureInfo.InvariantCulture), args[5], shape);
        }

        CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        int rounds = 4;
        int maxRounds = 8;
        // The freezing and speed guards have their own defaults (3 × 5 and 2 × 50); with --only freeze or --only speed, --rounds and
        // --steps given on the command line override them.
        bool roundsGiven = false, stepsGiven = false;
        int steps = 5;
        int rssSteps = 2000;
        string only = "all";
        bool verbose = false;
        for (int i = 0; i < args.Length; i++)
        {
            string value = i + 1 < args.Length ? args[i + 1] : "";
            bool ok = args[i] switch
            {
                "--rounds" => roundsGiven = Positive(value, out rounds),
                "--max-rounds" => Positive(value, out maxRounds),
                "--steps" => stepsGiven = Positive(value, out steps),
                "--rss-steps" => Positive(value, out rssSteps),
                "--only" when value is "overhead" or "rss" or "freeze" or "speed" or "bf16-quality" or "sweep" or "anatomy" => (only = value) is not null,
                "--verbose" => verbose = true,
                _ => false,
            };
            if (!ok)
            {
                Console.Error.WriteLine(
                    $"guard: cannot use '{string.Join(' ', args[i..Math.Min(i + 2, args.Length)])}'; the options are --rounds N, --max-rounds N, --steps S, " +
                    "--rss-steps N (positive integers), --only overhead|rss|freeze|speed|bf16-quality|sweep|anatomy and --verbose.");
                return 64;
            }

            if (args[i] != "--verbose")
            {
                i++;
            }
        }

        if (rssSteps < 10 * 50)
        {
            Console.Error.WriteLine($"guard: --rss-steps {rssSteps} is too few: RSS is compared between step N/10 and step N, sampled every 50 steps; use at least 500.");
            return 64;
        }

        TorchBackend.EnsureAvailable();
        TextWriter output = Console.Out;
        bool bf16Supported = NicheTune.Training.MixedPrecision.IsSupported(NicheTune.Training.Precision.BFloat16, torch.CPU, out string bf16Reason);
        output.WriteLine($"NicheTune hot-loop guard: torch threads {torch.get_num_threads()}, {Environment.ProcessorCount} processors, .NET {Environment.Version}; bf16: {(bf16Supported ? "yes" : "no")} ({bf16Reason})");
        if (only == "sweep")
        {
            SpeedGuard.Sweep(Math.Max(steps, 4), output, bf16Supported);
            return 0;
        }

        if (only == "anatomy")
        {
            StepAnatomy.Run(steps, output);
            return 0;
        }

        // RSS first, in a fresh process: after the benchmark model's gigabyte-sized steps the allocator keeps freed memory
        // around, which would inflate the baseline and hide growth.
        double? growth = only is "all" or "rss" ? RssGuard.Run(rssSteps, verbose, output) : null;
        double? ratio = only is "all" or "overhead" ? OverheadGuard.Run(rounds, maxRounds, steps, verbose, output) : null;
        (double FrozenBottom, double HeadOnly, double WideFrozenBottom)? freeze = only is "all" or "freeze" ? FreezeGuard.Run(rounds: roundsGiven && only == "freeze" ? rounds : 3, steps: stepsGiven && only == "freeze" ? steps : 5, output) : null;
        (double Speedup, double PeakRatio, double LossDifference, double? Bf16Speedup)? speed = only is "all" or "speed" ? SpeedGuard.Run(rounds: roundsGiven && only == "speed" ? rounds : 2, steps: stepsGiven && only == "speed" ? steps : 50, output, bf16: bf16Supported) : null;
        (double Fp32Loss, double Bf16Loss)? bf16Quality = (only is "all" or "bf16-quality") && bf16Supported ? Bf16QualityGuard.Run(steps: 300, output) : null;

        int exit = 0;
        if (freeze is { } f)
        {
            if (!(f.FrozenBottom <= FreezeGuard.FrozenBottomLimit) || !(f.HeadOnly <= FreezeGuard.HeadOnlyLimit) || !(f.WideFrozenBottom <= FreezeGuard.WideFrozenBottomLimit))
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"FAIL: freezing must bring the step to ≤ {FreezeGuard.FrozenBottomLimit:F2} (bottom), ≤ {FreezeGuard.HeadOnlyLimit:F2} (head only) and ≤ {FreezeGuard.WideFrozenBottomLimit:F2} (wide, bottom) of the full step."));
                exit |= 4;
            }
        }

        if (speed is { } sp && (!(sp.Speedup >= SpeedGuard.MinSpeedup) || !(sp.PeakRatio <= SpeedGuard.MaxPeakRatio) || !(sp.LossDifference <= SpeedGuard.MaxLossDifference)))
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"FAIL: NicheTune's step must be ≥ {SpeedGuard.MinSpeedup:F2}x the naive step's tokens/s with ≤ {SpeedGuard.MaxPeakRatio:F2}x its peak memory and losses within {SpeedGuard.MaxLossDifference:E0} relative."));
            exit |= 8;
        }

        if (speed is { Bf16Speedup: { } lowSpeedup } && !(lowSpeedup >= SpeedGuard.MinBf16Speedup))
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"FAIL: the bf16 step must be ≥ {SpeedGuard.MinBf16Speedup:F2}x the naive step's tokens/s."));
            exit |= 16;
        }

        if (bf16Quality is { } q && !(Math.Abs(q.Bf16Loss - q.Fp32Loss) / q.Fp32Loss <= Bf16QualityGuard.MaxRelativeDifference))
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"FAIL: after 300 steps the bf16 validation loss must be within {Bf16QualityGuard.MaxRelativeDifference:P0} of fp32's."));
            exit |= 32;
        }

        if (ratio is { } r && !(r <= MaxOverheadRatio))
        {
            output.WriteLine($"FAIL: the Trainer's step takes {r:F3}x the raw TorchSharp step; the limit is {MaxOverheadRatio:F2}x.");
            exit |= 1;
        }

        if (growth is { } g && !(g < MaxRssGrowthPercent))
        {
            output.WriteLine($"FAIL: RSS grew {g:F1}% over the run; the limit is {MaxRssGrowthPercent:F0}%.");
            exit |= 2;
        }

        if (exit == 0)
        {
            output.WriteLine("PASS");
        }

        if (freeze is { } ff)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"frozen-bottom step ratio: {ff.FrozenBottom:F2}"));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"head-only step ratio: {ff.HeadOnly:F2}"));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"frozen-bottom step ratio (wide): {ff.WideFrozenBottom:F2}"));
        }

        if (speed is { } spd)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"speedup vs naive: {spd.Speedup:F2}"));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"peak memory vs naive: {spd.PeakRatio:F2}"));
            output.WriteLine(spd.Bf16Speedup is { } b ? string.Create(CultureInfo.InvariantCulture, $"bf16 speedup vs naive: {b:F2}") : "bf16 speedup vs naive: n/a (no bf16 on this CPU)");
        }

        if (bf16Quality is { } bq)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"bf16 validation loss vs fp32: {(bq.Bf16Loss - bq.Fp32Loss) / bq.Fp32Loss:+0.00%;-0.00%}"));
        }

        output.WriteLine(growth is { } gg ? $"rss growth: {gg:F1}%" : "rss growth: n/a");
        output.WriteLine(ratio is { } rr ? $"trainer overhead ratio: {rr:F3}" : "trainer overhead ratio: n/a");
        return exit;
    }

    private static bool Positive(string value, out int number) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out number) && number > 0;
}
