using System.Text;
using NicheTune.Prompting;

namespace NicheTune.Augmentation;

/// <summary>
/// Continues a prompt with text: the seam between augmentation (paraphrasing) and a text-generating model. Adapt a
/// causal LM's generation loop, a hosted model or a fixed function with <see cref="TextGenerators.FromDelegate(Func{string, string})"/>.
/// </summary>
public interface ITextGenerator
{
    /// <summary>Generates the continuation of <paramref name="prompt"/> (without the prompt itself).</summary>
    /// <param name="prompt">The prompt.</param>
    /// <param name="seed">Seed for any sampling, drawn from the augmenter's random source so a seeded run reproduces.</param>
    /// <returns>The generated text.</returns>
    string Generate(string prompt, int seed);
}

/// <summary>Translates text between languages: the seam for back-translation (a translation model, a service, a dictionary).</summary>
public interface ITranslator
{
    /// <summary>Translates <paramref name="text"/>.</summary>
    /// <param name="text">The text.</param>
    /// <param name="sourceLanguage">Its language, e.g. <c>en</c>.</param>
    /// <param name="targetLanguage">The language to translate into, e.g. <c>de</c>.</param>
    /// <returns>The translation.</returns>
    string Translate(string text, string sourceLanguage, string targetLanguage);
}

/// <summary>Adapters that make an <see cref="ITextGenerator"/> from a function.</summary>
public static class TextGenerators
{
    /// <summary>A generator from a deterministic function (prompt → continuation), e.g. greedy decoding of a causal LM.</summary>
    /// <param name="generate">The function.</param>
    /// <returns>The generator (the seed is ignored).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="generate"/> is <see langword="null"/>.</exception>
    public static ITextGenerator FromDelegate(Func<string, string> generate)
    {
        ArgumentNullException.ThrowIfNull(generate);
        return new DelegateGenerator((prompt, _) => generate(prompt));
    }

    /// <summary>A generator from a sampling function (prompt, seed → continuation).</summary>
    /// <param name="generate">The function; use the seed for its sampler.</param>
    /// <returns>The generator.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="generate"/> is <see langword="null"/>.</exception>
    public static ITextGenerator FromDelegate(Func<string, int, string> generate)
    {
        ArgumentNullException.ThrowIfNull(generate);
        return new DelegateGenerator(generate);
    }

    private sealed class DelegateGenerator(Func<string, int, string> generate) : ITextGenerator
    {
        public string Generate(string prompt, int seed) => generate(prompt, seed);
    }
}

/// <summary>Adapters that make an <see cref="ITranslator"/> from a function.</summary>
public static class Translators
{
    /// <summary>A translator from a function (text, source language, target language → translation).</summary>
    /// <param name="translate">The function.</param>
    /// <returns>The translator.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="translate"/> is <see langword="null"/>.</exception>
    public static ITranslator FromDelegate(Func<string, string, string, string> translate)
    {
        ArgumentNullException.ThrowIfNull(translate);
        return new DelegateTranslator(translate);
    }

    private sealed class DelegateTranslator(Func<string, string, string, string> translate) : ITranslator
    {
        public string Translate(string text, string sourceLanguage, string targetLanguage) => translate(text, sourceLanguage, targetLanguage);
    }
}

/// <summary>Asks a generator for paraphrases; keeps the first line of each answer and drops answers that lost a protected term.</summary>
internal sealed class ParaphraseAugmenter(ITextGenerator generator, PromptTemplate prompt, int count, ProtectedTerms protectedTerms) : IAugmenter<string>
{
    public IEnumerable<string> Augment(string example, Random random)
    {
        ArgumentNullException.ThrowIfNull(example);
        ArgumentNullException.ThrowIfNull(random);
        IReadOnlyList<string> required = protectedTerms.Find(example);
        string rendered = prompt.Render(("text", example));
        var results = new List<string>(count);
        for (int i = 0; i < count; i++)
        {
            string answer = generator.Generate(rendered, random.Next()) ?? string.Empty;
            string line = FirstLine(answer);
            if (line.Length > 0 && KeepsAll(line, required))
            {
                results.Add(line);
            }
        }

        return results;
    }

    internal static bool KeepsAll(string text, IReadOnlyList<string> terms)
    {
        foreach (string term in terms)
        {
            if (!text.Contains(term, StringComparison.OrdinalIgnoreCase))
            {
                return false;
            }
        }

        return true;
    }

    private static string FirstLine(string answer)
    {
        string trimmed = answer.Trim();
        int newline = trimmed.IndexOf('\n');
        return (newline < 0 ? trimmed : trimmed[..newline]).Trim();
    }
}

/// <summary>
/// Translates into each pivot language and back. Protected terms travel as placeholders <c>⟦0⟧, ⟦1⟧…</c> that translators
/// leave alone, and are put back verbatim afterwards; a round trip that lost a placeholder is dropped.
/// </summary>
internal sealed class BackTranslationAugmenter(ITranslator translator, string language, string[] pivots, ProtectedTerms protectedTerms) : IAugmenter<string>
{
    public IEnumerable<string> Augment(string example, Random random)
    {
        ArgumentNullException.ThrowIfNull(example);
        ArgumentNullException.ThrowIfNull(random);
        List<TextUnit> units = TextUnits.Analyze(example, protectedTerms);
        var terms = new List<string>();
        var masked = new StringBuilder(example.Length);
        int at = 0;
        foreach (TextUnit unit in units)
        {
            if (unit.Protected)
            {
                masked.Append(example, at, unit.CoreStart - at).Append('⟦').Append(terms.Count).Append('⟧');
                terms.Add(example.Substring(unit.CoreStart, unit.CoreLength));
                at = unit.CoreEnd;
            }
        }

        string source = masked.Append(example, at, example.Length - at).ToString();
        var results = new List<string>(pivots.Length);
        foreach (string pivot in pivots)
        {
            string there = translator.Translate(source, language, pivot) ?? string.Empty;
            string back = (translator.Translate(there, pivot, language) ?? string.Empty).Trim();
            if (back.Length > 0 && TryUnmask(back, terms, out string restored))
            {
                results.Add(restored);
            }
        }

        return results;
    }

    private static bool TryUnmask(string text, List<string> terms, out string restored)
    {
        restored = text;
        for (int i = 0; i < terms.Count; i++)
        {
            string placeholder = "⟦" + i.ToString(System.Globalization.CultureInfo.InvariantCulture) + "⟧";
            if (!restored.Contains(placeholder, StringComparison.Ordinal))
            {
                return false;
            }

            restored = restored.Replace(placeholder, terms[i], StringComparison.Ordinal);
        }

        return true;
    }
}
