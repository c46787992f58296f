using System.Collections;
using System.Text.Json;
using NicheTune.Training;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace NicheTune.Models;

/// <summary>A checkpoint's tensors by name, with their stored dtype and shape known before any data is read.</summary>
internal interface ICheckpointSource : IDisposable
{
    IReadOnlyList<string> Files { get; }

    IReadOnlyDictionary<string, (ScalarType Dtype, long[] Shape)> Tensors { get; }

    /// <summary>A new CPU tensor with the stored dtype; the caller disposes it.</summary>
    Tensor Read(string name);
}

internal static class CheckpointSources
{
    public const string SafetensorsFileName = "model.safetensors";
    public const string SafetensorsIndexFileName = "model.safetensors.index.json";
    public const string PickleFileName = "pytorch_model.bin";
    public const string PickleIndexFileName = "pytorch_model.bin.index.json";

    /// <summary>Opens the weights of <paramref name="folder"/>: safetensors (one file or an index of shards), or pickle when allowed.</summary>
    public static ICheckpointSource Open(string folder, bool allowPickle)
    {
        string single = Path.Combine(folder, SafetensorsFileName);
        if (File.Exists(single))
        {
            return new SafetensorsSource([single], null);
        }

        string index = Path.Combine(folder, SafetensorsIndexFileName);
        if (File.Exists(index))
        {
            var map = ReadIndex(index);
            return new SafetensorsSource(map.Values.Distinct(StringComparer.Ordinal).Select(f => Path.Combine(folder, f)).ToArray(), (index, map));
        }

        string pickle = Path.Combine(folder, PickleFileName);
        string pickleIndex = Path.Combine(folder, PickleIndexFileName);
        if (File.Exists(pickle) || File.Exists(pickleIndex))
        {
            string found = File.Exists(pickle) ? pickle : pickleIndex;
            if (!allowPickle)
            {
                throw new NotSupportedException(
                    $"'{found}' holds the weights as a Python pickle, and reading pickle is off by default: pickle is a program format " +
                    "(loading it in Python can run arbitrary code) and its parser is far more exposed to a crafted file than a safetensors header. " +
                    "Convert the checkpoint once to model.safetensors (in Python: safetensors.torch.save_file(torch.load(path), 'model.safetensors')), " +
                    "or, for a file from a source you trust, set PretrainedLoadOptions.AllowPickle = true.");
            }

            return File.Exists(pickle)
                ? new PickleSource([pickle])
                : new PickleSource(ReadIndex(pickleIndex).Values.Distinct(StringComparer.Ordinal).Select(f => Path.Combine(folder, f)).ToArray());
        }

        throw new FileNotFoundException(
            $"'{folder}' holds no weights: expected {SafetensorsFileName}, {SafetensorsIndexFileName} (sharded) or {PickleFileName} next to config.json.",
            single);
    }

    /// <summary>Reads a Hugging Face shard index: <c>{"metadata": {...}, "weight_map": {tensor: file}}</c>.</summary>
    public static Dictionary<string, string> ReadIndex(string path)
    {
        try
        {
            using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(path));
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("weight_map", out JsonElement weightMap) || weightMap.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidDataException($"'{path}' is not a shard index: it needs a 'weight_map' object from tensor names to file names.");
            }

            var map = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (JsonProperty entry in weightMap.EnumerateObject())
            {
                string? file = entry.Value.ValueKind == JsonValueKind.String ? entry.Value.GetString() : null;
                // Shards live next to the index: a path would let an index read files anywhere.
                if (string.IsNullOrEmpty(file) || Path.GetFileName(file) != file || file is "." or "..")
                {
                    throw new InvalidDataException($"'{path}' maps tensor '{entry.Name}' to {entry.Value.GetRawText()}, which is not a file name in the same folder.");
                }

                if (!map.TryAdd(entry.Name, file))
                {
                    throw new InvalidDataException($"'{path}' maps tensor '{entry.Name}' twice.");
                }
            }

            return map;
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"'{path}' is not valid JSON: {ex.Message}", ex);
        }
    }

    private sealed class SafetensorsSource : ICheckpointSource
    {
        private readonly Dictionary<string, (SafetensorsHeader Header, SafetensorsEntry Entry)> _byName = new(StringComparer.Ordinal);
        private readonly Dictionary<string, (ScalarType, long[])> _tensors = new(StringComparer.Ordinal);
        private FileStream? _stream;

        public SafetensorsSource(string[] files, (string Path, Dictionary<string, string> Map)? index)
        {
            Files = files.Select(Path.GetFileName).ToArray()!;
            var headers = new Dictionary<string, SafetensorsHeader>(StringComparer.Ordinal);
            foreach (string file in files)
            {
                if (!File.Exists(file))
                {
                    throw new InvalidDataException($"'{index?.Path}' names shard '{Path.GetFileName(file)}', which does not exist; the download is incomplete.");
                }

                headers[Path.GetFileName(file)] = SafetensorsFile.ReadHeader(file);
            }

            if (index is null)
            {
                foreach (SafetensorsEntry entry in headers.Values.Single().Entries)
                {
                    Add(headers.Values.Single(), entry);
                }

                return;
            }

            foreach ((string name, string file) in index.Value.Map)
            {
                SafetensorsHeader header = headers[file];
                SafetensorsEntry? entry = header.Entries.FirstOrDefault(e => e.Name == name);
                if (entry is null)
                {
                    throw new InvalidDataException($"'{index.Value.Path}' says tensor '{name}' is in '{file}', but that shard does not hold it; the shards and the index do not belong together.");
                }

                Add(header, entry);
            }
        }

        public IReadOnlyList<string> Files { get; }

        public IReadOnlyDictionary<string, (ScalarType Dtype, long[] Shape)> Tensors => _tensors;

        public Tensor Read(string name)
        {
            var (header, entry) = _byName[name];
            if (_stream is null || _stream.Name != header.Path)
            {
                _stream?.Dispose();
                _stream = new FileStream(header.Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            }

            return SafetensorsFile.ReadTensor(_stream, header, entry);
        }

        public void Dispose() => _stream?.Dispose();

        private void Add(SafetensorsHeader header, SafetensorsEntry entry)
        {
            _byName[entry.Name] = (header, entry);
            _tensors[entry.Name] = (entry.Dtype, entry.Shape);
        }
    }

    private sealed class PickleSource : ICheckpointSource
    {
        private readonly Dictionary<string, Tensor> _loaded = new(StringComparer.Ordinal);
        private readonly Dictionary<string, (ScalarType, long[])> _tensors = new(StringComparer.Ordinal);

        public PickleSource(string[] files)
        {
            Files = files.Select(Path.GetFileName).ToArray()!;
            try
            {
                foreach (string file in files)
                {
                    Hashtable table;
                    try
                    {
                        table = PyTorchUnpickler.UnpickleStateDict(file);
                    }
                    catch (Exception ex) when (ex is not OutOfMemoryException)
                    {
                        throw new InvalidDataException($"'{file}' could not be read as a PyTorch state dict: {ex.Message}", ex);
                    }

                    foreach (DictionaryEntry item in table)
                    {
                        if (item.Key is string name && item.Value is Tensor tensor)
                        {
                            _loaded[name] = tensor.DetachFromDisposeScope();
                            _tensors[name] = (tensor.dtype, tensor.shape);
                        }
                    }
                }
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        public IReadOnlyList<string> Files { get; }

        public IReadOnlyDictionary<string, (ScalarType Dtype, long[] Shape)> Tensors => _tensors;

        public Tensor Read(string name) => _loaded[name].alias();

        public void Dispose()
        {
            foreach (Tensor tensor in _loaded.Values)
            {
                tensor.Dispose();
            }

            _loaded.Clear();
        }
    }
}
