using System.Diagnostics;
using NicheTune.Training;

namespace NicheTune.Benchmarks.Workload;

/// <summary>
/// Marks the end of each training step: the time, and how much CPU the whole machine and this process had used, so that
/// a step during which other processes took CPU from the training (a shared build machine) can be recognised. Both sides
/// mark the same instant: the raw loop after its step's scope, the Trainer from <c>OnStepEnd</c>. A step's duration is
/// the gap to the previous mark, so the first step (which also allocates the optimizer state) is never timed.
/// </summary>
internal sealed class StepRecorder : ITrainingCallback, IDisposable
{
    // A step counts as disturbed when other processes used more than this share of the machine's CPUs during it.
    public const double DisturbedShare = 0.05;

    private readonly long[] _timestamps;
    private readonly long[] _machineBusy;
    private readonly long[] _ownCpu;
    private readonly long[] _allocated;
    private readonly long[] _faults;
    private readonly MachineCpu _machine = new();

    public StepRecorder(int capacity)
    {
        _timestamps = new long[capacity];
        _machineBusy = new long[capacity];
        _ownCpu = new long[capacity];
        _allocated = new long[capacity];
        _faults = new long[capacity];
    }

    public int Count { get; private set; }

    public void OnStepEnd(in StepEndArguments args) => Mark();

    public void Mark()
    {
        if (Count == _timestamps.Length)
        {
            return;
        }

        _timestamps[Count] = Stopwatch.GetTimestamp();
        _machineBusy[Count] = _machine.BusyTicks();
        _ownCpu[Count] = Environment.CpuUsage.TotalTime.Ticks;
        _allocated[Count] = GC.GetTotalAllocatedBytes(precise: true);
        _faults[Count] = Guard.ProcessMemory.PageFaults();
        Count++;
    }

    public void Reset() => Count = 0;

    /// <summary>Steps 2…n: duration and the share of the machine's CPU that other processes used meanwhile.</summary>
    public StepSample[] Samples()
    {
        var samples = new StepSample[Math.Max(0, Count - 1)];
        for (int i = 1; i < Count; i++)
        {
            TimeSpan wall = Stopwatch.GetElapsedTime(_timestamps[i - 1], _timestamps[i]);
            double foreign = double.NaN;
            if (_machine.IsSupported)
            {
                TimeSpan machine = TimeSpan.FromSeconds((_machineBusy[i] - _machineBusy[i - 1]) / (double)MachineCpu.TicksPerSecond);
                TimeSpan own = TimeSpan.FromTicks(_ownCpu[i] - _ownCpu[i - 1]);
                foreign = Math.Max(0, (machine - own).TotalSeconds) / (wall.TotalSeconds * Environment.ProcessorCount);
            }

            samples[i - 1] = new StepSample(wall.TotalMilliseconds, foreign, _allocated[i] - _allocated[i - 1], _faults[i] - _faults[i - 1]);
        }

        return samples;
    }

    public void Dispose() => _machine.Dispose();
}

/// <param name="Milliseconds">The step's wall time.</param>
/// <param name="ForeignShare">CPU used by other processes during the step, as a share of all CPUs (NaN where unknown).</param>
/// <param name="AllocatedBytes">Managed bytes the whole process allocated during the step (all threads).</param>
/// <param name="PageFaults">Page faults of the process during the step (minor + major).</param>
internal readonly record struct StepSample(double Milliseconds, double ForeignShare, long AllocatedBytes, long PageFaults = 0)
{
    public bool Disturbed => ForeignShare > StepRecorder.DisturbedShare;
}

/// <summary>The machine's busy CPU time from the first line of <c>/proc/stat</c>, read without allocating.</summary>
internal sealed class MachineCpu : IDisposable
{
    // USER_HZ: the unit of /proc/stat on every Linux architecture .NET runs on.
    public const long TicksPerSecond = 100;

    private readonly FileStream? _stat;
    private readonly byte[] _buffer = new byte[512];

    public MachineCpu()
    {
        try
        {
            _stat = new FileStream("/proc/stat", FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    public bool IsSupported => _stat is not null;

    /// <summary>user + nice + system + irq + softirq + steal, summed over all CPUs, in <see cref="TicksPerSecond"/> units.</summary>
    public long BusyTicks()
    {
        if (_stat is null)
        {
            return 0;
        }

        _stat.Position = 0;
        int length = _stat.Read(_buffer, 0, _buffer.Length);
        // "cpu  user nice system idle iowait irq softirq steal guest guest_nice"
        long busy = 0;
        int field = -1;
        long value = 0;
        bool inNumber = false;
        for (int i = 0; i < length && _buffer[i] != (byte)'\n'; i++)
        {
            byte c = _buffer[i];
            if (c is >= (byte)'0' and <= (byte)'9')
            {
                value = value * 10 + (c - '0');
                inNumber = true;
            }
            else if (inNumber)
            {
                field++;
                busy += field is 3 or 4 ? 0 : field < 8 ? value : 0;
                value = 0;
                inNumber = false;
            }
        }

        if (inNumber)
        {
            field++;
            busy += field is 3 or 4 ? 0 : field < 8 ? value : 0;
        }

        return busy;
    }

    public void Dispose() => _stat?.Dispose();
}
