using System.Diagnostics;
using NicheTune.Training;

namespace NicheTune.Benchmarks.Workload;

/// <summary>Records when each Trainer step ends; a step's duration is the gap to the previous step's end.</summary>
internal sealed class StepTimer(int capacity) : ITrainingCallback
{
    private readonly long[] _ends = new long[capacity];
    private int _count;

    public void OnStepEnd(in StepEndArguments args)
    {
        if (_count < _ends.Length)
        {
            _ends[_count++] = Stopwatch.GetTimestamp();
        }
    }

    public void Reset() => _count = 0;

    /// <summary>Durations of steps 2…n in milliseconds: the first step has no previous end (and pays for optimizer state).</summary>
    public double[] StepMilliseconds() => Gaps(_ends, _count);

    /// <summary>Gaps between consecutive timestamps, in milliseconds.</summary>
    public static double[] Gaps(long[] timestamps, int count)
    {
        var gaps = new double[Math.Max(0, count - 1)];
        for (int i = 1; i < count; i++)
        {
            gaps[i - 1] = Stopwatch.GetElapsedTime(timestamps[i - 1], timestamps[i]).TotalMilliseconds;
        }

        return gaps;
    }
}
