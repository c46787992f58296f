using System.Collections.Immutable;
using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using NicheTune.Models;
using NicheTune.Prompting;
using NicheTune.Text;
using NicheTune.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Deployment;

/// <summary>
/// A packaged model ready for an application: <see cref="Classify"/>, <see cref="Score"/>, <see cref="Generate"/> and
/// <see cref="Embed"/>, safe to call from many threads at once. Requests are queued and answered by one background loop
/// that gathers those arriving within <see cref="NicheModelOptions.BatchWindow"/> (up to
/// <see cref="NicheModelOptions.MaxBatchSize"/>), pads them into one batch and runs one forward pass under
/// <c>torch.no_grad()</c> in a dispose scope — under load, many answers for the price of one pass. Every answer is
/// handed to the registered <see cref="IPredictionObserver"/>s as a <see cref="PredictionRecord"/>.
/// </summary>
/// <remarks>
/// Batched answers equal one-by-one answers within float rounding: inputs are right-padded and masked, and causal models
/// never attend to the padding. Dispose the model to stop the loop (pending requests fail with
/// <see cref="ObjectDisposedException"/>) and free its native memory.
/// </remarks>
public sealed class NicheModel : IDisposable, IAsyncDisposable
{
    private readonly nn.Module _model;
    private readonly Device _device;
    private readonly ZeroShotClassifier? _zeroShot;
    private readonly Channel<Request> _queue;
    private readonly Task _loop;
    private readonly ILogger _logger;
    private readonly long _windowTicks;
    private readonly int _paddingId;
    private ImmutableArray<IPredictionObserver> _observers;
    private long _requests;
    private long _batches;
    private int _disposed;

    private NicheModel(string folder, ModelPackageManifest manifest, nn.Module model, ITextTokenizer tokenizer, NicheModelOptions options, ILogger logger)
    {
        Folder = folder;
        Manifest = manifest;
        _model = model;
        Tokenizer = tokenizer;
        Options = options;
        _logger = logger;
        _device = torch.device(options.Device);
        _paddingId = tokenizer.SpecialTokens.PaddingOrFallback;
        _observers = [.. options.Observers];
        _windowTicks = (long)(options.BatchWindow.TotalSeconds * Stopwatch.Frequency);
        Labels = manifest.Labels.IsDefaultOrEmpty ? null : new LabelMap(manifest.Labels);
        if (manifest.Kind == ModelPackageKind.CausalLanguageModel && manifest.PromptTemplate is { } template && Labels is not null)
        {
            var scorer = new LabelScorer(model, t => tokenizer.Encode(t), new LabelScorerOptions { BatchSize = Math.Max(8, options.MaxBatchSize), PaddingId = _paddingId, MaxLength = manifest.MaxLength });
            _zeroShot = new ZeroShotClassifier(scorer, new PromptTemplate(template), Labels.Labels,
                new LabelScoringOptions { Verbalizations = manifest.Verbalizations.IsDefaultOrEmpty ? null : manifest.Verbalizations });
        }

        _queue = Channel.CreateUnbounded<Request>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = false });
        _loop = Task.Factory.StartNew(Run, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>The package folder the model was loaded from.</summary>
    public string Folder { get; }

    /// <summary>The package's manifest: kind, architecture, labels, template, versions and content hash.</summary>
    public ModelPackageManifest Manifest { get; }

    /// <summary>The model's name (from the manifest).</summary>
    public string Name => Manifest.Name;

    /// <summary>The tokenizer the model was trained with.</summary>
    public ITextTokenizer Tokenizer { get; }

    /// <summary>The serving options.</summary>
    public NicheModelOptions Options { get; }

    /// <summary>The class labels in id order, or <see langword="null"/> when the model does not classify.</summary>
    public LabelMap? Labels { get; }

    /// <summary>Whether <see cref="Classify"/> works: a sequence classifier, or a causal LM packaged with a prompt template and labels.</summary>
    public bool CanClassify => Manifest.Kind == ModelPackageKind.SequenceClassifier || _zeroShot is not null;

    /// <summary>Whether <see cref="Score"/> and <see cref="Generate"/> work (causal language models).</summary>
    public bool CanGenerate => Manifest.Kind == ModelPackageKind.CausalLanguageModel;

    /// <summary>Requests answered so far.</summary>
    public long RequestCount => Interlocked.Read(ref _requests);

    /// <summary>Forward passes (batches) run so far; <see cref="RequestCount"/> / <see cref="BatchCount"/> is the mean batch size.</summary>
    public long BatchCount => Interlocked.Read(ref _batches);

    /// <summary>
    /// Loads a package written by <see cref="ModelPackage.Export"/>: verifies its files against the manifest, builds the
    /// model and tokenizer, applies a separately stored LoRA adapter, and starts the batching loop.
    /// </summary>
    /// <param name="folder">The package folder.</param>
    /// <param name="options">Serving options; <see langword="null"/> for the defaults.</param>
    /// <param name="logger">Where to log loading, failures and disposal; <see langword="null"/> for none.</param>
    /// <returns>The model; dispose it when done.</returns>
    /// <exception cref="ArgumentException">An option is out of range (the message names it and the value).</exception>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="InvalidDataException">The folder is not a complete package, or a file is missing or was modified (each named).</exception>
    /// <exception cref="NotSupportedException">The package was written for an architecture this version cannot build.</exception>
    public static NicheModel Load(string folder, NicheModelOptions? options = null, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        options ??= new NicheModelOptions();
        Validate(options);
        TorchBackend.EnsureAvailable();
        // Opt-in (NICHETUNE_RETAIN_FREED_MEMORY=1), as for training: a server runs the same batch shapes over and over, and
        // on machines where page faults are dear re-faulting every batch's activations halves batched throughput.
        NativeAllocator.RetainFreedMemory();
        var clock = Stopwatch.StartNew();
        ModelPackageManifest manifest = options.VerifyContentHash ? ModelPackage.Verify(folder) : ModelPackage.ReadManifest(folder);
        ITextTokenizer tokenizer = manifest.Tokenizer == "byte" ? new ByteTokenizer() : Tokenizers.FromFolder(folder);
        var loadOptions = new PretrainedLoadOptions
        {
            Dtype = options.UseBFloat16 ? ScalarType.BFloat16 : ScalarType.Float32,
            Device = torch.device(options.Device),
        };
        nn.Module model = BuildModel(folder, manifest, loadOptions);
        try
        {
            if (manifest.LoRA == "adapter")
            {
                LoRA.Load(model, Path.Combine(folder, ModelPackage.AdapterFolderName)).MergeAndRemove();
            }

            model.eval();
            foreach (var parameter in model.parameters())
            {
                parameter.requires_grad = false;
            }

            logger ??= NullLogger.Instance;
            var served = new NicheModel(Path.GetFullPath(folder), manifest, model, tokenizer, options, logger);
            Log.ModelLoaded(logger, manifest.Name, manifest.Version, served.Folder, manifest.Kind, manifest.Architecture,
                model.parameters().Sum(p => p.numel()), loadOptions.Dtype.ToString(), options.Device, manifest.ContentHash, clock.ElapsedMilliseconds);
            return served;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Adds an observer that receives one <see cref="PredictionRecord"/> per request answered from now on.</summary>
    /// <param name="observer">The observer; it must be thread-safe and fast.</param>
    /// <exception cref="ArgumentNullException"><paramref name="observer"/> is null.</exception>
    public void AddObserver(IPredictionObserver observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        ImmutableInterlocked.Update(ref _observers, (list, o) => list.Add(o), observer);
    }

    /// <summary>Classifies <paramref name="text"/>, batched with concurrent requests.</summary>
    /// <param name="text">The text.</param>
    /// <param name="cancellationToken">Cancels the wait (a request already in a running batch still completes there).</param>
    /// <returns>The most probable label and every class's probability.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is null.</exception>
    /// <exception cref="NotSupportedException">The model does not classify (see <see cref="CanClassify"/>).</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public async Task<ClassificationResult> ClassifyAsync(string text, CancellationToken cancellationToken = default)
    {
        if (!CanClassify)
        {
            throw new NotSupportedException($"Model '{Name}' is a {Manifest.Kind} ({Manifest.Architecture}) without labels and a prompt template, so it cannot classify; export a classifier, or a causal LM with ModelPackageOptions.PromptTemplate and Labels.");
        }

        PredictionRecord record = await Enqueue(PredictionKind.Classify, text, null, cancellationToken).ConfigureAwait(false);
        int best = 0;
        for (int i = 1; i < record.Probabilities.Length; i++)
        {
            if (record.Probabilities[i] > record.Probabilities[best])
            {
                best = i;
            }
        }

        return new ClassificationResult(record.PredictedLabel!, best, record.Probabilities);
    }

    /// <summary>Classifies <paramref name="text"/> and waits for the answer; see <see cref="ClassifyAsync"/>.</summary>
    /// <param name="text">The text.</param>
    /// <returns>The most probable label and every class's probability.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is null.</exception>
    /// <exception cref="NotSupportedException">The model does not classify.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public ClassificationResult Classify(string text) => ClassifyAsync(text).GetAwaiter().GetResult();

    /// <summary>Scores how likely the causal LM finds <paramref name="text"/> (log-likelihood and perplexity), batched with concurrent requests.</summary>
    /// <param name="text">The text; it must have at least two tokens.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The score.</returns>
    /// <exception cref="ArgumentException">The text has fewer than two tokens.</exception>
    /// <exception cref="NotSupportedException">The model is not a causal LM.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public async Task<TextScore> ScoreAsync(string text, CancellationToken cancellationToken = default)
    {
        RequireCausal(nameof(Score));
        PredictionRecord record = await Enqueue(PredictionKind.Score, text, null, cancellationToken).ConfigureAwait(false);
        return new TextScore(record.LogLikelihood!.Value, record.TokenCount);
    }

    /// <summary>Scores <paramref name="text"/> and waits for the answer; see <see cref="ScoreAsync"/>.</summary>
    /// <param name="text">The text; it must have at least two tokens.</param>
    /// <returns>The score.</returns>
    /// <exception cref="ArgumentException">The text has fewer than two tokens.</exception>
    /// <exception cref="NotSupportedException">The model is not a causal LM.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public TextScore Score(string text) => ScoreAsync(text).GetAwaiter().GetResult();

    /// <summary>Continues <paramref name="prompt"/> with the causal LM; concurrent prompts of equal length decode together.</summary>
    /// <param name="prompt">The prompt (at least one token); its start is cut when prompt plus new tokens exceed the context.</param>
    /// <param name="options">How to pick tokens; <see langword="null"/> for <see cref="NicheModelOptions.Generation"/>.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The generated text (without the prompt).</returns>
    /// <exception cref="ArgumentException">The prompt has no tokens or the options are invalid.</exception>
    /// <exception cref="NotSupportedException">The model is not a causal LM.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public async Task<string> GenerateAsync(string prompt, GenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        RequireCausal(nameof(Generate));
        options ??= Options.Generation;
        options.Validate();
        PredictionRecord record = await Enqueue(PredictionKind.Generate, prompt, options, cancellationToken).ConfigureAwait(false);
        return record.Output!;
    }

    /// <summary>Continues <paramref name="prompt"/> and waits for the answer; see <see cref="GenerateAsync"/>.</summary>
    /// <param name="prompt">The prompt.</param>
    /// <param name="options">How to pick tokens; <see langword="null"/> for <see cref="NicheModelOptions.Generation"/>.</param>
    /// <returns>The generated text.</returns>
    /// <exception cref="ArgumentException">The prompt has no tokens or the options are invalid.</exception>
    /// <exception cref="NotSupportedException">The model is not a causal LM.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public string Generate(string prompt, GenerationOptions? options = null) => GenerateAsync(prompt, options).GetAwaiter().GetResult();

    /// <summary>Embeds <paramref name="text"/>: the final hidden states averaged over its tokens, batched with concurrent requests.</summary>
    /// <param name="text">The text (at least one token).</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The embedding, as wide as the model's hidden states.</returns>
    /// <exception cref="ArgumentException">The text has no tokens.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public async Task<ImmutableArray<float>> EmbedAsync(string text, CancellationToken cancellationToken = default)
    {
        PredictionRecord record = await Enqueue(PredictionKind.Embed, text, null, cancellationToken).ConfigureAwait(false);
        return record.Embedding;
    }

    /// <summary>Embeds <paramref name="text"/> and waits for the answer; see <see cref="EmbedAsync"/>.</summary>
    /// <param name="text">The text.</param>
    /// <returns>The embedding.</returns>
    /// <exception cref="ArgumentException">The text has no tokens.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public ImmutableArray<float> Embed(string text) => EmbedAsync(text).GetAwaiter().GetResult();

    /// <summary>Stops the batching loop, fails pending requests with <see cref="ObjectDisposedException"/>, and frees the model's native memory.</summary>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    /// <summary>Stops the batching loop (waiting for the running batch), fails pending requests and frees the model.</summary>
    /// <returns>A task that completes when the model is freed.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _queue.Writer.TryComplete();
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
        {
        }

        int pending = 0;
        while (_queue.Reader.TryRead(out Request? request))
        {
            if (request.Completion.TrySetException(new ObjectDisposedException(nameof(NicheModel), $"Model '{Name}' was disposed before this request ran.")))
            {
                pending++;
            }
        }

        _model.Dispose();
        Log.ModelDisposed(_logger, Name, RequestCount, BatchCount, pending);
    }

    private static void Validate(NicheModelOptions options)
    {
        var problems = new List<string>();
        if (options.MaxBatchSize is < 1 or > 4096)
        {
            problems.Add($"MaxBatchSize is {options.MaxBatchSize}; use 1 (one by one) to 4096, e.g. 32");
        }

        if (options.BatchWindow < TimeSpan.Zero || options.BatchWindow > TimeSpan.FromSeconds(1))
        {
            problems.Add($"BatchWindow is {options.BatchWindow}; use zero to one second, e.g. 2 ms");
        }

        if (string.IsNullOrWhiteSpace(options.Device))
        {
            problems.Add("Device is empty; use 'cpu' or 'cuda'");
        }
        else if (options.Device.StartsWith("cuda", StringComparison.Ordinal) && !torch.cuda.is_available())
        {
            problems.Add($"Device is '{options.Device}' but CUDA is not available; use 'cpu' or reference a CUDA backend on a machine with a GPU");
        }

        if (options.Generation is null)
        {
            problems.Add("Generation is null; leave the default or give GenerationOptions");
        }

        if (options.Observers.Any(o => o is null))
        {
            problems.Add("Observers holds a null entry");
        }

        if (problems.Count > 0)
        {
            throw new ArgumentException($"Invalid NicheModelOptions: {string.Join("; ", problems)}.", nameof(options));
        }
    }

    private static nn.Module BuildModel(string folder, ModelPackageManifest manifest, PretrainedLoadOptions options)
    {
        if (manifest.Architecture != ModelPackage.MeanPoolArchitecture)
        {
            return PretrainedModel.Load(folder, new PretrainedLoadOptions { Dtype = options.Dtype, Device = options.Device, Architecture = manifest.Architecture });
        }

        string configPath = Path.Combine(folder, ModelPackage.ConfigFileName);
        string configText = File.ReadAllText(configPath);
        var head = JsonNode.Parse(configText)?["nichetune_classifier"]
            ?? throw new InvalidDataException($"'{configPath}' has no nichetune_classifier section, which a MeanPoolClassifier package holds; export the package again.");
        double dropout = head["dropout"]?.GetValue<double>() ?? 0.1;
        int classes = manifest.Labels.Length;
        nn.Module body = PretrainedModel.Create(configText, manifest.BodyArchitecture
            ?? throw new InvalidDataException($"The manifest of '{folder}' names no body architecture for its MeanPoolClassifier."), options);
        var classifier = new MeanPoolClassifier(body, classes, dropout);
        try
        {
            classifier.to(options.Dtype);
            LoadWeights(classifier, Path.Combine(folder, ModelPackage.WeightsFileName));
            return classifier;
        }
        catch
        {
            classifier.Dispose();
            throw;
        }
    }

    private static void LoadWeights(nn.Module model, string path)
    {
        SafetensorsHeader header = SafetensorsFile.ReadHeader(path);
        var targets = model.state_dict().ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        var stored = header.Entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
        var problems = new List<string>();
        problems.AddRange(targets.Keys.Where(k => !stored.ContainsKey(k)).Select(k => $"'{k}' is missing"));
        problems.AddRange(stored.Keys.Where(k => !targets.ContainsKey(k)).Select(k => $"'{k}' matches no parameter"));
        problems.AddRange(stored.Values.Where(e => targets.TryGetValue(e.Name, out var t) && !t.shape.SequenceEqual(e.Shape))
            .Select(e => $"'{e.Name}' has shape [{string.Join(", ", e.Shape)}], the model [{string.Join(", ", targets[e.Name].shape)}]"));
        if (problems.Count > 0)
        {
            throw new InvalidDataException($"'{path}' does not fit the classifier its config.json describes: {string.Join("; ", problems.Take(20))}.");
        }

        using var noGrad = torch.no_grad();
        using FileStream stream = File.OpenRead(path);
        foreach (SafetensorsEntry entry in header.Entries)
        {
            using var scope = torch.NewDisposeScope();
            targets[entry.Name].copy_(SafetensorsFile.ReadTensor(stream, header, entry));
        }
    }

    private void RequireCausal(string operation)
    {
        if (!CanGenerate)
        {
            throw new NotSupportedException($"{operation} needs a causal language model, but model '{Name}' is a {Manifest.Kind} ({Manifest.Architecture}); use Classify or Embed.");
        }
    }

    private Task<PredictionRecord> Enqueue(PredictionKind kind, string text, GenerationOptions? generation, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(text);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        long arrival = Stopwatch.GetTimestamp();
        int[] ids = Tokenizer.Encode(text);
        int limit = Manifest.MaxLength;
        if (kind == PredictionKind.Generate)
        {
            limit = Math.Max(1, limit - generation!.MaxNewTokens);
            ids = ids.Length > limit ? ids[^limit..] : ids;
        }
        else if (ids.Length > limit)
        {
            ids = ids[..limit];
        }

        int minimum = kind == PredictionKind.Score ? 2 : 1;
        if (ids.Length < minimum)
        {
            throw new ArgumentException($"The text '{(text.Length > 40 ? text[..40] + "…" : text)}' has {ids.Length} token(s); {kind} needs at least {minimum}.", nameof(text));
        }

        int? unknownId = Tokenizer.SpecialTokens.Unknown;
        int unknown = unknownId is int u ? ids.Count(i => i == u) : 0;
        var request = new Request(kind, text, ids, unknown, arrival, generation);
        if (cancellationToken.CanBeCanceled)
        {
            request.Registration = cancellationToken.Register(static state => ((Request)state!).Completion.TrySetCanceled(), request);
        }

        if (!_queue.Writer.TryWrite(request))
        {
            throw new ObjectDisposedException(nameof(NicheModel), $"Model '{Name}' was disposed.");
        }

        return request.Completion.Task;
    }

    // The loop blocks its own thread instead of awaiting: every forward pass then runs on this one thread, so libtorch
    // keeps one OpenMP team. Forward passes issued from whichever pool thread resumed an await each start a team of their
    // own, and the idle teams' spinning workers take the cores the running pass needs.
    private void Run()
    {
        ChannelReader<Request> reader = _queue.Reader;
        var batch = new List<Request>(Options.MaxBatchSize);
        while (WaitToRead(reader, Timeout.InfiniteTimeSpan))
        {
            batch.Clear();
            long deadline = Stopwatch.GetTimestamp() + _windowTicks;
            while (batch.Count < Options.MaxBatchSize)
            {
                if (reader.TryRead(out Request? request))
                {
                    if (!request.Completion.Task.IsCompleted)
                    {
                        batch.Add(request);
                    }

                    continue;
                }

                long remaining = deadline - Stopwatch.GetTimestamp();
                if (batch.Count == 0 || remaining <= 0 || !WaitToRead(reader, Stopwatch.GetElapsedTime(0, remaining)))
                {
                    break;
                }
            }

            if (batch.Count == 0)
            {
                continue;
            }

            if (Volatile.Read(ref _disposed) != 0)
            {
                foreach (Request request in batch)
                {
                    request.Completion.TrySetException(new ObjectDisposedException(nameof(NicheModel), $"Model '{Name}' was disposed before this request ran."));
                }

                continue;
            }

            Execute(batch);
        }
    }

    private static bool WaitToRead(ChannelReader<Request> reader, TimeSpan timeout)
    {
        ValueTask<bool> wait = reader.WaitToReadAsync();
        if (wait.IsCompleted)
        {
            return wait.Result;
        }

        Task<bool> pending = wait.AsTask();
        return pending.Wait(timeout) && pending.Result;
    }

    private void Execute(List<Request> batch)
    {
        foreach (var group in batch.GroupBy(r => (r.Kind, r.Generation)))
        {
            Request[] requests = [.. group];
            PredictionRecord[] records;
            try
            {
                using (torch.no_grad())
                using (torch.NewDisposeScope())
                {
                    records = group.Key.Kind switch
                    {
                        PredictionKind.Classify => RunClassify(requests),
                        PredictionKind.Score => RunScore(requests),
                        PredictionKind.Generate => RunGenerate(requests, group.Key.Generation!),
                        _ => RunEmbed(requests),
                    };
                }
            }
            catch (Exception ex)
            {
                Log.BatchFailed(_logger, ex, Name, requests.Length, group.Key.Kind);
                foreach (Request request in requests)
                {
                    request.Completion.TrySetException(ex);
                    request.Registration.Dispose();
                }

                continue;
            }

            Interlocked.Increment(ref _batches);
            Interlocked.Add(ref _requests, requests.Length);
            // An ImmutableArray is one array reference, so this read is atomic; AddObserver swaps it with ImmutableInterlocked.
            ImmutableArray<IPredictionObserver> observers = _observers;
            for (int i = 0; i < requests.Length; i++)
            {
                requests[i].Completion.TrySetResult(records[i]);
                requests[i].Registration.Dispose();
                foreach (IPredictionObserver observer in observers)
                {
                    try
                    {
                        observer.Observe(records[i]);
                    }
                    catch (Exception ex)
                    {
                        Log.ObserverFailed(_logger, ex, Name, observer.GetType().Name, records[i].Kind);
                    }
                }
            }
        }
    }

    private (Tensor Ids, Tensor Mask) Pad(Request[] requests)
    {
        int width = requests.Max(r => r.Ids.Length);
        var ids = new long[requests.Length * width];
        var mask = new long[requests.Length * width];
        for (int row = 0; row < requests.Length; row++)
        {
            int[] tokens = requests[row].Ids;
            int offset = row * width;
            for (int t = 0; t < width; t++)
            {
                bool real = t < tokens.Length;
                ids[offset + t] = real ? tokens[t] : _paddingId;
                mask[offset + t] = real ? 1 : 0;
            }
        }

        return (torch.tensor(ids, [requests.Length, width], device: _device), torch.tensor(mask, [requests.Length, width], device: _device));
    }

    private PredictionRecord[] RunClassify(Request[] requests)
    {
        float[][] probabilities;
        if (_zeroShot is not null)
        {
            IReadOnlyList<LabelPrediction> predictions = _zeroShot.PredictAll([.. requests.Select(r => r.Text)]);
            probabilities = [.. predictions.Select(p => Softmax(p.Scores))];
        }
        else
        {
            (Tensor ids, Tensor mask) = Pad(requests);
            Tensor logits = _model switch
            {
                MeanPoolClassifier classifier => classifier.call(ids, mask),
                BertForSequenceClassification bert => bert.call(ids, mask),
                _ => throw new InvalidOperationException($"{_model.GetType().Name} is not a classifier."),
            };
            probabilities = Rows(nn.functional.softmax(logits.to_type(ScalarType.Float32), 1));
        }

        var records = new PredictionRecord[requests.Length];
        for (int i = 0; i < requests.Length; i++)
        {
            float[] p = probabilities[i];
            int best = 0;
            for (int c = 1; c < p.Length; c++)
            {
                if (p[c] > p[best])
                {
                    best = c;
                }
            }

            records[i] = Record(requests[i], PredictionKind.Classify) with { Probabilities = [.. p], PredictedLabel = Labels!.LabelOf(best) };
        }

        return records;
    }

    private PredictionRecord[] RunScore(Request[] requests)
    {
        (Tensor ids, Tensor mask) = Pad(requests);
        var model = (IHiddenStateModel)_model;
        Tensor hidden = model.HiddenStates(ids, mask);
        Tensor logits = nn.functional.linear(hidden, model.OutputWeight, model.OutputBias).to_type(ScalarType.Float32);
        long predicted = ids.shape[1] - 1;
        Tensor logProbabilities = nn.functional.log_softmax(logits.narrow(1, 0, predicted), -1);
        Tensor targets = ids.narrow(1, 1, predicted).unsqueeze(-1);
        Tensor tokenScores = logProbabilities.gather(-1, targets).squeeze(-1) * mask.narrow(1, 1, predicted).to_type(ScalarType.Float32);
        double[] sums = tokenScores.sum(dim: 1).to_type(ScalarType.Float64).cpu().data<double>().ToArray();
        return [.. requests.Select((r, i) => Record(r, PredictionKind.Score) with { LogLikelihood = sums[i] })];
    }

    private PredictionRecord[] RunGenerate(Request[] requests, GenerationOptions options)
    {
        IReadOnlyList<GeneratedSequence> sequences = TextGenerator.GenerateBatch((ICausalLanguageModel)_model, [.. requests.Select(r => (IReadOnlyList<int>)r.Ids)], options);
        return [.. requests.Select((r, i) => Record(r, PredictionKind.Generate) with { Output = Tokenizer.Decode(sequences[i].Tokens) })];
    }

    private PredictionRecord[] RunEmbed(Request[] requests)
    {
        (Tensor ids, Tensor mask) = Pad(requests);
        Tensor pooled;
        if (_model is MeanPoolClassifier classifier)
        {
            pooled = classifier.Embed(ids, mask);
        }
        else
        {
            Tensor hidden = _model switch
            {
                BertForSequenceClassification bert => bert.Bert.forward(ids, mask),
                IHiddenStateModel causal => causal.HiddenStates(ids, mask),
                _ => throw new InvalidOperationException($"{_model.GetType().Name} has no hidden states to embed."),
            };
            Tensor weights = mask.to_type(hidden.dtype).unsqueeze(-1);
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp_min(Scalars.One);
        }

        float[][] rows = Rows(pooled.to_type(ScalarType.Float32));
        return [.. requests.Select((r, i) => Record(r, PredictionKind.Embed) with { Embedding = [.. rows[i]] })];
    }

    private static PredictionRecord Record(Request request, PredictionKind kind) => new(
        DateTimeOffset.UtcNow, kind, request.Text, request.Ids.Length, request.UnknownCount, [], null, null, [], null,
        Stopwatch.GetElapsedTime(request.Arrival));

    private static float[][] Rows(Tensor matrix)
    {
        float[] flat = matrix.cpu().contiguous().data<float>().ToArray();
        int rows = (int)matrix.shape[0];
        int width = (int)matrix.shape[1];
        return [.. Enumerable.Range(0, rows).Select(r => flat.AsSpan(r * width, width).ToArray())];
    }

    private static float[] Softmax(IReadOnlyList<double> scores)
    {
        double max = scores.Max();
        double[] e = [.. scores.Select(s => Math.Exp(s - max))];
        double sum = e.Sum();
        return [.. e.Select(v => (float)(v / sum))];
    }

    private sealed class Request(PredictionKind kind, string text, int[] ids, int unknownCount, long arrival, GenerationOptions? generation)
    {
        public PredictionKind Kind { get; } = kind;

        public string Text { get; } = text;

        public int[] Ids { get; } = ids;

        public int UnknownCount { get; } = unknownCount;

        public long Arrival { get; } = arrival;

        public GenerationOptions? Generation { get; } = generation;

        public TaskCompletionSource<PredictionRecord> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public CancellationTokenRegistration Registration { get; set; }
    }
}
