using FluentAssertions;

namespace NicheTune.Tests.Support;

/// <summary>Checks that a docs page shows, verbatim (up to indentation), the code a test compiles between <c>// DOC-BEGIN</c> and <c>// DOC-END</c>.</summary>
internal static class DocSnippets
{
    public static void PageShows(string page, string source)
    {
        string code = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, source));
        string text = Normalize(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "docs", page)));
        int start = code.IndexOf("// DOC-BEGIN", StringComparison.Ordinal) + "// DOC-BEGIN".Length;
        string snippet = code[start..code.IndexOf("// DOC-END", start, StringComparison.Ordinal)];
        text.Should().Contain(Normalize(snippet), $"docs/{page} must show the code that {source} compiles");
    }

    /// <summary>
    /// Asserts that <paramref name="pagePath"/> shows every <c>// DOC-BEGIN</c> … <c>// DOC-END</c> region of
    /// <paramref name="sourcePath"/> (both full paths) and returns how many regions there were.
    /// </summary>
    public static int PageShowsEveryRegion(string pagePath, string sourcePath)
    {
        string source = File.ReadAllText(sourcePath);
        string page = Normalize(File.ReadAllText(pagePath));
        int regions = 0;
        for (int start = source.IndexOf("// DOC-BEGIN", StringComparison.Ordinal); start >= 0; start = source.IndexOf("// DOC-BEGIN", start + 1, StringComparison.Ordinal))
        {
            int body = source.IndexOf('\n', start) + 1;
            string region = source[body..source.IndexOf("// DOC-END", body, StringComparison.Ordinal)];
            page.Should().Contain(Normalize(region), "{0} must show the code this test compiles ({1})", Path.GetFileName(pagePath), source[start..body].Trim());
            regions++;
        }

        return regions;
    }

    private static string Normalize(string text) => string.Join('\n', text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0));
}
