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
}
