using System.Runtime.InteropServices;

namespace NicheTune.Training;

/// <summary>
/// Opt-in (<c>NICHETUNE_RETAIN_FREED_MEMORY=1</c>): keeps glibc from handing large freed blocks back to the kernel. By
/// default glibc serves allocations above a (dynamically raised, at most 32 MiB) threshold with fresh <c>mmap</c>s and
/// unmaps them on free, and trims the heap's free top; a training step frees and re-allocates the same activation- and
/// gradient-sized blocks every step, so it pays a page fault for each 4 KiB page of them (benchmark model: about 70,000
/// faults a step in fp32, 130,000 with bf16 casts). A fixed 256 MiB mmap threshold and a 1 GiB trim threshold keep the
/// blocks in the heap: faults drop to about 14,000 a step — but over 50 steps of the benchmark model the heap fragmented
/// and peak RSS rose from 1.4 GB to 3.6 GB (docs/performance.md), so it is not the default. It suits long runs on
/// machines with memory to spare, and servers (<c>NicheModel.Load</c> applies it too): a micro-batched forward pass
/// re-faults its activations every batch, which on a VM with costly page faults halved batched throughput
/// (docs/deployment.md). glibc's own <c>MALLOC_MMAP_THRESHOLD_</c> / <c>MALLOC_TRIM_THRESHOLD_</c> settings are left
/// alone when present.
/// </summary>
internal static class NativeAllocator
{
    // mallopt parameters from glibc's malloc.h.
    private const int TrimThreshold = -1;
    private const int MmapThreshold = -3;

    private static readonly object Gate = new();
    private static bool? _applied;

    /// <summary>Whether the tuning is in effect for this process (after <see cref="RetainFreedMemory"/>).</summary>
    public static bool Applied => _applied == true;

    /// <summary>Applies the thresholds once; returns whether they are in effect.</summary>
    public static bool RetainFreedMemory()
    {
        lock (Gate)
        {
            _applied ??= Apply();
            return _applied.Value;
        }
    }

    private static bool Apply()
    {
        if (!OperatingSystem.IsLinux()
            || Environment.GetEnvironmentVariable("NICHETUNE_RETAIN_FREED_MEMORY") != "1"
            || Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") is not null
            || Environment.GetEnvironmentVariable("MALLOC_TRIM_THRESHOLD_") is not null)
        {
            return false;
        }

        try
        {
            // glibc caps the mmap threshold (at 32 MiB in older releases); take the largest it accepts.
            bool mmap = false;
            foreach (int megabytes in new[] { 256, 128, 64, 32 })
            {
                if (mallopt(MmapThreshold, megabytes << 20) == 1)
                {
                    mmap = true;
                    break;
                }
            }

            return mmap && mallopt(TrimThreshold, 1 << 30) == 1;
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc (musl has no mallopt tuning): nothing to do.
            return false;
        }
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int mallopt(int parameter, int value);
}
