using System.Globalization;

namespace NicheTune.Benchmarks.Guard;

/// <summary>The process's resident set size, read from <c>/proc/self/status</c> (Linux).</summary>
internal static class ProcessMemory
{
    private const string StatusFile = "/proc/self/status";

    public static bool IsSupported => File.Exists(StatusFile);

    /// <summary>VmRSS in bytes, or -1 where <c>/proc</c> is not available.</summary>
    public static long ResidentBytes()
    {
        if (!IsSupported)
        {
            return -1;
        }

        foreach (string line in File.ReadLines(StatusFile))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                // "VmRSS:	  123456 kB"
                ReadOnlySpan<char> value = line.AsSpan("VmRSS:".Length).Trim();
                int space = value.IndexOf(' ');
                return long.Parse(space < 0 ? value : value[..space], NumberStyles.Integer, CultureInfo.InvariantCulture) * 1024;
            }
        }

        return -1;
    }

    public static double Mebibytes(long bytes) => bytes / (1024.0 * 1024.0);
}
