using System;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace NicheTune.Models;

/// <summary>
/// A Llama-family causal language model (Llama, Mistral without sliding window, Qwen2) whose
/// <c>named_parameters()</c> are exactly those of Hugging Face's <c>LlamaForCausalLM</c> / <c>Qwen2ForCausalLM</c> /
/// <c>MistralForCausalLM</c>: <c>model.embed_tokens.weight</c>, <c>model.layers.{i}.self_attn.{q,k,v,o}_proj.weight</c>
/// (and <c>.bias</c> where the config has biases), <c>model.layers.{i}.mlp.{gate,up,down}_proj.weight</c>,
/// <c>model.layers.{i}.input_layernorm.weight</c>, <c>model.layers.{i}.post_attention_layernorm.weight</c>,
/// <c>model.norm.weight</c> and <c>lm_head.weight</c> (absent when <see cref="LlamaConfig.TieWordEmbeddings"/>),
/// so a checkpoint's tensors load by name.
/// </summary>
/// <remarks>
/// <para>
/// Implements RMSNorm, rotary position embeddings (HF's rotate-half layout, <see cref="LlamaConfig.RopeTheta"/>),
/// grouped-query attention through <c>scaled_dot_product_attention</c>, and the SwiGLU feed-forward network.
/// Projections are <c>nn.Linear</c> modules invoked with <c>call</c>, so forward hooks (LoRA) apply to them.
/// </para>
/// <para>
/// The forward methods keep temporaries in private dispose scopes and hand only the result to the caller's
/// scope; wrap each training step in <c>torch.NewDisposeScope()</c>. Call <c>eval()</c> to disable attention dropout.
/// </para>
/// </remarks>
public sealed class LlamaForCausalLM : nn.Module<Tensor, Tensor>, ICausalLanguageModel, IHiddenStateModel
{
    [ComponentName(Name = "model")]
    private readonly LlamaModel _model;

    // Null when the output projection is tied to the token embedding.
    [ComponentName(Name = "lm_head")]
    private readonly Linear? _lmHead;

    /// <summary>
    /// Builds a randomly initialized model with Hugging Face's initialization (normal with standard deviation
    /// <see cref="LlamaConfig.InitializerRange"/> for embeddings and projections, zero biases, unit norms).
    /// Seed with <c>torch.manual_seed</c> for a reproducible model; load pretrained weights by name afterwards.
    /// </summary>
    /// <param name="config">The hyper-parameters; validated before anything is allocated.</param>
    /// <param name="device">Where to allocate the parameters; <see langword="null"/> means torch's default device.</param>
    /// <exception cref="ArgumentNullException"><paramref name="config"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="config"/> fails <see cref="LlamaConfig.Validate"/>.</exception>
    public LlamaForCausalLM(LlamaConfig config, Device? device = null) : base(nameof(LlamaForCausalLM))
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;

        _model = new LlamaModel(config, device);
        if (!config.TieWordEmbeddings)
        {
            _lmHead = nn.Linear(config.HiddenSize, config.VocabularySize, hasBias: false, device: device);
        }

        RegisterComponents();
        InitializeWeights();
    }

    /// <summary>The hyper-parameters this model was built with.</summary>
    public LlamaConfig Config { get; }

    /// <inheritdoc/>
    public int VocabularySize => Config.VocabularySize;

    /// <inheritdoc/>
    public int ContextLength => Config.ContextLength;

    /// <inheritdoc/>
    public int LayerCount => Config.LayerCount;

    /// <summary>
    /// The [V, d] matrix that maps hidden states to logits: <c>model.embed_tokens.weight</c> when tied, otherwise
    /// <c>lm_head.weight</c>. Use it with <see cref="HiddenStates"/> for a fused or chunked cross-entropy that never
    /// materialises the full [B, T, V] logits.
    /// </summary>
    public Tensor OutputWeight => _lmHead is null ? _model.TokenEmbedding.Weight : _lmHead.weight!;

    /// <summary>The output projection's bias: <see langword="null"/> for every supported config (HF's <c>lm_head</c> has none).</summary>
    public Tensor? OutputBias => _lmHead?.bias;

    /// <summary>Computes next-token logits for a batch of unpadded sequences.</summary>
    /// <param name="inputIds">Token ids, int64 (or int32) of shape [B, T] with 1 ≤ T ≤ <see cref="LlamaConfig.ContextLength"/>.</param>
    /// <returns>Logits [B, T, V] in the parameters' dtype; position t predicts token t + 1.</returns>
    /// <exception cref="ArgumentException">The ids have the wrong rank, dtype or a length beyond the context length.</exception>
    public override Tensor forward(Tensor inputIds) => forward(inputIds, null);

    /// <summary>Computes next-token logits for a padded batch, keeping padding out of every real token's attention.</summary>
    /// <param name="inputIds">Token ids, int64 (or int32) of shape [B, T] with 1 ≤ T ≤ <see cref="LlamaConfig.ContextLength"/>.</param>
    /// <param name="attentionMask">
    /// [B, T] with 1 (or true) for real tokens and 0 for padding, or <see langword="null"/>. Positions are 0 … T − 1
    /// in every row (as HF without <c>position_ids</c>), so pad on the right. Logits at padded positions are meaningless.
    /// </param>
    /// <returns>Logits [B, T, V].</returns>
    /// <exception cref="ArgumentException">The ids or mask have an invalid shape, dtype or length.</exception>
    public Tensor forward(Tensor inputIds, Tensor? attentionMask)
    {
        using var scope = torch.NewDisposeScope();
        var hidden = HiddenStates(inputIds, attentionMask);
        return Project(hidden).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Runs the decoder up to and including the final norm (<c>model.norm</c>) without the output projection, so a
    /// caller can compute the loss in chunks against <see cref="OutputWeight"/>.
    /// </summary>
    /// <param name="inputIds">Token ids, int64 (or int32) of shape [B, T].</param>
    /// <param name="attentionMask">[B, T] with 1 for real tokens and 0 for (right) padding, or <see langword="null"/>.</param>
    /// <returns>Hidden states [B, T, d].</returns>
    /// <exception cref="ArgumentException">The ids or mask have an invalid shape, dtype or length.</exception>
    public Tensor HiddenStates(Tensor inputIds, Tensor? attentionMask = null)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        CausalModelInputs.Validate(inputIds, attentionMask, Config.ContextLength);

        using var scope = torch.NewDisposeScope();
        var mask = attentionMask is null ? null : CausalModelInputs.AttentionMask(attentionMask, inputIds.size(1));
        return _model.Forward(inputIds, mask, null).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public Tensor NextTokenLogits(Tensor inputIds, KeyValueCache? cache = null)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        CausalModelInputs.Validate(inputIds, null, Config.ContextLength, cache?.Length ?? 0);
        cache?.EnsureUsable(LayerCount, inputIds.size(0), inputIds.size(1), ContextLength);

        using var scope = torch.NewDisposeScope();
        var hidden = _model.Forward(inputIds, null, cache);
        var last = hidden.select(1, hidden.size(1) - 1);
        return Project(last).MoveToOuterDisposeScope();
    }

    private Tensor Project(Tensor hidden) =>
        _lmHead is null ? nn.functional.linear(hidden, _model.TokenEmbedding.Weight) : _lmHead.call(hidden);

    private void InitializeWeights()
    {
        var std = Config.InitializerRange;
        using var noGrad = torch.no_grad();
        var embedding = _model.TokenEmbedding.Weight;
        nn.init.normal_(embedding, 0, std);
        if (Config.PadTokenId is { } pad)
        {
            // HF's nn.Embedding(padding_idx=pad_token_id) starts the padding row at zero.
            using var row = embedding[pad];
            row.zero_();
        }

        var layers = _model.Layers;
        for (var i = 0; i < layers.Count; i++)
        {
            var attention = layers[i].Attention;
            var mlp = layers[i].Mlp;
            InitializeLinear(attention.QueryProjection, std);
            InitializeLinear(attention.KeyProjection, std);
            InitializeLinear(attention.ValueProjection, std);
            InitializeLinear(attention.OutputProjection, std);
            InitializeLinear(mlp.GateProjection, std);
            InitializeLinear(mlp.UpProjection, std);
            InitializeLinear(mlp.DownProjection, std);
        }

        if (_lmHead is not null)
        {
            InitializeLinear(_lmHead, std);
        }
    }

    private static void InitializeLinear(Linear layer, double std)
    {
        nn.init.normal_(layer.weight, 0, std);
        if (layer.bias is { } bias)
        {
            nn.init.zeros_(bias);
        }
    }
}
