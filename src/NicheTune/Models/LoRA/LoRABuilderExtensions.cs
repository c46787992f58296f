using System.Collections.Immutable;
using NicheTune.Models;
using NicheTune.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace NicheTune
{
    /// <summary>Adds LoRA to a fine-tuning plan: <c>FineTuner.For(model).WithObjective(…).WithLoRA(8, 16, 0.05, "c_attn")</c>.</summary>
    public static class LoRABuilderExtensions
    {
        /// <summary>
        /// Trains a LoRA adapter instead of the whole model: the base weights are frozen (and so kept out of the optimizer)
        /// and only rank-<paramref name="rank"/> matrices on the <paramref name="targets"/> train. The adapter is applied to
        /// the model by <c>Build()</c> (problems such as a target that matches nothing are reported there with every other
        /// one) and stays on the model after <c>Fit</c>: get it with <see cref="LoRA.AdapterOf"/> to save, merge or remove it.
        /// </summary>
        /// <typeparam name="TBatch">The batch type of the objective.</typeparam>
        /// <param name="builder">The builder.</param>
        /// <param name="rank">The rank r, at least 1 (4–16 is usual).</param>
        /// <param name="alpha">α; the update is scaled by α / r.</param>
        /// <param name="dropout">Dropout on the input of the low-rank path, in [0, 1).</param>
        /// <param name="targets">Module names, matched by suffix as PEFT's <c>target_modules</c>: <c>"c_attn"</c> (GPT-2), <c>"q_proj"</c>, <c>"v_proj"</c> (Llama).</param>
        /// <returns>The builder.</returns>
        /// <exception cref="ArgumentNullException"><paramref name="builder"/> or <paramref name="targets"/> is <see langword="null"/>.</exception>
        public static FineTunerBuilder<TBatch> WithLoRA<TBatch>(this FineTunerBuilder<TBatch> builder, int rank, double alpha, double dropout, params string[] targets)
            where TBatch : ITrainingBatch
        {
            ArgumentNullException.ThrowIfNull(targets);
            return builder.WithLoRA(new LoRAOptions { Rank = rank, Alpha = alpha, Dropout = dropout, Targets = [.. targets] });
        }

        /// <summary>Trains a LoRA adapter with every setting of <paramref name="options"/> (biases, modules to save, task type…); see the other overload.</summary>
        /// <typeparam name="TBatch">The batch type of the objective.</typeparam>
        /// <param name="builder">The builder.</param>
        /// <param name="options">The adapter's settings.</param>
        /// <returns>The builder.</returns>
        /// <exception cref="ArgumentNullException">An argument is <see langword="null"/>.</exception>
        public static FineTunerBuilder<TBatch> WithLoRA<TBatch>(this FineTunerBuilder<TBatch> builder, LoRAOptions options)
            where TBatch : ITrainingBatch
        {
            ArgumentNullException.ThrowIfNull(builder);
            ArgumentNullException.ThrowIfNull(options);
            return builder.UseLoRA(options);
        }
    }
}

namespace NicheTune.Models
{
    /// <summary>What <c>Build()</c> does for <c>WithLoRA</c>: check, apply, and guard against hooks that never run.</summary>
    internal static class LoRABuilderSupport
    {
        public static LoRAAdapter? TryApply<TBatch>(nn.Module model, LoRAOptions options, ITrainingObjective<TBatch> objective, List<string> problems)
            where TBatch : ITrainingBatch
        {
            IReadOnlyList<string> found = LoRA.Check(model, options, out _, out _);
            if (found.Count > 0)
            {
                problems.AddRange(found);
                return null;
            }

            if (LoRA.AdapterOf(model) is { } existing)
            {
                problems.Add($"The model already carries a LoRA adapter on {existing.AdaptedModules.Length} module(s); remove it (LoRA.AdapterOf(model).Remove()) or drop WithLoRA from the plan.");
                return null;
            }

            LoRATaskType? task = options.TaskType ?? objective switch
            {
                CausalLanguageModelingObjective => LoRATaskType.CausalLM,
                SequenceClassificationObjective => LoRATaskType.SequenceClassification,
                _ => null,
            };
            return LoRA.Apply(model, options with { TaskType = task });
        }

        public static ITrainingObjective<TBatch> Checked<TBatch>(ITrainingObjective<TBatch> objective, LoRAAdapter adapter)
            where TBatch : ITrainingBatch
            => new LoRACheckedObjective<TBatch>(objective, adapter);
    }

    /// <summary>
    /// The plan's objective, checking after the first forward pass that every adapted module's hook ran. A parent that
    /// invokes a module with <c>forward(x)</c> skips TorchSharp's hooks, so the run would train nothing (or fail in backward
    /// with "does not require grad"); this names the module and the fix instead. Later calls cost one field read.
    /// </summary>
    internal sealed class LoRACheckedObjective<TBatch>(ITrainingObjective<TBatch> inner, LoRAAdapter adapter) : ITrainingObjective<TBatch>
        where TBatch : ITrainingBatch
    {
        private bool _checked;

        public ITrainingObjective<TBatch> Inner => inner;

        public string Name => inner.Name;

        public IEnumerable<string> Validate(nn.Module model) => inner.Validate(model);

        public Tensor Loss(nn.Module model, TBatch batch)
        {
            Tensor loss = inner.Loss(model, batch);
            Check();
            return loss;
        }

        public Evaluation.MetricBatch Evaluate(nn.Module model, TBatch batch)
        {
            Evaluation.MetricBatch result = inner.Evaluate(model, batch);
            Check();
            return result;
        }

        private void Check()
        {
            if (_checked || adapter.IsRemoved)
            {
                return;
            }

            ImmutableArray<string> unused = adapter.UnusedModules;
            if (unused.Length > 0)
            {
                throw new InvalidOperationException(
                    $"LoRA adapted {unused.Length} module(s) that the model never ran through Module.call (first: '{unused[0]}'); their parent invokes them " +
                    "with forward(x), which skips TorchSharp's forward hooks, so the low-rank update would never be used. Change those calls to call(x).");
            }

            _checked = true;
        }
    }
}
