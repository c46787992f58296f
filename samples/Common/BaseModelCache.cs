// The samples' pretrained base: a byte-level GPT-2 trained on WordNet glosses (general English). It is made once, by
// the sample that first needs it, and kept in the user's cache folder as a Hugging Face folder (config.json,
// model.safetensors, model-card.md) — so later runs, and other samples with the same settings, start from it at once.
// The folder's name is a hash of everything that decides the weights (architecture, pretraining settings, seed and the
// data file's bytes): change any of them and a new base is trained. Delete the folder, or pass --no-cache, to retrain.
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using NicheTune.Evaluation;
using NicheTune.Models;
using NicheTune.Scheduling;
using NicheTune.Training;

namespace NicheTune.Samples;

/// <summary>Finds the cached base model for a recipe, or trains and caches it.</summary>
internal static class BaseModelCache
{
    /// <summary>
    /// The cache root: <c>$NICHETUNE_CACHE</c>, else <c>$XDG_CACHE_HOME/nichetune</c>, else <c>~/.cache/nichetune</c>.
    /// </summary>
    public static string Root
    {
        get
        {
            if (Environment.GetEnvironmentVariable("NICHETUNE_CACHE") is { Length: > 0 } explicitRoot)
            {
                return explicitRoot;
            }

            string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            return Path.Combine(xdg is { Length: > 0 } ? xdg : Path.Combine(home, ".cache"), "nichetune");
        }
    }

    /// <summary>
    /// Loads the base for <paramref name="config"/> and <paramref name="recipe"/> from the cache, or calls
    /// <paramref name="pretrain"/> on a fresh model (seeded by the caller) and caches the result with a model card.
    /// </summary>
    /// <param name="config">The architecture.</param>
    /// <param name="recipe">Every pretraining setting that changes the weights, as text (steps, rate, schedule, batch, seed).</param>
    /// <param name="dataFile">The pretraining corpus; its bytes are part of the cache key.</param>
    /// <param name="pretrain">Trains the model in place and returns the model card's measurements (Markdown lines).</param>
    /// <param name="useCache">False always trains (and refreshes the cache).</param>
    /// <param name="description">What the model is, for its folder name and model card; <see langword="null"/> for the WordNet base.</param>
    public static Gpt2LMHeadModel GetOrPretrain(Gpt2Config config, string recipe, string dataFile, Func<Gpt2LMHeadModel, string> pretrain, bool useCache = true, CachedModelDescription? description = null)
    {
        description ??= CachedModelDescription.WordNetBase;
        string key = Key(config, recipe, dataFile);
        string folder = Path.Combine(Root, "base-models", $"{description.Name}-{key}");
        if (useCache && File.Exists(Path.Combine(folder, "model.safetensors")))
        {
            Console.WriteLine($"Base model: loaded from the cache ({folder}).");
            var cached = PretrainedModel.Load<Gpt2LMHeadModel>(folder);
            cached.train();
            return cached;
        }

        var model = new Gpt2LMHeadModel(config);
        string measurements = pretrain(model);
        PretrainedModel.Save(model, folder);
        string card = $"""
            # {description.Title}

            A small GPT-2 over bytes (vocabulary {config.VocabularySize}, context {config.ContextLength}, width {config.EmbeddingSize},
            {config.LayerCount} layers, {config.HeadCount} heads): {description.Summary} Not for any other use.

            - Data: {description.Data}
            - Pretraining: {recipe}
            - Made by: the first sample run that needed it, on {DateTime.UtcNow:yyyy-MM-dd}.

            ## Measured
            {measurements}
            """;
        File.WriteAllText(Path.Combine(folder, "model-card.md"), card);
        Console.WriteLine($"Base model: trained and cached in {folder}.");
        return model;
    }

    /// <summary>
    /// Causal language modelling as the samples pretrain (and adapt) their bases: batches of 32 packed windows, AdamW at
    /// <paramref name="rate"/> with 10 % linear warm-up then cosine to 0.1, perplexity on <paramref name="validation"/>.
    /// </summary>
    /// <param name="model">The model, trained in place.</param>
    /// <param name="train">Packed training windows.</param>
    /// <param name="validation">Packed validation windows.</param>
    /// <param name="rate">The peak learning rate.</param>
    /// <param name="steps">Optimiser steps.</param>
    /// <param name="logEvery">Steps between progress reports.</param>
    /// <param name="progress">Receives the progress reports, or <see langword="null"/>.</param>
    /// <param name="seed">The trainer's seed, or <see langword="null"/> for its default (the base's recipe uses the default).</param>
    /// <returns>The run's result (validation perplexity in its final metrics).</returns>
    public static FineTuneResult TrainLanguageModel(
        Gpt2LMHeadModel model, List<TokenExample> train, List<TokenExample> validation, double rate, int steps, int logEvery, IProgress<TrainingProgress>? progress = null, int? seed = null)
    {
        var plan = FineTuner.For(model)
            .WithObjective(Objectives.CausalLanguageModeling())
            .WithLearningRate(rate)
            .WithSchedule(Schedules.LinearWarmup(0.1).ThenCosine(minFactor: 0.1))
            .WithBatchSize(32)
            .WithMaxSteps(steps)
            .LogEvery(logEvery)
            .Evaluate(Metrics.Perplexity());
        if (progress is not null)
        {
            plan = plan.WithProgress(progress);
        }

        if (seed is int fixedSeed)
        {
            plan = plan.WithSeed(fixedSeed);
        }

        return plan.Fit(train, validation);
    }

    /// <summary>Detached copies of every tensor of <paramref name="model"/>: base weights that outlive the model.</summary>
    public static Dictionary<string, TorchSharp.torch.Tensor> Snapshot(TorchSharp.torch.nn.Module model) =>
        model.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().clone(), StringComparer.Ordinal);

    /// <summary>Copies <paramref name="weights"/> (from <see cref="Snapshot"/>) into a model of the same architecture.</summary>
    public static void Restore(TorchSharp.torch.nn.Module model, IReadOnlyDictionary<string, TorchSharp.torch.Tensor> weights)
    {
        using var noGrad = TorchSharp.torch.no_grad();
        foreach ((string name, TorchSharp.torch.Tensor tensor) in model.state_dict())
        {
            tensor.copy_(weights[name]);
        }
    }

    private static string Key(Gpt2Config config, string recipe, string dataFile)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Encoding.UTF8.GetBytes(config.ToHuggingFaceJson("GPT2LMHeadModel")));
        hash.AppendData(Encoding.UTF8.GetBytes(recipe));
        hash.AppendData(File.ReadAllBytes(dataFile));
        return Convert.ToHexString(hash.GetHashAndReset())[..12].ToLower(CultureInfo.InvariantCulture);
    }
}

/// <summary>What a cached sample model is: its folder name prefix and the model card's title, summary and data line.</summary>
/// <param name="Name">The cache folder's prefix (the content key follows it).</param>
/// <param name="Title">The model card's title.</param>
/// <param name="Summary">One or two sentences: how it was made and what it stands in for.</param>
/// <param name="Data">The corpus and its licence.</param>
internal sealed record CachedModelDescription(string Name, string Title, string Summary, string Data)
{
    /// <summary>The samples' base model: pretrained from scratch on WordNet glosses.</summary>
    public static CachedModelDescription WordNetBase { get; } = new(
        "wordnet-byte-gpt2",
        "WordNet byte-level GPT-2 (NicheTune samples' base model)",
        "trained from scratch on WordNet 3.0 glosses — general English — as the stand-in for a pretrained base model in the samples.",
        "`wordnet-glosses-subset.txt` (Princeton WordNet 3.0 glosses; WordNet licence, see `wordnet.COPYRIGHT` beside the samples' data).");
}
