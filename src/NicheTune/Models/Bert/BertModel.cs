using TorchSharp;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace NicheTune.Models;

/// <summary>
/// A BERT encoder whose <c>named_parameters()</c> are exactly those of Hugging Face's <c>BertModel</c>
/// (<c>embeddings.*</c>, <c>encoder.layer.{i}.*</c>, <c>pooler.dense.*</c>), so that a checkpoint's tensors load by name
/// without renaming or transposing. Use it to embed text (the hidden states or the pooled first token), or as the body
/// of <see cref="BertForMaskedLM"/> and <see cref="BertForSequenceClassification"/>.
/// </summary>
/// <remarks>
/// Attention runs through <c>scaled_dot_product_attention</c> with the padding mask; sub-layers are invoked through
/// <c>call</c>, so forward hooks (LoRA adapters) on any <c>nn.Linear</c> run. Call <c>eval()</c> to disable dropout,
/// and wrap each step in <c>torch.NewDisposeScope()</c>: the forward methods hand only their result to the caller's scope.
/// </remarks>
public sealed class BertModel : nn.Module<Tensor, Tensor?, Tensor>
{
    [ComponentName(Name = "embeddings")]
    private readonly BertEmbeddings _embeddings;

    [ComponentName(Name = "encoder")]
    private readonly BertEncoder _encoder;

    // Null without a pooling layer (the masked-LM body has none, as in HF).
    [ComponentName(Name = "pooler")]
    private readonly BertPooler? _pooler;

    /// <summary>
    /// Builds a randomly initialized BERT encoder (Hugging Face's initialization) on <paramref name="device"/>. Seed
    /// with <c>torch.manual_seed</c> for a reproducible model; load pretrained weights with <see cref="PretrainedModel.Load(string, PretrainedLoadOptions?)"/>.
    /// </summary>
    /// <param name="config">The hyper-parameters; validated before anything is allocated.</param>
    /// <param name="device">Where to allocate the parameters; <see langword="null"/> means torch's default device.</param>
    /// <param name="addPoolingLayer">Whether to include <c>pooler.dense</c> (HF <c>add_pooling_layer</c>).</param>
    /// <exception cref="ArgumentNullException"><paramref name="config"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="config"/> fails <see cref="BertConfig.Validate"/>.</exception>
    public BertModel(BertConfig config, Device? device = null, bool addPoolingLayer = true)
        : this(config, device, addPoolingLayer, initialize: true)
    {
    }

    internal BertModel(BertConfig config, Device? device, bool addPoolingLayer, bool initialize) : base(nameof(BertModel))
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        _embeddings = new BertEmbeddings(config, device);
        _encoder = new BertEncoder(config, device);
        if (addPoolingLayer)
        {
            _pooler = new BertPooler(config, device);
        }

        RegisterComponents();
        if (initialize)
        {
            BertModules.Initialize(this, config, _embeddings.WordEmbeddings);
        }
    }

    /// <summary>The hyper-parameters this model was built with.</summary>
    public BertConfig Config { get; }

    /// <summary>Whether the model has the pooling layer that <see cref="Pool"/> needs.</summary>
    public bool HasPooler => _pooler is not null;

    /// <summary>The word-embedding matrix [V, d] (<c>embeddings.word_embeddings.weight</c>), which the masked-LM decoder shares.</summary>
    public Tensor WordEmbeddingWeight => _embeddings.WordEmbeddings.Weight;

    internal Gpt2Embedding WordEmbeddings => _embeddings.WordEmbeddings;

    /// <summary>Runs the encoder on a (right- or left-) padded batch with all token types 0.</summary>
    /// <param name="inputIds">Token ids, int64 (or int32) of shape [B, T] with 1 ≤ T ≤ <see cref="BertConfig.MaxPositions"/>.</param>
    /// <param name="attentionMask">[B, T] with 1 for real tokens and 0 for padding, or <see langword="null"/> when nothing is padded.</param>
    /// <returns>The last hidden states [B, T, d]; those at padded positions are meaningless.</returns>
    /// <exception cref="ArgumentException">The ids or mask have an invalid shape, dtype or length.</exception>
    public override Tensor forward(Tensor inputIds, Tensor? attentionMask) => forward(inputIds, attentionMask, null);

    /// <summary>Runs the encoder with segment ids (sentence pairs).</summary>
    /// <param name="inputIds">Token ids, int64 (or int32) of shape [B, T] with 1 ≤ T ≤ <see cref="BertConfig.MaxPositions"/>.</param>
    /// <param name="attentionMask">[B, T] with 1 for real tokens and 0 for padding, or <see langword="null"/>.</param>
    /// <param name="tokenTypeIds">[B, T] segment ids below <see cref="BertConfig.TypeVocabularySize"/>, or <see langword="null"/> for all 0.</param>
    /// <returns>The last hidden states [B, T, d].</returns>
    /// <exception cref="ArgumentException">An input has an invalid shape, dtype or length.</exception>
    public Tensor forward(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds)
    {
        BertModules.ValidateInputs(Config, inputIds, attentionMask, tokenTypeIds);
        using var scope = torch.NewDisposeScope();
        var mask = attentionMask is null ? null : BertModules.KeyMask(attentionMask);
        var hidden = _encoder.call(_embeddings.call(inputIds, tokenTypeIds), mask);
        return hidden.MoveToOuterDisposeScope();
    }

    /// <summary>The pooled output: tanh(dense(hidden state of the first, [CLS], token)), shape [B, d].</summary>
    /// <param name="lastHiddenState">The [B, T, d] result of <c>forward</c>.</param>
    /// <returns>The pooled [B, d] tensor.</returns>
    /// <exception cref="InvalidOperationException">The model was built without a pooling layer.</exception>
    public Tensor Pool(Tensor lastHiddenState)
    {
        ArgumentNullException.ThrowIfNull(lastHiddenState);
        if (_pooler is null)
        {
            throw new InvalidOperationException("This BertModel was built without a pooling layer (addPoolingLayer: false); pool the hidden states yourself, e.g. take lastHiddenState[:, 0].");
        }

        return _pooler.call(lastHiddenState);
    }
}
