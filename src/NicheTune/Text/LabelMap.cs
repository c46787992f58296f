using System.Globalization;
using System.Text.Json;

namespace NicheTune.Text;

/// <summary>
/// The mapping between class labels as written in the data ("networking", "language") and the ids a classifier
/// predicts. Built in a stable order (ordinal sort) so the same labels always get the same ids, whatever order the
/// records come in; saved beside the model as JSON in Hugging Face's <c>id2label</c>/<c>label2id</c> form.
/// </summary>
public sealed class LabelMap
{
    private readonly string[] _labels;
    private readonly Dictionary<string, int> _ids;

    /// <summary>Creates a map whose ids are the positions of <paramref name="labelsInIdOrder"/>.</summary>
    /// <param name="labelsInIdOrder">The labels; id i is the i-th.</param>
    /// <exception cref="ArgumentException">The list is empty, or a label is null, empty or repeated.</exception>
    public LabelMap(IEnumerable<string> labelsInIdOrder)
    {
        ArgumentNullException.ThrowIfNull(labelsInIdOrder);
        _labels = [.. labelsInIdOrder];
        if (_labels.Length == 0)
        {
            throw new ArgumentException("A label map needs at least one label.", nameof(labelsInIdOrder));
        }

        _ids = new Dictionary<string, int>(_labels.Length, StringComparer.Ordinal);
        for (int i = 0; i < _labels.Length; i++)
        {
            string label = _labels[i];
            if (string.IsNullOrEmpty(label))
            {
                throw new ArgumentException($"Label {i} is null or empty; every class needs a name.", nameof(labelsInIdOrder));
            }

            if (!_ids.TryAdd(label, i))
            {
                throw new ArgumentException($"Label '{label}' appears at ids {_ids[label]} and {i}; labels must be distinct.", nameof(labelsInIdOrder));
            }
        }
    }

    /// <summary>The labels in id order.</summary>
    public IReadOnlyList<string> Labels => _labels;

    /// <summary>The number of classes (the classifier's output width).</summary>
    public int Count => _labels.Length;

    /// <summary>Builds a map from the labels seen in the data: distinct, ordinal-sorted, <see langword="null"/>s ignored.</summary>
    /// <param name="labels">Labels as they occur (e.g. <c>records.Select(r =&gt; r.Label)</c>).</param>
    /// <returns>The map.</returns>
    /// <exception cref="ArgumentException">No non-empty label was seen.</exception>
    public static LabelMap FromLabels(IEnumerable<string?> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        var distinct = new SortedSet<string>(StringComparer.Ordinal);
        foreach (string? label in labels)
        {
            if (!string.IsNullOrEmpty(label))
            {
                distinct.Add(label);
            }
        }

        if (distinct.Count == 0)
        {
            throw new ArgumentException("No labels were found; check the label field or column name.", nameof(labels));
        }

        return new LabelMap(distinct);
    }

    /// <summary>The id of <paramref name="label"/>.</summary>
    /// <param name="label">A known label.</param>
    /// <returns>Its id.</returns>
    /// <exception cref="KeyNotFoundException">The label is not in the map; the message lists the known ones.</exception>
    public int IdOf(string label)
    {
        ArgumentNullException.ThrowIfNull(label);
        return _ids.TryGetValue(label, out int id)
            ? id
            : throw new KeyNotFoundException($"Label '{label}' is not in the label map; known labels: {string.Join(", ", _labels.Take(20))}{(_labels.Length > 20 ? ", …" : string.Empty)}.");
    }

    /// <summary>Looks up the id of <paramref name="label"/>.</summary>
    /// <param name="label">A label.</param>
    /// <param name="id">Its id, when known.</param>
    /// <returns>Whether the label is known.</returns>
    public bool TryGetId(string label, out int id)
    {
        ArgumentNullException.ThrowIfNull(label);
        return _ids.TryGetValue(label, out id);
    }

    /// <summary>The label of class <paramref name="id"/>.</summary>
    /// <param name="id">A class id.</param>
    /// <returns>Its label.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="id"/> is not in [0, <see cref="Count"/>).</exception>
    public string LabelOf(int id) =>
        id >= 0 && id < _labels.Length
            ? _labels[id]
            : throw new ArgumentOutOfRangeException(nameof(id), id, $"Class id {id} is outside [0, {_labels.Length}).");

    /// <summary>The map as JSON: <c>{"id2label": {"0": "…"}, "label2id": {"…": 0}}</c>, the fields of a Hugging Face <c>config.json</c>.</summary>
    /// <returns>The JSON text.</returns>
    public string ToJson()
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            writer.WriteStartObject("id2label");
            for (int i = 0; i < _labels.Length; i++)
            {
                writer.WriteString(i.ToString(CultureInfo.InvariantCulture), _labels[i]);
            }

            writer.WriteEndObject();
            writer.WriteStartObject("label2id");
            for (int i = 0; i < _labels.Length; i++)
            {
                writer.WriteNumber(_labels[i], i);
            }

            writer.WriteEndObject();
            writer.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>Reads a map written by <see cref="ToJson"/> (or any JSON with an <c>id2label</c> object, such as a Hugging Face <c>config.json</c>).</summary>
    /// <param name="json">The JSON text.</param>
    /// <returns>The map.</returns>
    /// <exception cref="InvalidDataException">The JSON has no <c>id2label</c>, its ids are not 0…n-1, or <c>label2id</c> disagrees with it.</exception>
    public static LabelMap FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            using var document = JsonDocument.Parse(json);
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("id2label", out JsonElement id2label) || id2label.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidDataException("The label map JSON has no \"id2label\" object; write it with LabelMap.ToJson or Save.");
            }

            var byId = new SortedDictionary<int, string>();
            foreach (JsonProperty entry in id2label.EnumerateObject())
            {
                if (!int.TryParse(entry.Name, NumberStyles.None, CultureInfo.InvariantCulture, out int id) || entry.Value.ValueKind != JsonValueKind.String)
                {
                    throw new InvalidDataException($"id2label entry \"{entry.Name}\" must map a non-negative integer id to a string label.");
                }

                byId[id] = entry.Value.GetString()!;
            }

            int expected = 0;
            foreach (int id in byId.Keys)
            {
                if (id != expected++)
                {
                    throw new InvalidDataException($"id2label must number its labels 0…{byId.Count - 1} without gaps, but id {expected - 1} is missing.");
                }
            }

            var map = new LabelMap(byId.Values);
            if (root.TryGetProperty("label2id", out JsonElement label2id) && label2id.ValueKind == JsonValueKind.Object)
            {
                foreach (JsonProperty entry in label2id.EnumerateObject())
                {
                    if (!map.TryGetId(entry.Name, out int id) || !entry.Value.TryGetInt32(out int given) || given != id)
                    {
                        throw new InvalidDataException($"label2id maps '{entry.Name}' to {entry.Value.GetRawText()}, but id2label gives it {(map.TryGetId(entry.Name, out int known) ? known.ToString(CultureInfo.InvariantCulture) : "no id")}; the two must agree.");
                    }
                }
            }

            return map;
        }
        catch (JsonException exception)
        {
            throw new InvalidDataException($"The label map is not valid JSON: {exception.Message}", exception);
        }
        catch (ArgumentException exception)
        {
            throw new InvalidDataException($"The label map JSON is not a valid map: {exception.Message}", exception);
        }
    }

    /// <summary>Writes <see cref="ToJson"/> to <paramref name="path"/>.</summary>
    /// <param name="path">The file (e.g. <c>labels.json</c> in the model folder).</param>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        File.WriteAllText(path, ToJson());
    }

    /// <summary>Reads a map saved with <see cref="Save"/>.</summary>
    /// <param name="path">The file.</param>
    /// <returns>The map.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a label map.</exception>
    public static LabelMap Load(string path)
    {
        TokenIds.RequireFile(path, "Label map");
        return FromJson(File.ReadAllText(path));
    }
}
