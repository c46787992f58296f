using FluentAssertions;
using NicheTune.Models;
using NicheTune.Tests.Support;
using NicheTune.Training;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace NicheTune.Tests.Training;

[Collection(TorchCollection.Name)]
public sealed class FlatAdamWTests
{
    private static Gpt2LMHeadModel Model(int seed)
    {
        torch.manual_seed(seed);
        return new Gpt2LMHeadModel(new Gpt2Config { VocabularySize = 97, ContextLength = 16, EmbeddingSize = 32, LayerCount = 2, HeadCount = 4, TieWordEmbeddings = false });
    }

    // Two groups as the trainer builds them: decayed matrices, and biases / norm weights without decay at another rate.
    private static AdamW.ParamGroup[] Groups(Gpt2LMHeadModel model)
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

    private static void Backward(Gpt2LMHeadModel model, int step)
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(1000 + step);
        Tensor ids = torch.randint(0, 97, [4, 16], dtype: ScalarType.Int64);
        Tensor logits = model.call(ids);
        Tensor loss = nn.functional.cross_entropy(logits.reshape(-1, 97)[..^4], ids.reshape(-1)[4..]);
        loss.backward();
    }

    private static void TrainSteps(Gpt2LMHeadModel model, OptimizerHelper optimizer, int from, int to, Action<int>? beforeStep = null)
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

    private static bool Same(Tensor a, Tensor b)
    {
        using Tensor difference = (a.detach() - b.detach()).abs().max();
        return difference.item<float>() == 0f;
    }

    private static void ShouldBeIdentical(Gpt2LMHeadModel a, Gpt2LMHeadModel b)
    {
        var left = a.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach ((string name, Parameter right) in b.named_parameters())
        {
            using Tensor difference = (left[name] - right).abs().max();
            difference.item<float>().Should().Be(0f, $"parameter '{name}' must be bit-identical to TorchSharp's AdamW");
        }
    }

    [Fact]
    public void Step_TwentySteps_EqualsTorchSharpAdamWTensorForTensor()
    {
        using Gpt2LMHeadModel reference = Model(seed: 5);
        using Gpt2LMHeadModel flat = Model(seed: 5);
        using var referenceOptimizer = torch.optim.AdamW(Groups(reference), 1e-3);
        using var flatOptimizer = new FlatAdamW(Groups(flat), 1e-3, 0.9, 0.999, 1e-8, 0.0);
        flatOptimizer.FlatGroupCount.Should().Be(2);

        TrainSteps(reference, referenceOptimizer, 0, 20);
        TrainSteps(flat, flatOptimizer, 0, 20);

        ShouldBeIdentical(reference, flat);
    }

    [Fact]
    public void Step_ChangedLearningRates_FollowTheGroupsLikeTorchSharp()
    {
        using Gpt2LMHeadModel reference = Model(seed: 6);
        using Gpt2LMHeadModel flat = Model(seed: 6);
        using var referenceOptimizer = torch.optim.AdamW(Groups(reference), 1e-3);
        using var flatOptimizer = new FlatAdamW(Groups(flat), 1e-3, 0.9, 0.999, 1e-8, 0.0);

        void Schedule(OptimizerHelper optimizer, int step)
        {
            foreach (var group in optimizer.ParamGroups)
            {
                group.LearningRate = group.InitialLearningRate * (1.0 - step / 20.0);
            }
        }

        TrainSteps(reference, referenceOptimizer, 0, 10, step => Schedule(referenceOptimizer, step));
        TrainSteps(flat, flatOptimizer, 0, 10, step => Schedule(flatOptimizer, step));

        ShouldBeIdentical(reference, flat);
    }

    [Fact]
    public void Step_ParameterWithoutGradient_DoesNotMoveLikeTorchSharp()
    {
        using Gpt2LMHeadModel reference = Model(seed: 7);
        using Gpt2LMHeadModel flat = Model(seed: 7);
        using var referenceOptimizer = torch.optim.AdamW(Groups(reference), 1e-3);
        using var flatOptimizer = new FlatAdamW(Groups(flat), 1e-3, 0.9, 0.999, 1e-8, 0.0);
        TrainSteps(reference, referenceOptimizer, 0, 3);
        TrainSteps(flat, flatOptimizer, 0, 3);
        using Tensor frozenBefore = flat.get_parameter("transformer.h.0.attn.c_attn.weight")!.detach().clone();

        // The trainer re-freezes a parameter by dropping its gradient: it must not move (no decay, no momentum).
        void Drop(Gpt2LMHeadModel model) => model.get_parameter("transformer.h.0.attn.c_attn.weight")!.grad = null;
        TrainSteps(reference, referenceOptimizer, 3, 6, _ => Drop(reference));
        TrainSteps(flat, flatOptimizer, 3, 6, _ => Drop(flat));

        ShouldBeIdentical(reference, flat);
        Same(flat.get_parameter("transformer.h.0.attn.c_attn.weight")!, frozenBefore).Should().BeTrue();
    }

    [Fact]
    public void Step_GradientReplacedByHand_IsCopiedIntoTheBuffer()
    {
        using Gpt2LMHeadModel reference = Model(seed: 8);
        using Gpt2LMHeadModel flat = Model(seed: 8);
        using var referenceOptimizer = torch.optim.AdamW(Groups(reference), 1e-3);
        using var flatOptimizer = new FlatAdamW(Groups(flat), 1e-3, 0.9, 0.999, 1e-8, 0.0);

        void Replace(Gpt2LMHeadModel model)
        {
            Parameter p = model.get_parameter("lm_head.weight")!;
            using Tensor? grad = p.grad;
            p.grad = grad!.clone().mul_(0.5);
        }

        TrainSteps(reference, referenceOptimizer, 0, 4, _ => Replace(reference));
        TrainSteps(flat, flatOptimizer, 0, 4, _ => Replace(flat));

        ShouldBeIdentical(reference, flat);
    }

    [Fact]
    public void SaveAndLoadStateDict_ResumesExactlyLikeAnUninterruptedRun()
    {
        using var folder = new TempFolder();
        string path = Path.Combine(folder.Path, "optimizer.bin");
        using Gpt2LMHeadModel uninterrupted = Model(seed: 9);
        using var uninterruptedOptimizer = new FlatAdamW(Groups(uninterrupted), 1e-3, 0.9, 0.999, 1e-8, 0.0);
        TrainSteps(uninterrupted, uninterruptedOptimizer, 0, 8);

        using Gpt2LMHeadModel first = Model(seed: 9);
        using (var firstOptimizer = new FlatAdamW(Groups(first), 1e-3, 0.9, 0.999, 1e-8, 0.0))
        {
            TrainSteps(first, firstOptimizer, 0, 4);
            firstOptimizer.save_state_dict(path);
        }

        using Gpt2LMHeadModel resumed = Model(seed: 1);
        using (torch.no_grad())
        {
            var source = first.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            foreach ((string name, Parameter p) in resumed.named_parameters())
            {
                p.copy_(source[name]);
            }
        }

        using var resumedOptimizer = new FlatAdamW(Groups(resumed), 1e-3, 0.9, 0.999, 1e-8, 0.0);
        resumedOptimizer.load_state_dict(path);
        TrainSteps(resumed, resumedOptimizer, 4, 8);

        ShouldBeIdentical(uninterrupted, resumed);
    }

    [Fact]
    public void Constructor_ParametersBecomeViewsOfOneBuffer_ValuesUnchanged()
    {
        using Gpt2LMHeadModel model = Model(seed: 10);
        var before = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());

        using var optimizer = new FlatAdamW(Groups(model), 1e-3, 0.9, 0.999, 1e-8, 0.0);

        foreach ((string name, Parameter p) in model.named_parameters())
        {
            Same(p, before[name]).Should().BeTrue($"'{name}' keeps its values when it moves into the buffer");
            p.requires_grad.Should().BeTrue();
        }

        foreach (Tensor t in before.Values)
        {
            t.Dispose();
        }
    }
}
