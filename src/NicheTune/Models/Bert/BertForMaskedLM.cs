using TorchSharp;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace NicheTune.Models;

/// <summary>
/// BERT with its masked-language-modelling head, parameter for parameter Hugging Face's <c>BertForMaskedLM</c>:
/// <c>bert.*</c> (no pooler), <c>cls.predictions.transform.dense</c> / <c>.LayerNorm</c> and <c>cls.predictions.bias</c>.
/// Use it to continue pre-training on a niche corpus (domain-adaptive masked LM) before fine-tuning a classifier.
/// </summary>
/// <remarks>
/// With <see cref="BertConfig.TieWordEmbeddings"/> (every released BERT) the decoder reuses
/// <c>bert.embeddings.word_embeddings.weight</c> and <c>cls.predictions.decoder.weight</c> is not a parameter of its own;
/// the decoder's bias is <c>cls.predictions.bias</c>, as in HF.
/// </remarks>
public sealed class BertForMaskedLM : nn.Module<Tensor, Tensor?, Tensor>
{
    [ComponentName(Name = "bert")]
    private readonly BertModel _bert;

    [ComponentName(Name = "cls")]
    private readonly BertOnlyMLMHead _cls;

    /// <summary>Builds a randomly initialized model (HF initialization) on <paramref name="device"/>.</summary>
    /// <param name="config">The hyper-parameters; validated before anything is allocated.</param>
    /// <param name="device">Where to allocate the parameters; <see langword="null"/> means torch's default device.</param>
    /// <exception cref="ArgumentNullException"><paramref name="config"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="config"/> fails <see cref="BertConfig.Validate"/>.</exception>
    public BertForMaskedLM(BertConfig config, Device? device = null) : base(nameof(BertForMaskedLM))
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        _bert = new BertModel(config, device, addPoolingLayer: false, initialize: false);
        _cls = new BertOnlyMLMHead(config, device);
        RegisterComponents();
        BertModules.Initialize(this, config, _bert.WordEmbeddings);
    }

    /// <summary>The hyper-parameters this model was built with.</summary>
    public BertConfig Config { get; }

    /// <summary>The encoder (the <c>bert.</c> prefix).</summary>
    public BertModel Bert => _bert;

    /// <summary>The [V, d] decoder matrix: the word embedding when tied, otherwise <c>cls.predictions.decoder.weight</c>.</summary>
    public Tensor OutputWeight => _cls.Predictions.Decoder?.Weight ?? _bert.WordEmbeddingWeight;

    /// <summary>Computes token logits for a padded batch with all token types 0.</summary>
    /// <param name="inputIds">Token ids [B, T] (int64 or int32), with the positions to predict replaced by the mask token.</param>
    /// <param name="attentionMask">[B, T] with 1 for real tokens and 0 for padding, or <see langword="null"/>.</param>
    /// <returns>Logits [B, T, V].</returns>
    /// <exception cref="ArgumentException">The ids or mask have an invalid shape, dtype or length.</exception>
    public override Tensor forward(Tensor inputIds, Tensor? attentionMask) => forward(inputIds, attentionMask, null);

    /// <summary>Computes token logits with segment ids.</summary>
    /// <param name="inputIds">Token ids [B, T] (int64 or int32).</param>
    /// <param name="attentionMask">[B, T] with 1 for real tokens and 0 for padding, or <see langword="null"/>.</param>
    /// <param name="tokenTypeIds">[B, T] segment ids, or <see langword="null"/> for all 0.</param>
    /// <returns>Logits [B, T, V].</returns>
    /// <exception cref="ArgumentException">An input has an invalid shape, dtype or length.</exception>
    public Tensor forward(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds)
    {
        using var scope = torch.NewDisposeScope();
        var hidden = _bert.forward(inputIds, attentionMask, tokenTypeIds);
        return _cls.Predictions.Logits(hidden, _bert.WordEmbeddingWeight).MoveToOuterDisposeScope();
    }
}
