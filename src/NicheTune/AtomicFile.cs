using System.Text;

namespace NicheTune;

/// <summary>
/// Writes a file so that readers (and a crash) see either the old file or the complete new one: the content goes to a
/// temporary file in the same folder (so the rename stays on one file system), flushed to disk, then renamed over the
/// target. The one implementation every report, reference and export file of the library uses.
/// </summary>
internal static class AtomicFile
{
    private static readonly UTF8Encoding Utf8NoBom = new(encoderShouldEmitUTF8Identifier: false);

    /// <summary>Writes <paramref name="text"/> as UTF-8 without a byte-order mark.</summary>
    /// <param name="path">The target file; its folder is created when missing.</param>
    /// <param name="text">The content.</param>
    public static void WriteAllText(string path, string text) => Write(path, stream => stream.Write(Utf8NoBom.GetBytes(text)));

    /// <summary>Writes <paramref name="bytes"/>.</summary>
    /// <param name="path">The target file; its folder is created when missing.</param>
    /// <param name="bytes">The content.</param>
    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, stream => stream.Write(bytes));

    /// <summary>Writes whatever <paramref name="write"/> puts in the stream; the target is untouched when it throws.</summary>
    /// <param name="path">The target file; its folder is created when missing.</param>
    /// <param name="write">Writes the content.</param>
    public static void Write(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(folder);
        string temporary = Path.Combine(folder, "." + Path.GetFileName(full) + "." + Guid.NewGuid().ToString("N")[..12] + ".tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, full, overwrite: true);
        }
        finally
        {
            TryDelete(temporary);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
