using System.Globalization;

namespace NicheTune.Benchmarks.Guard;

/// <summary>The process's resident set size, read from <c>/proc/self/status</c> (Linux).</summary>
internal static class ProcessMemory
{
    private const string StatusFile = "/proc/self/status";

    public static bool IsSupported => File.Exists(StatusFile);

    /// <summary>
    /// VmRSS (all resident pages), RssAnon (heap: where leaked tensors would show) and RssFile (mapped files, mostly
    /// libtorch's code, which the kernel may drop and fault back in) in bytes; -1 where <c>/proc</c> is not available.
    /// </summary>
    public static (long Total, long Anonymous, long File) Resident()
    {
        long total = -1, anonymous = -1, file = -1;
        if (!IsSupported)
        {
            return (total, anonymous, file);
        }

        foreach (string line in File.ReadLines(StatusFile))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                total = Kilobytes(line) * 1024;
            }
            else if (line.StartsWith("RssAnon:", StringComparison.Ordinal))
            {
                anonymous = Kilobytes(line) * 1024;
            }
            else if (line.StartsWith("RssFile:", StringComparison.Ordinal))
            {
                file = Kilobytes(line) * 1024;
            }
        }

        return (total, anonymous, file);
    }

    // "VmRSS:	  123456 kB"
    private static long Kilobytes(string line)
    {
        ReadOnlySpan<char> value = line.AsSpan(line.IndexOf(':') + 1).Trim();
        int space = value.IndexOf(' ');
        return long.Parse(space < 0 ? value : value[..space], NumberStyles.Integer, CultureInfo.InvariantCulture);
    }

    public static double Mebibytes(long bytes) => bytes / (1024.0 * 1024.0);

    /// <summary>
    /// Page faults of this process so far (minor + major, from <c>/proc/self/stat</c>); -1 where it cannot be read. A freshly
    /// mapped page costs a fault on first touch, so faults per step measure how much memory a step re-maps.
    /// </summary>
    public static long PageFaults()
    {
        try
        {
            string stat = File.ReadAllText("/proc/self/stat");
            // "pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt …": comm may contain spaces.
            string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return long.Parse(fields[7], CultureInfo.InvariantCulture) + long.Parse(fields[9], CultureInfo.InvariantCulture);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return -1;
        }
    }
}
