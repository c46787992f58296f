using System.Collections.Immutable;
using System.Globalization;

namespace NicheTune.Models;

/// <summary>Which biases train alongside the low-rank matrices (PEFT's <c>bias</c> setting).</summary>
public enum LoRABias
{
    /// <summary>No bias trains (PEFT <c>"none"</c>, the default): the adapter is only the low-rank matrices.</summary>
    None,

    /// <summary>Every bias of the model trains and is saved with the adapter (PEFT <c>"all"</c>).</summary>
    All,

    /// <summary>Only the biases of the adapted modules train and are saved (PEFT <c>"lora_only"</c>).</summary>
    LoRAOnly,
}

/// <summary>The task the adapter was trained for, written as PEFT's <c>task_type</c>.</summary>
public enum LoRATaskType
{
    /// <summary>Causal language modelling (<c>"CAUSAL_LM"</c>).</summary>
    CausalLM,

    /// <summary>Sequence classification (<c>"SEQ_CLS"</c>).</summary>
    SequenceClassification,
}

/// <summary>
/// Settings of a LoRA adapter (Hu et al. 2021), with the meaning and defaults of PEFT's <c>LoraConfig</c>: a module
/// W (d_out × d_in) computes W x + (α / r) B A dropout(x) with A (r × d_in) drawn Kaiming-uniform(a = √5) and B (d_out × r)
/// zero, so the adapted model starts out equal to the base model. Checked when the adapter is applied; every problem is
/// reported in one exception.
/// </summary>
public sealed record LoRAOptions
{
    /// <summary>The rank r of the update B A; 4–16 is usual, more for large domain shifts.</summary>
    /// <value>Default 8 (PEFT's default).</value>
    public int Rank { get; init; } = 8;

    /// <summary>α in the scaling α / r of the update; keeping α fixed while changing r keeps the learning rate meaningful.</summary>
    /// <value>Default 8 (PEFT's default).</value>
    public double Alpha { get; init; } = 8;

    /// <summary>Dropout probability applied to the input of the low-rank path only (the base path sees the input unchanged).</summary>
    /// <value>Default 0.</value>
    public double Dropout { get; init; }

    /// <summary>
    /// Module names to adapt, matched like PEFT's <c>target_modules</c> list: a module matches when its full dotted name
    /// equals the target or ends with <c>"." + target</c> (so <c>"c_attn"</c> matches every block's
    /// <c>transformer.h.{i}.attn.c_attn</c>). Matched modules must be <c>nn.Linear</c> or GPT-2's Conv1D; a target that
    /// matches nothing is an error naming the closest module names.
    /// </summary>
    /// <value>Default empty; at least one is required.</value>
    public ImmutableArray<string> Targets { get; init; } = [];

    /// <summary>Which biases also train; see <see cref="LoRABias"/>.</summary>
    /// <value>Default <see cref="LoRABias.None"/>.</value>
    public LoRABias Bias { get; init; } = LoRABias.None;

    /// <summary>
    /// Modules trained in full and saved with the adapter (PEFT's <c>modules_to_save</c>), matched like
    /// <see cref="Targets"/>; typically a freshly initialised classification head such as <c>"score"</c> or <c>"classifier"</c>.
    /// Their original values are kept, so removing the adapter restores them.
    /// </summary>
    /// <value>Default empty.</value>
    public ImmutableArray<string> ModulesToSave { get; init; } = [];

    /// <summary>The task written to <c>adapter_config.json</c>; <see langword="null"/> infers causal LM for <see cref="Gpt2LMHeadModel"/> and writes null otherwise.</summary>
    /// <value>Default <see langword="null"/>.</value>
    public LoRATaskType? TaskType { get; init; }

    /// <summary>The base model's Hub id or folder, written as <c>base_model_name_or_path</c> so that PEFT can find the base model.</summary>
    /// <value>Default <see langword="null"/>.</value>
    public string? BaseModelNameOrPath { get; init; }

    /// <summary>The factor α / r that multiplies the low-rank update.</summary>
    public double Scaling => Alpha / Rank;

    /// <summary>Every problem with these settings, each naming the value seen and the fix; empty when they are valid.</summary>
    /// <returns>The problems.</returns>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (Rank < 1)
        {
            problems.Add(string.Create(CultureInfo.InvariantCulture, $"LoRA rank must be at least 1; got {Rank}. Ranks of 4–16 are usual."));
        }

        if (!(Alpha > 0) || !double.IsFinite(Alpha))
        {
            problems.Add(string.Create(CultureInfo.InvariantCulture, $"LoRA alpha must be a positive finite number; got {Alpha}. A common choice is alpha = rank or 2 × rank."));
        }

        if (!(Dropout >= 0 && Dropout < 1))
        {
            problems.Add(string.Create(CultureInfo.InvariantCulture, $"LoRA dropout must be in [0, 1); got {Dropout}. 0.05–0.1 is usual."));
        }

        if (!Enum.IsDefined(Bias))
        {
            problems.Add($"LoRA bias setting {(int)Bias} is not a {nameof(LoRABias)} value; use None, All or LoRAOnly.");
        }

        if (Targets.IsDefaultOrEmpty)
        {
            problems.Add("LoRA needs at least one target module name, e.g. \"c_attn\" for GPT-2 or \"q_proj\", \"v_proj\" for Llama-style models.");
        }

        CheckNames(Targets, "target", problems);
        CheckNames(ModulesToSave, "module to save", problems);
        if (!Targets.IsDefaultOrEmpty && !ModulesToSave.IsDefaultOrEmpty)
        {
            foreach (string both in Targets.Intersect(ModulesToSave, StringComparer.Ordinal))
            {
                problems.Add($"'{both}' is both a LoRA target and a module to save; a module is either adapted or trained in full, not both.");
            }
        }

        return problems;
    }

    private static void CheckNames(ImmutableArray<string> names, string what, List<string> problems)
    {
        if (names.IsDefaultOrEmpty)
        {
            return;
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string? name in names)
        {
            if (string.IsNullOrWhiteSpace(name) || name.StartsWith('.') || name.EndsWith('.'))
            {
                problems.Add($"LoRA {what} name '{name}' is empty or starts or ends with '.'; give a module name such as \"c_attn\" or \"h.0.attn.c_attn\".");
            }
            else if (!seen.Add(name))
            {
                problems.Add($"LoRA {what} '{name}' is listed twice; list each once.");
            }
        }
    }
}
