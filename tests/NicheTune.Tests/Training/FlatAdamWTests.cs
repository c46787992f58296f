using FluentAssertions;
using NicheTune.Models;
using NicheTune.Tests.Support;
using NicheTune.Training;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static NicheTune.Tests.Training.AdamWReference;
using static TorchSharp.torch;

namespace NicheTune.Tests.Training;

[Collection(TorchCollection.Name)]
public sealed class FlatAdamWTests
{
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

        TrainSteps(reference, referenceOptimizer, 0, 10, step => DecayLearningRates(referenceOptimizer, step));
        TrainSteps(flat, flatOptimizer, 0, 10, step => DecayLearningRates(flatOptimizer, step));

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
        CopyParameters(first, resumed);

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
