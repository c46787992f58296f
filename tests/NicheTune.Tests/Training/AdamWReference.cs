using FluentAssertions;
using NicheTune.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NicheTune.Tests.Training;

/// <summary>
/// What the AdamW implementations of the library (flat buffers, blockwise) are checked against: a small GPT-2, the
/// trainer's two kinds of parameter group, deterministic backward passes, and a tensor-for-tensor comparison with
/// TorchSharp's own AdamW.
/// </summary>
internal static class AdamWReference
{
    internal static Gpt2LMHeadModel Model(int seed)
    {
        torch.manual_seed(seed);
        return new Gpt2LMHeadModel(new Gpt2Config { VocabularySize = 97, ContextLength = 16, EmbeddingSize = 32, LayerCount = 2, HeadCount = 4, TieWordEmbeddings = false });
    }

    // Two groups as the trainer builds them: decayed matrices, and biases / norm weights without decay at another rate.
    internal static AdamW.ParamGroup[] Groups(Gpt2LMHeadModel model)
    {
        var named = model.named_parameters().ToList();
        Parameter[] decay = [.. named.Where(p => p.parameter.dim() >= 2).Select(p => p.parameter)];
        Parameter[] noDecay = [.. named.Where(p => p.parameter.dim() < 2).Select(p => p.parameter)];
        return
        [
            new AdamW.ParamGroup(decay, 3e-3, 0.9, 0.99, 1e-8, 0.05),
            new AdamW.ParamGroup(noDecay, 1e-3, 0.85, 0.999, 1e-6, 0.0),
        ];
    }

    internal static void Backward(Gpt2LMHeadModel model, int step)
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(1000 + step);
        Tensor ids = torch.randint(0, 97, [4, 16], dtype: ScalarType.Int64);
        Tensor logits = model.call(ids);
        Tensor loss = nn.functional.cross_entropy(logits.reshape(-1, 97)[..^4], ids.reshape(-1)[4..]);
        loss.backward();
    }

    internal static void TrainSteps(Gpt2LMHeadModel model, OptimizerHelper optimizer, int from, int to, Action<int>? beforeStep = null)
    {
        for (int step = from; step < to; step++)
        {
            Backward(model, step);
            beforeStep?.Invoke(step);
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0);
            optimizer.step();
            optimizer.zero_grad();
        }
    }

    internal static bool Same(Tensor a, Tensor b)
    {
        using Tensor difference = (a.detach() - b.detach()).abs().max();
        return difference.item<float>() == 0f;
    }

    internal static void ShouldBeIdentical(Gpt2LMHeadModel a, Gpt2LMHeadModel b)
    {
        var left = a.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach ((string name, Parameter right) in b.named_parameters())
        {
            using Tensor difference = (left[name] - right).abs().max();
            difference.item<float>().Should().Be(0f, $"parameter '{name}' must be bit-identical to TorchSharp's AdamW");
        }
    }

    // The rate schedule both optimizers must follow per group: linear decay from each group's initial rate over 20 steps.
    internal static void DecayLearningRates(OptimizerHelper optimizer, int step)
    {
        foreach (var group in optimizer.ParamGroups)
        {
            group.LearningRate = group.InitialLearningRate * (1.0 - step / 20.0);
        }
    }

    // Copies every parameter of one model into another of the same shape (a resumed run starts from the saved weights).
    internal static void CopyParameters(Gpt2LMHeadModel from, Gpt2LMHeadModel to)
    {
        using var noGrad = torch.no_grad();
        var source = from.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach ((string name, Parameter p) in to.named_parameters())
        {
            p.copy_(source[name]);
        }
    }
}
