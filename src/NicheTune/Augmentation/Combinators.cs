namespace NicheTune.Augmentation;

internal sealed class SequenceAugmenter<T>(IAugmenter<T>[] steps) : IAugmenter<T>
{
    public IEnumerable<T> Augment(T example, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        T current = example;
        bool changed = false;
        foreach (IAugmenter<T> step in steps)
        {
            using IEnumerator<T> variants = step.Augment(current, random).GetEnumerator();
            if (variants.MoveNext())
            {
                current = variants.Current;
                changed = true;
            }
        }

        return changed ? [current] : [];
    }
}

internal sealed class OneOfAugmenter<T>(IAugmenter<T>[] choices, double[] cumulative) : IAugmenter<T>
{
    public IEnumerable<T> Augment(T example, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        double draw = random.NextDouble() * cumulative[^1];
        int pick = 0;
        while (pick < cumulative.Length - 1 && draw >= cumulative[pick])
        {
            pick++;
        }

        return [.. choices[pick].Augment(example, random)];
    }
}

internal sealed class ProbabilityAugmenter<T>(IAugmenter<T> inner, double probability) : IAugmenter<T>
{
    public IEnumerable<T> Augment(T example, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        return random.NextDouble() < probability ? [.. inner.Augment(example, random)] : [];
    }
}

internal sealed class CopiesAugmenter<T>(IAugmenter<T> inner, int copies) : IAugmenter<T>
{
    public IEnumerable<T> Augment(T example, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        var results = new List<T>(copies);
        for (int i = 0; i < copies; i++)
        {
            results.AddRange(inner.Augment(example, random));
        }

        return results;
    }
}

internal sealed class ProjectedAugmenter<T>(IAugmenter<string> inner, Func<T, string> getText, Func<T, string, T> withText) : IAugmenter<T>
{
    public IEnumerable<T> Augment(T example, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        var results = new List<T>();
        foreach (string text in inner.Augment(getText(example), random))
        {
            results.Add(withText(example, text));
        }

        return results;
    }
}

internal sealed class FilteredAugmenter<T>(IAugmenter<T> inner, AugmentationFilter filter, Func<T, string> getText) : IAugmenter<T>
{
    public IEnumerable<T> Augment(T example, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        string original = getText(example);
        var results = new List<T>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (T variant in inner.Augment(example, random))
        {
            string text = getText(variant);
            if (filter.Accepts(original, text) && seen.Add(AugmentationFilter.Normalize(text)))
            {
                results.Add(variant);
            }
        }

        return results;
    }
}
