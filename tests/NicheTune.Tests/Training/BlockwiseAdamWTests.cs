using FluentAssertions;
using NicheTune.Models;
using NicheTune.Tests.Support;
using NicheTune.Training;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static NicheTune.Tests.Training.AdamWReference;
using BlockwiseAdamW = NicheTune.Training.Blockwise.AdamW;
using static TorchSharp.torch;

namespace NicheTune.Tests.Training;

[Collection(TorchCollection.Name)]
public sealed class BlockwiseAdamWTests
{
    // The toy model's largest tensors have 3,104 elements: 1,000-element blocks walk them in four blocks, the last partial.
    private const long SmallBlocks = 1000;

    [Theory]
    [InlineData(SmallBlocks)]
    [InlineData(BlockwiseAdamW.DefaultBlockElements)]
    [InlineData(7)]
    public void Step_TwentySteps_EqualsTorchSharpAdamWTensorForTensor(long blockElements)
    {
        using Gpt2LMHeadModel reference = Model(seed: 5);
        using Gpt2LMHeadModel blockwise = Model(seed: 5);
        using var referenceOptimizer = torch.optim.AdamW(Groups(reference), 1e-3);
        using var blockwiseOptimizer = new BlockwiseAdamW(Groups(blockwise), 1e-3, 0.9, 0.999, 1e-8, 0.0, blockElements);

        TrainSteps(reference, referenceOptimizer, 0, 20);
        TrainSteps(blockwise, blockwiseOptimizer, 0, 20);

        ShouldBeIdentical(reference, blockwise);
        blockwiseOptimizer.ScratchBufferCount.Should().Be(1, "one scratch buffer serves every parameter and step");
    }

    [Fact]
    public void Step_ChangedLearningRates_FollowTheGroupsLikeTorchSharp()
    {
        using Gpt2LMHeadModel reference = Model(seed: 6);
        using Gpt2LMHeadModel blockwise = Model(seed: 6);
        using var referenceOptimizer = torch.optim.AdamW(Groups(reference), 1e-3);
        using var blockwiseOptimizer = new BlockwiseAdamW(Groups(blockwise), 1e-3, 0.9, 0.999, 1e-8, 0.0, SmallBlocks);

        TrainSteps(reference, referenceOptimizer, 0, 10, step => DecayLearningRates(referenceOptimizer, step));
        TrainSteps(blockwise, blockwiseOptimizer, 0, 10, step => DecayLearningRates(blockwiseOptimizer, step));

        ShouldBeIdentical(reference, blockwise);
    }

    [Fact]
    public void Step_ParameterWithoutGradient_DoesNotMoveLikeTorchSharp()
    {
        const string Frozen = "transformer.h.0.attn.c_attn.weight";
        using Gpt2LMHeadModel reference = Model(seed: 7);
        using Gpt2LMHeadModel blockwise = Model(seed: 7);
        using var referenceOptimizer = torch.optim.AdamW(Groups(reference), 1e-3);
        using var blockwiseOptimizer = new BlockwiseAdamW(Groups(blockwise), 1e-3, 0.9, 0.999, 1e-8, 0.0, SmallBlocks);
        TrainSteps(reference, referenceOptimizer, 0, 3);
        TrainSteps(blockwise, blockwiseOptimizer, 0, 3);
        using Tensor frozenBefore = blockwise.get_parameter(Frozen)!.detach().clone();

        static void Drop(Gpt2LMHeadModel model) => model.get_parameter(Frozen)!.grad = null;
        TrainSteps(reference, referenceOptimizer, 3, 6, _ => Drop(reference));
        TrainSteps(blockwise, blockwiseOptimizer, 3, 6, _ => Drop(blockwise));

        ShouldBeIdentical(reference, blockwise);
        Same(blockwise.get_parameter(Frozen)!, frozenBefore).Should().BeTrue();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void SaveAndLoadStateDict_AcrossTorchSharpAndBlockwise_ContinuesExactlyLikeTheUninterruptedRun(bool firstHalfTorchSharp)
    {
        using var folder = new TempFolder();
        string path = Path.Combine(folder.Path, "optimizer.bin");
        using Gpt2LMHeadModel uninterrupted = Model(seed: 9);
        using var uninterruptedOptimizer = torch.optim.AdamW(Groups(uninterrupted), 1e-3);
        TrainSteps(uninterrupted, uninterruptedOptimizer, 0, 8);

        // The first half with one optimizer, saved; the second half resumes from that file with the other: the two share the
        // state format and name, so checkpoints written before this optimizer became the default still resume, and a
        // NicheTune checkpoint's optimizer state loads into TorchSharp's AdamW.
        OptimizerHelper Create(Gpt2LMHeadModel model, bool torchSharp) => torchSharp
            ? torch.optim.AdamW(Groups(model), 1e-3)
            : new BlockwiseAdamW(Groups(model), 1e-3, 0.9, 0.999, 1e-8, 0.0, SmallBlocks);

        using Gpt2LMHeadModel first = Model(seed: 9);
        using (OptimizerHelper firstOptimizer = Create(first, firstHalfTorchSharp))
        {
            TrainSteps(first, firstOptimizer, 0, 4);
            firstOptimizer.save_state_dict(path);
        }

        using Gpt2LMHeadModel resumed = Model(seed: 1);
        CopyParameters(first, resumed);

        using OptimizerHelper resumedOptimizer = Create(resumed, !firstHalfTorchSharp);
        resumedOptimizer.load_state_dict(path);
        TrainSteps(resumed, resumedOptimizer, 4, 8);

        ShouldBeIdentical(uninterrupted, resumed);
    }

    [Theory]
    [InlineData(SmallBlocks)]
    [InlineData(16)]
    public void Step_NonContiguousParameter_UpdatedWholeLikeTorchSharp(long blockElements)
    {
        // A 40 × 30 weight stored transposed (not contiguous): it cannot be cut into flat blocks, so it is updated whole,
        // from the scratch buffer when it fits (1,000-element blocks: 1,200 do not; 16: neither) or a temporary otherwise.
        using var reference = new TransposedLinear(seed: 3);
        using var blockwise = new TransposedLinear(seed: 3);
        blockwise.Weight.is_contiguous().Should().BeFalse();
        using var referenceOptimizer = torch.optim.AdamW([new AdamW.ParamGroup(reference.parameters(), 1e-2, 0.9, 0.999, 1e-8, 0.1)], 1e-2);
        using var blockwiseOptimizer = new BlockwiseAdamW([new AdamW.ParamGroup(blockwise.parameters(), 1e-2, 0.9, 0.999, 1e-8, 0.1)], 1e-2, 0.9, 0.999, 1e-8, 0.1, blockElements);

        for (int step = 0; step < 10; step++)
        {
            foreach ((TransposedLinear model, OptimizerHelper optimizer) in new[] { (reference, referenceOptimizer), (blockwise, (OptimizerHelper)blockwiseOptimizer) })
            {
                using var scope = torch.NewDisposeScope();
                torch.manual_seed(100 + step);
                Tensor x = torch.randn(8, 30);
                model.call(x).pow(2).mean().backward();
                optimizer.step();
                optimizer.zero_grad();
            }
        }

        Same(reference.Weight, blockwise.Weight).Should().BeTrue();
        Same(reference.Bias, blockwise.Bias).Should().BeTrue();
        using Tensor start = new TransposedLinear(seed: 3).Weight.detach().clone();
        Same(blockwise.Weight, start).Should().BeFalse("ten steps at lr 1e-2 move the weight");
    }

    [Fact]
    public void OptimizerSpecs_BuildTheirOptimizers()
    {
        using Gpt2LMHeadModel model = Model(seed: 12);
        Parameter[] parameters = [.. model.parameters()];
        var plan = new NicheTune.Scheduling.ParameterGroupPlan("all", [.. model.named_parameters().Select(p => p.name)]);

        using OptimizerHelper blockwise = Optimizers.BlockwiseAdamW().Create([(plan, parameters)], 1e-3);
        using OptimizerHelper reference = Optimizers.TorchSharpAdamW().Create([(plan, parameters)], 1e-3);
        using OptimizerHelper defaults = Optimizers.AdamW().Create([(plan, parameters)], 1e-3);

        blockwise.Should().BeOfType<BlockwiseAdamW>();
        reference.Should().BeOfType<TorchSharp.Modules.AdamW>();
        defaults.Should().BeOfType<BlockwiseAdamW>("Optimizers.AdamW() is the blockwise optimizer");
    }

    [Fact]
    public void Fit_BlockwiseOptimizer_MatchesTorchSharpsAdamWLoopExactly()
    {
        // A whole Fit with the blockwise AdamW against the same plan with TorchSharp's own loop: identical weights after six steps.
        float[] Train(OptimizerSpec? optimizer)
        {
            using Gpt2LMHeadModel model = Model(seed: 11);
            var builder = FineTuner.For(model)
                .WithObjective(Objectives.CausalLanguageModeling())
                .WithLearningRate(3e-3)
                .WithBatchSize(4)
                .WithMaxSteps(6)
                .ShuffleTrainingData(false)
                .Regularize(r => r.WeightDecay(0.05));
            if (optimizer is not null)
            {
                builder.WithOptimizer(optimizer);
            }

            builder.Fit(ToyTokens(), null, new TokenCollator());
            return [.. model.parameters().SelectMany(p => p.detach().reshape(-1).data<float>().ToArray())];
        }

        float[] defaults = Train(Optimizers.BlockwiseAdamW(weightDecay: 0.05));
        float[] torchSharp = Train(Optimizers.TorchSharpAdamW(weightDecay: 0.05));
        float[] start;
        using (Gpt2LMHeadModel untouched = Model(seed: 11))
        {
            start = [.. untouched.parameters().SelectMany(p => p.detach().reshape(-1).data<float>().ToArray())];
        }

        defaults.Should().Equal(torchSharp);
        defaults.Should().NotEqual(start, "six steps must move the weights");
    }

    private static List<TokenExample> ToyTokens()
    {
        var examples = new List<TokenExample>();
        var random = new Random(4);
        for (int i = 0; i < 24; i++)
        {
            examples.Add(new TokenExample([.. Enumerable.Range(0, 16).Select(_ => random.Next(97))]));
        }

        return examples;
    }

    private sealed class TransposedLinear : nn.Module<Tensor, Tensor>
    {
        public TransposedLinear(int seed)
            : base(nameof(TransposedLinear))
        {
            torch.manual_seed(seed);
            Weight = new Parameter(torch.randn(30, 40).t());
            Bias = new Parameter(torch.zeros(40));
            register_parameter("weight", Weight);
            register_parameter("bias", Bias);
        }

        public Parameter Weight { get; }

        public Parameter Bias { get; }

        public override Tensor forward(Tensor input) => nn.functional.linear(input, Weight, Bias);
    }
}
