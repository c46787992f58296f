using System;
using TorchSharp;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace NicheTune.Models;

/// <summary>
/// A GPT-2 causal language model whose <c>named_parameters()</c> are exactly those of Hugging Face's
/// <c>GPT2LMHeadModel</c> (same names, shapes and Conv1D [in, out] weight layout), so that a
/// checkpoint's tensors can be loaded by name and fine-tuned without any renaming or transposing.
/// </summary>
/// <remarks>
/// <para>
/// With <see cref="Gpt2Config.TieWordEmbeddings"/> the logits reuse <c>transformer.wte.weight</c> and
/// there is no <c>lm_head.weight</c> parameter, so an optimizer sees the shared matrix once.
/// </para>
/// <para>
/// The forward methods keep their temporaries in private dispose scopes and hand only the result to
/// the caller's scope; wrap each training step in <c>torch.NewDisposeScope()</c> to release it.
/// Call <c>eval()</c> to disable dropout.
/// </para>
/// </remarks>
public sealed partial class Gpt2LMHeadModel : nn.Module<Tensor, Tensor>, IHiddenStateModel, NicheTune.Text.IVocabularyResizable
{
    [ComponentName(Name = "transformer")]
    private readonly Gpt2Transformer _transformer;

    // Null when the output projection is tied to the token embedding.
    [ComponentName(Name = "lm_head")]
    private readonly Gpt2OutputHead? _lmHead;

    /// <summary>
    /// Builds a randomly initialized GPT-2 (Hugging Face's initialization scheme) on
    /// <paramref name="device"/>. Seed with <c>torch.manual_seed</c> beforehand for a reproducible
    /// model; load pretrained weights afterwards by parameter name to fine-tune a checkpoint.
    /// </summary>
    /// <param name="config">The hyper-parameters; validated before anything is allocated.</param>
    /// <param name="device">Where to allocate the parameters; <see langword="null"/> means torch's default device.</param>
    /// <exception cref="ArgumentNullException"><paramref name="config"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="config"/> fails <see cref="Gpt2Config.Validate"/>.</exception>
    public Gpt2LMHeadModel(Gpt2Config config, Device? device = null) : base(nameof(Gpt2LMHeadModel))
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;

        _transformer = new Gpt2Transformer(config, device);
        if (!config.TieWordEmbeddings)
        {
            _lmHead = new Gpt2OutputHead(config.VocabularySize, config.EmbeddingSize, device);
        }

        RegisterComponents();
        InitializeWeights();
    }

    /// <summary>The hyper-parameters this model was built with; <see cref="Gpt2Config.VocabularySize"/> follows a vocabulary extension.</summary>
    public Gpt2Config Config { get; private set; }

    /// <inheritdoc />
    void NicheTune.Text.IVocabularyResizable.OnVocabularyResized(int vocabularySize) => Config = Config.WithVocabularySize(vocabularySize);

    /// <summary>
    /// The [V, d] matrix that maps hidden states to logits: <c>transformer.wte.weight</c> when tied,
    /// otherwise <c>lm_head.weight</c>. Use it with <see cref="HiddenStates"/> to compute a fused or
    /// chunked cross-entropy without materialising the full [B, T, V] logits.
    /// </summary>
    public Tensor OutputWeight => _lmHead is null ? _transformer.TokenEmbedding.Weight : _lmHead.Weight;

    /// <summary>Always <see langword="null"/>: GPT-2's output projection has no bias.</summary>
    public Tensor? OutputBias => null;

    /// <summary>
    /// Computes next-token logits for a batch of unpadded (or causally safe) sequences.
    /// </summary>
    /// <param name="inputIds">Token ids, int64 (or int32) of shape [B, T] with 1 ≤ T ≤ <see cref="Gpt2Config.ContextLength"/>.</param>
    /// <returns>Logits of shape [B, T, V] in the parameters' dtype; position t predicts token t + 1.</returns>
    /// <exception cref="ArgumentException">The ids have the wrong rank, dtype or a length beyond the context length.</exception>
    public override Tensor forward(Tensor inputIds) => forward(inputIds, null);

    /// <summary>
    /// Computes next-token logits for a right-padded batch, keeping padding out of every real token's attention.
    /// </summary>
    /// <param name="inputIds">Token ids, int64 (or int32) of shape [B, T] with 1 ≤ T ≤ <see cref="Gpt2Config.ContextLength"/>.</param>
    /// <param name="attentionMask">
    /// [B, T] with 1 (or true) for real tokens and 0 for padding, or <see langword="null"/> when nothing is padded.
    /// Logits at padded positions are finite but meaningless; exclude them from the loss.
    /// </param>
    /// <returns>Logits of shape [B, T, V].</returns>
    /// <exception cref="ArgumentException">The ids or mask have an invalid shape, dtype or length.</exception>
    public Tensor forward(Tensor inputIds, Tensor? attentionMask)
    {
        using var scope = torch.NewDisposeScope();
        var hidden = HiddenStates(inputIds, attentionMask);
        var logits = nn.functional.linear(hidden, OutputWeight);
        return logits.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Runs the transformer up to and including the final layer norm (<c>ln_f</c>) without the output
    /// projection, so a caller can compute the loss in chunks against <see cref="OutputWeight"/>
    /// instead of holding the full [B, T, V] logits in memory.
    /// </summary>
    /// <param name="inputIds">Token ids, int64 (or int32) of shape [B, T] with 1 ≤ T ≤ <see cref="Gpt2Config.ContextLength"/>.</param>
    /// <param name="attentionMask">[B, T] with 1 for real tokens and 0 for (right) padding, or <see langword="null"/>.</param>
    /// <returns>Hidden states of shape [B, T, d].</returns>
    /// <exception cref="ArgumentException">The ids or mask have an invalid shape, dtype or length.</exception>
    public Tensor HiddenStates(Tensor inputIds, Tensor? attentionMask = null)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        CausalModelInputs.Validate(inputIds, attentionMask, Config.ContextLength);

        using var scope = torch.NewDisposeScope();
        var mask = attentionMask is null ? null : CausalModelInputs.AttentionMask(attentionMask, inputIds.size(1));
        var hidden = _transformer.forward(inputIds, mask);
        return hidden.MoveToOuterDisposeScope();
    }

    private void InitializeWeights()
    {
        var std = Config.InitializerRange;
        // GPT-2 paper: scale the residual projections by 1/sqrt(N) where N counts the two
        // residual additions per block, to keep the residual stream's variance from growing with depth.
        var projectionStd = std / Math.Sqrt(2.0 * Config.LayerCount);

        using var noGrad = torch.no_grad();
        nn.init.normal_(_transformer.TokenEmbedding.Weight, 0, std);
        nn.init.normal_(_transformer.PositionEmbedding.Weight, 0, std);

        var blocks = _transformer.Blocks;
        for (var i = 0; i < blocks.Count; i++)
        {
            var block = blocks[i];
            InitializeConv1D(block.Attention.QueryKeyValue, std);
            InitializeConv1D(block.Attention.Projection, projectionStd);
            InitializeConv1D(block.Mlp.Expansion, std);
            InitializeConv1D(block.Mlp.Projection, projectionStd);
        }

        // LayerNorm modules already start at weight = 1, bias = 0.
        if (_lmHead is not null)
        {
            nn.init.normal_(_lmHead.Weight, 0, std);
        }
    }

    private static void InitializeConv1D(Gpt2Conv1D layer, double std)
    {
        nn.init.normal_(layer.Weight, 0, std);
        nn.init.zeros_(layer.Bias);
    }
}
