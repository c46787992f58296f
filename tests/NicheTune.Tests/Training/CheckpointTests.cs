using FluentAssertions;
using NicheTune.Tests.Support;
using NicheTune.Text;
using NicheTune.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace NicheTune.Tests.Training;

[Collection(TorchCollection.Name)]
public sealed class CheckpointTests
{
    private static readonly List<TokenExample> Train = TestData.FoldocLanguageModeling(length: 32, trainEntries: 50, validationEntries: 0).Train;

    private static FineTunerBuilder<TokenBatch> Plan(nn.Module model) => FineTuner.For(model)
        .WithObjective(Objectives.CausalLanguageModeling())
        .WithLearningRate(5e-3)
        .WithBatchSize(8)
        .WithGradientAccumulation(2)
        .WithSeed(21)
        .WithMaxSteps(16);

    [Fact]
    public void ResumeFrom_CheckpointHalfway_FinalWeightsEqualUninterruptedRun()
    {
        using var folder = new TempFolder();
        torch.manual_seed(4);
        using var straightModel = new TinyCausalLm(ByteTokenizer.VocabularySize, dropoutRate: 0.3);
        var initial = Weights.Snapshot(straightModel);
        Plan(straightModel).Fit(Train);
        var straight = Weights.Snapshot(straightModel);

        // First half: same start, a checkpoint every 8 steps, stopped by a callback right after step 8 is saved.
        using var firstModel = new TinyCausalLm(ByteTokenizer.VocabularySize, dropoutRate: 0.3);
        firstModel.load_state_dict(initial);
        var firstResult = Plan(firstModel).SaveCheckpoints(folder.Path, everySteps: 8, keepLast: 5)
            .WithCallback(new StopAt(8)).Fit(Train);
        firstResult.Steps.Should().Be(8);

        // "New process": a fresh model with other weights, torch's generator moved elsewhere, then resume.
        torch.manual_seed(999);
        using var resumedModel = new TinyCausalLm(ByteTokenizer.VocabularySize, dropoutRate: 0.3);
        torch.rand(1000).Dispose();
        var resumed = Plan(resumedModel).ResumeFrom(Path.Combine(folder.Path, "checkpoint-00000008")).Fit(Train);

        resumed.Steps.Should().Be(16);
        Weights.Equal(Weights.Snapshot(resumedModel), straight).Should().BeTrue("resuming must reproduce the uninterrupted run bit for bit");
    }

    [Fact]
    public void ResumeFrom_FolderOfCheckpoints_UsesTheLatest()
    {
        using var folder = new TempFolder();
        torch.manual_seed(4);
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);
        Plan(model).SaveCheckpoints(folder.Path, everySteps: 4, keepLast: 2).WithCallback(new StopAt(12)).Fit(Train);

        Directory.GetDirectories(folder.Path).Select(Path.GetFileName).Should().BeEquivalentTo(["checkpoint-00000008", "checkpoint-00000012"], "keepLast 2 prunes older ones");
        CheckpointStore.Resolve(folder.Path).Should().EndWith("checkpoint-00000012");
        Directory.GetFiles(Path.Combine(folder.Path, "checkpoint-00000012")).Select(Path.GetFileName)
            .Should().Contain(["model.safetensors", "optimizer.bin", "rng_state.bin", "trainer_state.json"]);
    }

    [Fact]
    public void Save_CrashBeforeCommit_LeavesThePreviousCheckpointLoadable()
    {
        using var folder = new TempFolder();
        string target = Path.Combine(folder.Path, "checkpoint-00000001");
        torch.manual_seed(4);
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);
        var good = Weights.Snapshot(model);
        using var optimizer = torch.optim.AdamW(model.parameters());
        CheckpointStore.Save(target, model, optimizer, new TrainerState { GlobalStep = 1 }, null);

        using (torch.no_grad())
        {
            foreach (var p in model.parameters())
            {
                p.add_(1.0);
            }
        }

        CheckpointStore.BeforeCommitForTesting = temp =>
        {
            // Half-written state at the moment of the crash: truncate the new model file.
            string file = Path.Combine(temp, CheckpointStore.ModelFile);
            File.WriteAllBytes(file, File.ReadAllBytes(file)[..100]);
            throw new IOException("simulated crash");
        };
        try
        {
            var save = () => CheckpointStore.Save(target, model, optimizer, new TrainerState { GlobalStep = 2 }, null);
            save.Should().Throw<IOException>().WithMessage("simulated crash");
        }
        finally
        {
            CheckpointStore.BeforeCommitForTesting = null;
        }

        Directory.GetDirectories(folder.Path).Should().ContainSingle("the temporary folder is removed");
        using var reloaded = new TinyCausalLm(ByteTokenizer.VocabularySize);
        using var reloadedOptimizer = torch.optim.AdamW(reloaded.parameters());
        TrainerState state = CheckpointStore.Load(target, reloaded, reloadedOptimizer, null);
        state.GlobalStep.Should().Be(1);
        Weights.Equal(Weights.Snapshot(reloaded), good).Should().BeTrue();
    }

    [Fact]
    public void Resolve_CrashBetweenRenames_RecoversTheSetAsideCheckpoint()
    {
        using var folder = new TempFolder();
        string target = Path.Combine(folder.Path, "checkpoint-00000003");
        Directory.CreateDirectory(target + ".old-abcd1234");
        File.WriteAllText(Path.Combine(target + ".old-abcd1234", CheckpointStore.StateFile), new TrainerState { GlobalStep = 3 }.ToJson());
        Directory.CreateDirectory(Path.Combine(folder.Path, "checkpoint-00000004.tmp-deadbeef"));

        CheckpointStore.Resolve(folder.Path).Should().Be(target);
        Directory.Exists(target).Should().BeTrue();
    }

    [Fact]
    public void Load_TruncatedModelFile_ThrowsNamingTheFile()
    {
        using var folder = new TempFolder();
        string target = Path.Combine(folder.Path, "checkpoint-00000001");
        torch.manual_seed(4);
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);
        using var optimizer = torch.optim.AdamW(model.parameters());
        CheckpointStore.Save(target, model, optimizer, new TrainerState { GlobalStep = 1 }, null);
        string file = Path.Combine(target, CheckpointStore.ModelFile);
        File.WriteAllBytes(file, File.ReadAllBytes(file)[..200]);

        var load = () => CheckpointStore.Load(target, model, optimizer, null);

        load.Should().Throw<Exception>().Where(e => e.Message.Contains("model.safetensors"));
    }

    [Fact]
    public void Build_ResumeFromMissingFolder_ReportsTheProblem()
    {
        torch.manual_seed(4);
        using var model = new TinyCausalLm(ByteTokenizer.VocabularySize);
        var build = () => Plan(model).ResumeFrom("/nonexistent/run").Build();
        build.Should().Throw<FineTunePlanException>().Which.Problems.Should().ContainSingle(p => p.Contains("/nonexistent/run"));
    }

    private sealed class StopAt(long step) : ITrainingCallback
    {
        public void OnStepEnd(in StepEndArguments args)
        {
            if (args.Step >= step)
            {
                args.Control.RequestStop($"test stops at {step}");
            }
        }
    }
}
