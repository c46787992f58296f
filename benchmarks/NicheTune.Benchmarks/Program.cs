using BenchmarkDotNet.Running;
using NicheTune.Benchmarks.Guard;

if (args.Length > 0 && args[0] == "guard")
{
    return GuardRunner.Run(args[1..]);
}

var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;
