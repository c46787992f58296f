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

    private static string Normalize(string text) => string.Join('\n', text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0));
}
