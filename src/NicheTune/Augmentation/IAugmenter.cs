namespace NicheTune.Augmentation;

/// <summary>
/// Makes new training examples from one example: the extension point of data augmentation. Built-ins come from
/// <see cref="Augmenters"/>; a class of your own plugs in the same way (compose it, filter it, apply it to a data set).
/// </summary>
/// <remarks>
/// Implementations draw every random choice from the given <see cref="Random"/> so that a seeded run reproduces exactly; they
/// must not change the example. Yielding nothing is allowed (e.g. a sentence too short to change).
/// </remarks>
/// <typeparam name="T">The example type (a string, a <see cref="LabeledText"/>, a record of your own).</typeparam>
public interface IAugmenter<T>
{
    /// <summary>Produces augmented variants of <paramref name="example"/> (not including the example itself).</summary>
    /// <param name="example">The original example.</param>
    /// <param name="random">The source of every random choice; the same seed gives the same variants.</param>
    /// <returns>Zero or more new examples; evaluated lazily or eagerly, as the implementation prefers.</returns>
    IEnumerable<T> Augment(T example, Random random);
}

/// <summary>A text with its class label: the usual example of a few-shot classification task.</summary>
/// <param name="Text">The text.</param>
/// <param name="Label">The class label; text augmenters lifted with <see cref="Augmenters.ForLabeled"/> keep it unchanged.</param>
public sealed record LabeledText(string Text, string Label);
