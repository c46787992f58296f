using System;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune.Models;

/// <summary>
/// The attention keys and values of every layer for the tokens a model has already processed, so that
/// generating one more token costs one position of work instead of re-running the whole sequence.
/// </summary>
/// <remarks>
/// <para>
/// The tensors live outside every dispose scope (a generation step's scope must not free them); dispose the
/// cache when generation ends. Storage grows by doubling, so a cache created with a small capacity still works
/// for long sequences.
/// </para>
/// <para>
/// A model extends the cache in two steps: every layer appends its keys and values for the new positions, then
/// the model advances <see cref="Length"/> once. A forward pass that fails half way therefore leaves
/// <see cref="Length"/> unchanged.
/// </para>
/// </remarks>
public sealed class KeyValueCache : IDisposable
{
    private readonly Tensor?[] _keys;
    private readonly Tensor?[] _values;
    private readonly int _initialCapacity;
    private bool _disposed;

    /// <summary>Creates an empty cache for a model with <paramref name="layerCount"/> layers.</summary>
    /// <param name="layerCount">The model's number of layers (<see cref="ICausalLanguageModel.LayerCount"/>).</param>
    /// <param name="initialCapacity">
    /// How many positions to allocate on first use (typically prompt length + new tokens); 0 picks a small
    /// default. The storage doubles whenever it is exceeded.
    /// </param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="layerCount"/> is not positive or <paramref name="initialCapacity"/> is negative.</exception>
    public KeyValueCache(int layerCount, int initialCapacity = 0)
    {
        if (layerCount <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(layerCount), layerCount, $"A key/value cache needs at least one layer but layerCount is {layerCount}; pass the model's LayerCount.");
        }

        if (initialCapacity < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(initialCapacity), initialCapacity, $"initialCapacity ({initialCapacity}) must be >= 0; use 0 for the default.");
        }

        LayerCount = layerCount;
        _initialCapacity = initialCapacity;
        _keys = new Tensor?[layerCount];
        _values = new Tensor?[layerCount];
    }

    /// <summary>The number of layers this cache holds keys and values for.</summary>
    public int LayerCount { get; }

    /// <summary>The number of positions cached so far; the position of the next token a model is given.</summary>
    public int Length { get; private set; }

    /// <summary>The batch size fixed by the first use; 0 while the cache is empty and unused.</summary>
    public long BatchSize { get; private set; }

    /// <summary>Forgets the cached positions (keeping the storage) so the cache can serve a new sequence of the same batch size.</summary>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public void Reset()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Length = 0;
    }

    /// <summary>Frees the cached tensors.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        for (var i = 0; i < LayerCount; i++)
        {
            _keys[i]?.Dispose();
            _values[i]?.Dispose();
            _keys[i] = null;
            _values[i] = null;
        }
    }

    /// <summary>
    /// Checks, before a forward pass, that the cache fits a model with <paramref name="layerCount"/> layers,
    /// a batch of <paramref name="batch"/> rows and <paramref name="newTokens"/> more positions within <paramref name="contextLength"/>.
    /// </summary>
    internal void EnsureUsable(int layerCount, long batch, long newTokens, int contextLength)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (torch.is_grad_enabled())
        {
            throw new InvalidOperationException(
                "A KeyValueCache is for inference: call the model under torch.no_grad() (TextGenerator does), or pass no cache to train.");
        }

        if (layerCount != LayerCount)
        {
            throw new ArgumentException(
                $"The cache holds {LayerCount} layers but the model has {layerCount}; create the cache with the model's LayerCount.",
                "cache");
        }

        if (BatchSize != 0 && Length > 0 && batch != BatchSize)
        {
            throw new ArgumentException(
                $"The cache holds a batch of {BatchSize} rows but the input has {batch}; feed the same rows on every step, or Reset() the cache for a new batch.",
                "cache");
        }

        if (Length + newTokens > contextLength)
        {
            throw new ArgumentException(
                $"The cache already holds {Length} positions and the input adds {newTokens}, which exceeds the model's context length ({contextLength}); " +
                "generate fewer tokens or shorten the prompt.",
                "inputIds");
        }
    }

    /// <summary>
    /// Writes the keys and values [B, H, T, D] of the new positions of <paramref name="layer"/> after the
    /// <see cref="Length"/> cached ones and returns views of all Length + T positions. The views belong to the
    /// caller's dispose scope; the storage does not.
    /// </summary>
    internal (Tensor Key, Tensor Value) Append(int layer, Tensor key, Tensor value)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var newLength = Length + key.size(2);
        if (Length == 0)
        {
            BatchSize = key.size(0);
        }

        var keys = Reserve(ref _keys[layer], key, newLength);
        var values = Reserve(ref _values[layer], value, newLength);
        keys.narrow(2, Length, key.size(2)).copy_(key);
        values.narrow(2, Length, value.size(2)).copy_(value);
        return (keys.narrow(2, 0, newLength), values.narrow(2, 0, newLength));
    }

    /// <summary>Makes the positions appended by the last forward pass part of the cache.</summary>
    internal void Advance(long newTokens) => Length += checked((int)newTokens);

    /// <summary>
    /// The attention mask for <paramref name="queries"/> new positions that follow <paramref name="offset"/>
    /// cached ones: null when plain causal attention (or none) is right, else a boolean [Tq, offset + Tq] mask
    /// (true = may attend). libtorch's causal flag aligns the triangle to the top-left corner, which is wrong
    /// as soon as keys outnumber queries, hence the explicit mask.
    /// </summary>
    internal static Tensor? CausalMask(long queries, long offset, Device device)
    {
        if (queries == 1 || offset == 0)
        {
            return null;
        }

        return torch.ones(queries, offset + queries, dtype: ScalarType.Bool, device: device).tril_(offset);
    }

    private Tensor Reserve(ref Tensor? storage, Tensor incoming, long needed)
    {
        var shapeMatches = storage is not null &&
            storage.size(0) == incoming.size(0) && storage.size(1) == incoming.size(1) && storage.size(3) == incoming.size(3) &&
            storage.dtype == incoming.dtype && storage.device_type == incoming.device_type && storage.device_index == incoming.device_index;
        if (shapeMatches && storage!.size(2) >= needed)
        {
            return storage;
        }

        if (!shapeMatches && storage is not null && Length > 0)
        {
            throw new ArgumentException(
                $"The cache holds keys of shape [{storage.size(0)}, {storage.size(1)}, *, {storage.size(3)}] ({storage.dtype}) but the model produced " +
                $"[{incoming.size(0)}, {incoming.size(1)}, *, {incoming.size(3)}] ({incoming.dtype}); use one cache per model, or Reset() it first.",
                "cache");
        }

        var previous = shapeMatches ? storage!.size(2) : 0;
        var capacity = Math.Max(needed, Math.Max(2 * previous, _initialCapacity > 0 ? _initialCapacity : 16));
        var grown = torch.empty([incoming.size(0), incoming.size(1), capacity, incoming.size(3)], dtype: incoming.dtype, device: incoming.device);
        grown.DetachFromDisposeScope();
        if (shapeMatches && Length > 0)
        {
            grown.narrow(2, 0, Length).copy_(storage!.narrow(2, 0, Length));
        }

        storage?.Dispose();
        storage = grown;
        return grown;
    }
}
