using NicheTune.Models;
using NicheTune.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NicheTune.Benchmarks.Workload;

/// <summary>The baseline: the training loop a TorchSharp user writes by hand, with the Trainer's hyper-parameters.</summary>
internal static class RawTrainingLoop
{
    /// <summary>
    /// Builds AdamW and runs <paramref name="steps"/> steps over <paramref name="batches"/> (cycling); marks
    /// <paramref name="recorder"/> at the end of each step, the instant the Trainer's <c>OnStepEnd</c> marks.
    /// </summary>
    /// <param name="model">The model (trained in place).</param>
    /// <param name="batches">The batches, used in order and cycled.</param>
    /// <param name="steps">How many optimizer steps to take.</param>
    /// <param name="recorder">Marked at the end of each step, or <see langword="null"/>.</param>
    /// <param name="losses">When given, each step's loss is read into it (one host read per step, as a logging Trainer does).</param>
    public static void Run(Gpt2LMHeadModel model, RawBatch[] batches, int steps, StepRecorder? recorder = null, double[]? losses = null)
    {
        model.train();
        long vocabulary = model.Config.VocabularySize;
        Parameter[] parameters = [.. model.parameters()];
        // Optimizers.AdamW()'s defaults: betas (0.9, 0.999), eps 1e-8 and weight decay 0 (TorchSharp's own default is 0.01).
        using AdamW optimizer = torch.optim.AdamW(parameters, lr: TrainingWorkload.LearningRate, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0);
        for (int i = 0; i < steps; i++)
        {
            RawBatch batch = batches[i % batches.Length];
            using (var scope = torch.NewDisposeScope())
            {
                Tensor logits = model.forward(batch.InputIds);
                Tensor loss = nn.functional.cross_entropy(logits.view(-1, vocabulary), batch.Targets.view(-1), ignore_index: TokenBatch.IgnoreIndex);
                loss.backward();
                if (losses is not null)
                {
                    losses[i] = loss.item<float>();
                }

                torch.nn.utils.clip_grad_norm_(parameters, TrainingWorkload.MaxGradientNorm);
                optimizer.step();
                optimizer.zero_grad();
            }

            recorder?.Mark();
        }
    }
}
