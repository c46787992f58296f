using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NicheTune.Tests.Support;

/// <summary>A small causal LM for fast tests: embedding of the current and previous token → MLP → next-token logits.</summary>
internal sealed class TinyCausalLm : nn.Module<Tensor, Tensor>
{
    private readonly Embedding embed;
    private readonly Embedding previous;
    private readonly Linear hidden;
    private readonly Dropout dropout;
    private readonly Linear head;

    public TinyCausalLm(int vocabulary, int width = 32, double dropoutRate = 0.1) : base(nameof(TinyCausalLm))
    {
        embed = nn.Embedding(vocabulary, width);
        previous = nn.Embedding(vocabulary, width);
        hidden = nn.Linear(width, width);
        dropout = nn.Dropout(dropoutRate);
        head = nn.Linear(width, vocabulary);
        RegisterComponents();
    }

    public override Tensor forward(Tensor inputIds)
    {
        // previous token at t = token t−1 (token 0 for the first position): a bigram-plus model, causal by construction.
        Tensor shifted = nn.functional.pad(inputIds, [1, 0])[TensorIndex.Colon, TensorIndex.Slice(0, -1)];
        Tensor h = embed.forward(inputIds) + previous.forward(shifted);
        h = dropout.forward(nn.functional.gelu(hidden.forward(h)));
        return head.forward(h);
    }
}

/// <summary>Mean-pooled bag-of-embeddings classifier that takes the attention mask.</summary>
internal sealed class TinyClassifier : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Embedding embed;
    private readonly Linear head;

    public TinyClassifier(int vocabulary, int classes, int width = 16) : base(nameof(TinyClassifier))
    {
        embed = nn.Embedding(vocabulary, width);
        head = nn.Linear(width, classes);
        RegisterComponents();
    }

    public override Tensor forward(Tensor inputIds, Tensor attentionMask)
    {
        Tensor mask = attentionMask.unsqueeze(-1).to(ScalarType.Float32);
        Tensor pooled = (embed.forward(inputIds) * mask).sum(1) / mask.sum(1).clamp_min(1);
        return head.forward(pooled);
    }
}

internal static class Weights
{
    public static Dictionary<string, Tensor> Snapshot(nn.Module model)
    {
        using var noGrad = torch.no_grad();
        return model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone().DetachFromDisposeScope());
    }

    public static bool Equal(IReadOnlyDictionary<string, Tensor> a, IReadOnlyDictionary<string, Tensor> b)
        => a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var other) && kv.Value.eq(other).all().item<bool>());

    public static double MaxDifference(IReadOnlyDictionary<string, Tensor> a, IReadOnlyDictionary<string, Tensor> b)
        => a.Max(kv => (kv.Value - b[kv.Key]).abs().max().item<float>());
}

internal sealed class TempFolder : IDisposable
{
    public TempFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "nichetune-tests-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
