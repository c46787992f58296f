using System.Globalization;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace NicheTune.Training;

/// <summary>
/// Reads and writes checkpoint folders: <c>model.safetensors</c> (the model's own parameter names),
/// <c>optimizer.bin</c>, <c>rng_state.bin</c>, <c>trainer_state.json</c> and, with early stopping,
/// <c>best_model.safetensors</c>. Every folder is written under a temporary name and renamed into place, so a
/// crash leaves either the previous checkpoint or the new one, never a half-written one.
/// </summary>
internal static class CheckpointStore
{
    public const string ModelFile = "model.safetensors";
    public const string OptimizerFile = "optimizer.bin";
    public const string RngFile = "rng_state.bin";
    public const string StateFile = "trainer_state.json";
    public const string BestModelFile = "best_model.safetensors";
    public const string RegularizersFile = "regularizers.safetensors";
    public const string Prefix = "checkpoint-";

    private const string TempMarker = ".tmp-";
    private const string OldMarker = ".old-";

    /// <summary>Test hook: runs after the files are written and before the rename.</summary>
    internal static Action<string>? BeforeCommitForTesting { get; set; }

    public static string FolderName(long step) => Prefix + step.ToString("D8", CultureInfo.InvariantCulture);

    public static string Save(string target, nn.Module model, OptimizerHelper optimizer, TrainerState state, IReadOnlyDictionary<string, Tensor>? bestWeights, IReadOnlyDictionary<string, Tensor>? regularizerState = null)
    {
        WriteAtomically(target, folder =>
        {
            model.save_safetensors(Path.Combine(folder, ModelFile));
            optimizer.save_state_dict(Path.Combine(folder, OptimizerFile));
            using (Tensor rng = torch.get_rng_state())
            {
                File.WriteAllBytes(Path.Combine(folder, RngFile), rng.data<byte>().ToArray());
            }

            if (bestWeights is not null)
            {
                Safetensors.SaveStateDict(Path.Combine(folder, BestModelFile), new Dictionary<string, Tensor>(bestWeights));
            }

            if (regularizerState is { Count: > 0 })
            {
                Safetensors.SaveStateDict(Path.Combine(folder, RegularizersFile), new Dictionary<string, Tensor>(regularizerState));
            }

            File.WriteAllText(Path.Combine(folder, StateFile), state.ToJson());
        });
        return target;
    }

    public static TrainerState ReadState(string folder)
    {
        string statePath = Path.Combine(folder, StateFile);
        return TrainerState.FromJson(File.ReadAllText(statePath), statePath);
    }

    public static TrainerState Load(string folder, nn.Module model, OptimizerHelper optimizer, IDictionary<string, Tensor>? bestWeights, IDictionary<string, Tensor>? regularizerState = null)
    {
        TrainerState state = ReadState(folder);
        string modelPath = Path.Combine(folder, ModelFile);
        SafetensorsFile.Validate(modelPath);
        try
        {
            model.load_safetensors(modelPath, strict: true);
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or IOException or FormatException)
        {
            throw new InvalidDataException($"Checkpoint '{modelPath}' does not match the model (different parameter names or shapes, or a truncated file): {ex.Message}", ex);
        }

        optimizer.load_state_dict(Path.Combine(folder, OptimizerFile));
        byte[] rng = File.ReadAllBytes(Path.Combine(folder, RngFile));
        using (Tensor rngState = torch.tensor(rng, dtype: ScalarType.Byte))
        {
            torch.set_rng_state(rngState);
        }

        string bestPath = Path.Combine(folder, BestModelFile);
        if (bestWeights is not null && state.HasBestWeights && File.Exists(bestPath))
        {
            SafetensorsFile.Validate(bestPath);
            foreach ((string name, Tensor tensor) in Safetensors.LoadStateDict(bestPath))
            {
                bestWeights[name] = tensor.DetachFromDisposeScope();
            }
        }

        string regularizersPath = Path.Combine(folder, RegularizersFile);
        if (regularizerState is not null && File.Exists(regularizersPath))
        {
            SafetensorsFile.Validate(regularizersPath);
            foreach ((string name, Tensor tensor) in Safetensors.LoadStateDict(regularizersPath))
            {
                regularizerState[name] = tensor.DetachFromDisposeScope();
            }
        }

        return state;
    }

    /// <summary>Finds the checkpoint folder <paramref name="path"/> names: itself, or its latest <c>checkpoint-*</c> child.</summary>
    public static string? Resolve(string path)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            return null;
        }

        RecoverInterruptedSwap(path);
        if (File.Exists(Path.Combine(path, StateFile)))
        {
            return path;
        }

        if (!Directory.Exists(path))
        {
            return null;
        }

        foreach (string aside in Directory.GetDirectories(path, Prefix + "*" + OldMarker + "*"))
        {
            string name = Path.GetFileName(aside);
            RecoverInterruptedSwap(Path.Combine(path, name[..name.IndexOf(OldMarker, StringComparison.Ordinal)]));
        }

        return Directory.GetDirectories(path, Prefix + "*")
            .Where(d => !IsScratch(d) && File.Exists(Path.Combine(d, StateFile)))
            .OrderByDescending(d => Path.GetFileName(d), StringComparer.Ordinal)
            .FirstOrDefault();
    }

    /// <summary>Deletes all but the newest <paramref name="keep"/> checkpoints in <paramref name="root"/>.</summary>
    public static void Prune(string root, int keep)
    {
        string[] all = Directory.GetDirectories(root, Prefix + "*")
            .Where(d => !IsScratch(d))
            .OrderByDescending(d => Path.GetFileName(d), StringComparer.Ordinal)
            .ToArray();
        for (int i = keep; i < all.Length; i++)
        {
            Directory.Delete(all[i], recursive: true);
        }
    }

    /// <summary>
    /// Writes a folder atomically: <paramref name="write"/> fills a sibling temporary folder, every file is flushed to
    /// disk, then the folder is renamed into place (an existing one is first renamed aside and deleted after).
    /// </summary>
    public static void WriteAtomically(string target, Action<string> write)
    {
        string full = Path.GetFullPath(target).TrimEnd(Path.DirectorySeparatorChar);
        string parent = Path.GetDirectoryName(full) ?? throw new ArgumentException($"'{target}' has no parent folder.", nameof(target));
        Directory.CreateDirectory(parent);
        string suffix = Guid.NewGuid().ToString("N")[..8];
        string temp = full + TempMarker + suffix;
        Directory.CreateDirectory(temp);
        try
        {
            write(temp);
            foreach (string file in Directory.GetFiles(temp))
            {
                using var stream = new FileStream(file, FileMode.Open, FileAccess.ReadWrite);
                stream.Flush(flushToDisk: true);
            }

            BeforeCommitForTesting?.Invoke(temp);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }

        string? aside = null;
        if (Directory.Exists(full))
        {
            aside = full + OldMarker + suffix;
            Directory.Move(full, aside);
        }

        Directory.Move(temp, full);
        if (aside is not null)
        {
            TryDelete(aside);
        }
    }

    // A crash between the two renames leaves only "<target>.old-*": put it back.
    private static void RecoverInterruptedSwap(string target)
    {
        string full = Path.GetFullPath(target).TrimEnd(Path.DirectorySeparatorChar);
        string? parent = Path.GetDirectoryName(full);
        if (parent is null || !Directory.Exists(parent) || Directory.Exists(full))
        {
            return;
        }

        string? aside = Directory.GetDirectories(parent, Path.GetFileName(full) + OldMarker + "*").FirstOrDefault();
        if (aside is not null)
        {
            Directory.Move(aside, full);
        }
    }

    private static bool IsScratch(string folder)
    {
        string name = Path.GetFileName(folder);
        return name.Contains(TempMarker, StringComparison.Ordinal) || name.Contains(OldMarker, StringComparison.Ordinal);
    }

    private static void TryDelete(string folder)
    {
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
