using NicheTune.Augmentation;
using NicheTune.Scheduling;
using NicheTune.Training;

namespace NicheTune.Prompting;

/// <summary>The few-shot fine-tuning recipe with its defaults: <c>FewShot.Recipe() with { Epochs = 3 }</c>.</summary>
public static class FewShot
{
    /// <summary>
    /// The defaults for fine-tuning on little labelled data: a low learning rate (2e-5) with a 10 % linear warm-up and linear
    /// decay, 4 epochs, early stopping on the validation loss (patience 2, best weights restored), 20 % of each class held out
    /// for validation, and EDA augmentation (4 copies per training example) on. Override any of them with <c>with</c>.
    /// </summary>
    /// <returns>The recipe.</returns>
    public static FewShotRecipe Recipe() => new();

    /// <summary>
    /// Puts a few-shot recipe's training settings on the builder, in the fluent chain:
    /// <c>FineTuner.For(model).WithObjective(…).WithFewShotRecipe(FewShot.Recipe() with { Epochs = 3 }).Evaluate(…)</c>.
    /// Calls after it override the recipe's values.
    /// </summary>
    /// <typeparam name="TBatch">The batch type.</typeparam>
    /// <param name="builder">The builder.</param>
    /// <param name="recipe">The recipe; <see langword="null"/> for <see cref="Recipe"/>'s defaults.</param>
    /// <returns>The same builder.</returns>
    /// <exception cref="ArgumentException">A setting of the recipe is out of range.</exception>
    public static FineTunerBuilder<TBatch> WithFewShotRecipe<TBatch>(this FineTunerBuilder<TBatch> builder, FewShotRecipe? recipe = null)
        where TBatch : ITrainingBatch
        => (recipe ?? Recipe()).ApplyTo(builder);
}

/// <summary>
/// A few-shot fine-tuning recipe: the settings it puts on a <see cref="FineTunerBuilder{TBatch}"/> (<see cref="ApplyTo{TBatch}"/>) and
/// the data preparation it does first (<see cref="Prepare{T}"/>: stratified validation split, augmentation of the training part
/// only). Immutable; validated when used.
/// </summary>
public sealed record FewShotRecipe
{
    /// <summary>The base learning rate: low, so few examples cannot drag a pretrained model far.</summary>
    /// <value>Default 2e-5.</value>
    public double LearningRate { get; init; } = 2e-5;

    /// <summary>Passes over the (augmented) training data.</summary>
    /// <value>Default 4 (2–5 is the usual range).</value>
    public int Epochs { get; init; } = 4;

    /// <summary>Share of the warm-up in the run, before a linear decay to 0.</summary>
    /// <value>Default 0.1.</value>
    public double WarmupFraction { get; init; } = 0.1;

    /// <summary>The examples per batch.</summary>
    /// <value>Default 8.</value>
    public int BatchSize { get; init; } = 8;

    /// <summary>Share of each class held out for validation (at least one example from every class with two or more).</summary>
    /// <value>Default 0.2.</value>
    public double ValidationFraction { get; init; } = 0.2;

    /// <summary>The validation metric early stopping watches.</summary>
    /// <value>Default <c>validation.loss</c>.</value>
    public string EarlyStoppingMetric { get; init; } = "validation.loss";

    /// <summary>Evaluations without improvement before stopping.</summary>
    /// <value>Default 2.</value>
    public int Patience { get; init; } = 2;

    /// <summary>Whether <see cref="Prepare{T}"/> augments the training part.</summary>
    /// <value>Default <see langword="true"/>.</value>
    public bool Augment { get; init; } = true;

    /// <summary>The text augmentation used on <see cref="LabeledText"/> when <see cref="Prepare(IReadOnlyList{LabeledText})"/> is given no augmenter.</summary>
    /// <value>Default <see cref="EdaOptions"/> defaults (α = 0.1, 4 copies).</value>
    public EdaOptions Eda { get; init; } = new();

    /// <summary>Seed of the split, the augmentation and the training run.</summary>
    /// <value>Default 42.</value>
    public int Seed { get; init; } = 42;

    /// <summary>Puts the recipe's training settings on <paramref name="builder"/>: learning rate, warm-up + linear decay, epochs, batch size, seed, early stopping. Later builder calls override them.</summary>
    /// <typeparam name="TBatch">The batch type.</typeparam>
    /// <param name="builder">The builder.</param>
    /// <returns>The same builder.</returns>
    /// <exception cref="ArgumentException">A setting is out of range (every problem is listed).</exception>
    public FineTunerBuilder<TBatch> ApplyTo<TBatch>(FineTunerBuilder<TBatch> builder)
        where TBatch : ITrainingBatch
    {
        ArgumentNullException.ThrowIfNull(builder);
        Validate();
        return builder
            .WithLearningRate(LearningRate)
            .WithSchedule(Schedules.LinearWarmup(WarmupFraction).ThenLinear())
            .WithEpochs(Epochs)
            .WithBatchSize(BatchSize)
            .WithSeed(Seed)
            .EarlyStopping(EarlyStoppingMetric, Patience);
    }

    /// <summary>Splits labelled texts into training and validation parts (stratified) and augments the training part with EDA.</summary>
    /// <param name="examples">The labelled examples.</param>
    /// <returns>The augmented training set (originals first, then their variants) and the untouched validation set.</returns>
    /// <exception cref="ArgumentException">A setting is out of range.</exception>
    public (List<LabeledText> Train, List<LabeledText> Validation) Prepare(IReadOnlyList<LabeledText> examples)
        => Prepare(examples, static e => e.Label, Augmenters.Eda(Eda).ForLabeled());

    /// <summary>Splits examples into training and validation parts (stratified by <paramref name="label"/>) and augments the training part only.</summary>
    /// <typeparam name="T">The example type.</typeparam>
    /// <param name="examples">The examples.</param>
    /// <param name="label">The label of an example (for stratification).</param>
    /// <param name="augmenter">The augmenter; used only when <see cref="Augment"/> is on.</param>
    /// <returns>The training and validation parts.</returns>
    /// <exception cref="ArgumentException">A setting is out of range, or there are fewer than two examples.</exception>
    public (List<T> Train, List<T> Validation) Prepare<T>(IReadOnlyList<T> examples, Func<T, string> label, IAugmenter<T>? augmenter)
    {
        ArgumentNullException.ThrowIfNull(examples);
        ArgumentNullException.ThrowIfNull(label);
        Validate();
        if (examples.Count < 2)
        {
            throw new ArgumentException($"A few-shot run needs at least two examples to split into training and validation; got {examples.Count}.", nameof(examples));
        }

        string[] labels = [.. examples.Select(label)];
        var validationIndices = new HashSet<int>();
        var random = new Random(Seed);
        foreach (IGrouping<string, int> group in Enumerable.Range(0, labels.Length).GroupBy(i => labels[i]))
        {
            int[] members = [.. group];
            random.Shuffle(members);
            int take = members.Length < 2 ? 0 : Math.Max(1, (int)Math.Round(ValidationFraction * members.Length));
            validationIndices.UnionWith(members.Take(Math.Min(take, members.Length - 1)));
        }

        List<T> train = [.. Enumerable.Range(0, examples.Count).Where(i => !validationIndices.Contains(i)).Select(i => examples[i])];
        List<T> validation = [.. Enumerable.Range(0, examples.Count).Where(validationIndices.Contains).Select(i => examples[i])];
        if (Augment && augmenter is not null)
        {
            train = train.AugmentAll(augmenter, Seed);
        }

        return (train, validation);
    }

    private void Validate()
    {
        var problems = new List<string>();
        if (!(LearningRate > 0 && double.IsFinite(LearningRate)))
        {
            problems.Add($"LearningRate is {LearningRate}; use a small positive rate such as 2e-5");
        }

        if (Epochs < 1)
        {
            problems.Add($"Epochs is {Epochs}; use 2–5");
        }

        if (BatchSize < 1)
        {
            problems.Add($"BatchSize is {BatchSize}; use at least 1");
        }

        if (!(WarmupFraction >= 0 && WarmupFraction <= 1))
        {
            problems.Add($"WarmupFraction is {WarmupFraction}; use a share in [0, 1]");
        }

        if (!(ValidationFraction > 0 && ValidationFraction < 1))
        {
            problems.Add($"ValidationFraction is {ValidationFraction}; use a share in (0, 1) such as 0.2");
        }

        if (Patience < 1)
        {
            problems.Add($"Patience is {Patience}; use at least 1");
        }

        if (string.IsNullOrWhiteSpace(EarlyStoppingMetric))
        {
            problems.Add("EarlyStoppingMetric is empty; use e.g. validation.loss");
        }

        if (problems.Count > 0)
        {
            throw new ArgumentException("Invalid few-shot recipe: " + string.Join("; ", problems) + ".");
        }
    }
}
