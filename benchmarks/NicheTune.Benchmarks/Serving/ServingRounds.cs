using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using NicheTune.Benchmarks.Guard;
using NicheTune.Benchmarks.Workload;
using NicheTune.Deployment;
using NicheTune.Models;
using NicheTune.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Benchmarks.Serving;

/// <summary>
/// <c>dotnet run -c Release -- serving [--rounds N] [--input queries|sentences|both]</c>: micro-batching against one by one
/// under 16 concurrent callers, the two modes interleaved in rounds (A B, then B A, …) so that a machine that slows down
/// or speeds up mid-run (a shared 2-core machine does) weighs on both alike. Before the served rounds it measures the
/// ceiling: the bare forward pass, one caller, no queue — 16 texts one per forward against the same 16 in one forward
/// (padded, and split by length as the server splits them). Reports medians over rounds, the median of the per-round
/// speed-ups, p50/p99 request latency, the load average and the CPU share other processes took.
/// </summary>
internal static class ServingRounds
{
    public static int Run(string[] args)
    {
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        int rounds = 8;
        string input = "both";
        for (int i = 0; i < args.Length; i += 2)
        {
            string value = i + 1 < args.Length ? args[i + 1] : "";
            bool ok = args[i] switch
            {
                "--rounds" => int.TryParse(value, out rounds) && rounds > 0,
                "--input" when value is "queries" or "sentences" or "both" => (input = value).Length > 0,
                _ => false,
            };
            if (!ok)
            {
                Console.Error.WriteLine($"serving: cannot use '{string.Join(' ', args[i..Math.Min(i + 2, args.Length)])}'; the options are --rounds N (positive) and --input queries|sentences|both.");
                return 64;
            }
        }

        TorchBackend.EnsureAvailable();
        // As NicheModel.Load does, before the ceiling's bare forward passes, so both parts run under the same allocator.
        bool retained = NicheTune.Training.NativeAllocator.RetainFreedMemory();
        Console.WriteLine($"NicheTune serving rounds: {ServingWorkload.Describe()}; {Environment.ProcessorCount} processors; {rounds} rounds; freed memory retained: {(retained ? "yes (NICHETUNE_RETAIN_FREED_MEMORY=1)" : "no")}; load average {LoadAverage()}");
        using ServingWorkload workload = ServingWorkload.Create();
        string[] inputs = input == "both" ? ["queries", "sentences"] : [input];
        foreach (string name in inputs)
        {
            Ceiling(name, rounds);
            Served(workload, name, rounds);
        }

        Console.WriteLine($"load average at the end {LoadAverage()}");
        return 0;
    }

    private static void Ceiling(string input, int rounds)
    {
        string[] texts = ServingWorkload.Texts(input);
        var tokenizer = new ByteTokenizer();
        int[][] traffic = [.. Enumerable.Range(0, ServingWorkload.Callers).Select(c => tokenizer.Encode(texts[c % texts.Length]))];
        torch.manual_seed(1);
        using var model = ServingWorkload.CreateClassifier();
        model.eval();
        using var noGrad = torch.no_grad();
        var arms = new (string Name, Action Run)[]
        {
            ("one text per forward", () =>
            {
                foreach (int[] ids in traffic)
                {
                    Forward(model, [ids]);
                }
            }),
            ("16 in one padded forward", () => Forward(model, traffic)),
        };
        Dictionary<string, List<double>> times = Interleave(arms, rounds, warmUp: 2);
        double baseline = Statistics.Median(times[arms[0].Name]);
        Console.WriteLine($"ceiling ({input}, bare forward, one caller, lengths {string.Join(",", traffic.Select(t => t.Length).Distinct())}):");
        foreach ((string name, _) in arms)
        {
            double median = Statistics.Median(times[name]);
            Console.WriteLine($"  {name,-28} {median / traffic.Length,7:F3} ms per text (median of {rounds}), {baseline / median:F2}x");
        }
    }

    private static void Served(ServingWorkload workload, string input, int rounds)
    {
        string[] texts = ServingWorkload.Texts(input);
        var arms = new (string Name, NicheModel Model)[] { ("one by one", workload.Load(microBatched: false)), ("micro-batched", workload.Load(microBatched: true)) };
        try
        {
            var latencies = arms.ToDictionary(a => a.Name, _ => new ConcurrentBag<double>());
            var foreign = new List<double>();
            using var machine = new MachineCpu();
            Dictionary<string, List<double>> times = Interleave(
                [.. arms.Select(a => (a.Name, (Action)(() => ServingWorkload.Run(a.Model, texts, latencies[a.Name]).GetAwaiter().GetResult())))],
                rounds, warmUp: 1, machine, foreign);
            double baseline = Statistics.Median(times[arms[0].Name]);
            double[] perRound = [.. times[arms[0].Name].Zip(times[arms[1].Name], (a, b) => a / b)];
            Console.WriteLine($"served ({input}, {ServingWorkload.Callers} callers x {ServingWorkload.PerCaller} requests, other processes {Statistics.Median(foreign):P0} of the CPUs (median pass)):");
            foreach ((string name, NicheModel model) in arms)
            {
                double median = Statistics.Median(times[name]) / ServingWorkload.Predictions;
                Console.WriteLine($"  {name,-14} {median,7:F3} ms per prediction ({1000 / median,6:F0}/s; median of {rounds}), {baseline / Statistics.Median(times[name]):F2}x; " +
                    $"latency p50 {ServingWorkload.Percentile(latencies[name], 0.5):F1} ms, p99 {ServingWorkload.Percentile(latencies[name], 0.99):F1} ms; " +
                    $"{model.RequestCount} requests in {model.BatchCount} forward passes");
            }

            Console.WriteLine($"  speed-up per round: median {Statistics.Median(perRound):F2}x, range {perRound.Min():F2}-{perRound.Max():F2}x");
        }
        finally
        {
            foreach ((_, NicheModel model) in arms)
            {
                model.Dispose();
            }
        }
    }

    // Rounds alternate the order of the arms (ABAB… then BABA…); the first warmUp rounds are not kept.
    private static Dictionary<string, List<double>> Interleave((string Name, Action Run)[] arms, int rounds, int warmUp, MachineCpu? machine = null, List<double>? foreign = null)
    {
        var times = arms.ToDictionary(a => a.Name, _ => new List<double>());
        for (int round = 0; round < warmUp + rounds; round++)
        {
            for (int k = 0; k < arms.Length; k++)
            {
                var arm = arms[round % 2 == 0 ? k : arms.Length - 1 - k];
                long busy = machine?.BusyTicks() ?? 0;
                TimeSpan cpu = Environment.CpuUsage.TotalTime;
                long started = Stopwatch.GetTimestamp();
                arm.Run();
                TimeSpan wall = Stopwatch.GetElapsedTime(started);
                if (round < warmUp)
                {
                    continue;
                }

                times[arm.Name].Add(wall.TotalMilliseconds);
                if (machine is { IsSupported: true } && foreign is not null)
                {
                    double machineSeconds = (machine.BusyTicks() - busy) / (double)MachineCpu.TicksPerSecond;
                    double own = (Environment.CpuUsage.TotalTime - cpu).TotalSeconds;
                    foreign.Add(Math.Max(0, machineSeconds - own) / (wall.TotalSeconds * Environment.ProcessorCount));
                }
            }
        }

        return times;
    }

    private static void Forward(MeanPoolClassifier model, int[][] rows)
    {
        using var scope = torch.NewDisposeScope();
        int width = rows.Max(r => r.Length);
        var ids = new long[rows.Length * width];
        var mask = new long[rows.Length * width];
        for (int r = 0; r < rows.Length; r++)
        {
            for (int t = 0; t < rows[r].Length; t++)
            {
                ids[(r * width) + t] = rows[r][t];
                mask[(r * width) + t] = 1;
            }
        }

        model.call(torch.tensor(ids, [rows.Length, width]), torch.tensor(mask, [rows.Length, width]));
    }

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";
}
