using TorchSharp;
using TorchSharp.Utils;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NicheTune.Models;

/// <summary>
/// BERT with a classification head on the pooled [CLS] state, parameter for parameter Hugging Face's
/// <c>BertForSequenceClassification</c>: <c>bert.*</c> (with the pooler), dropout, and <c>classifier.weight</c> /
/// <c>classifier.bias</c>. It maps (input ids, attention mask) to logits [B, C], so it trains directly with
/// <c>FineTuner.For(model).WithObjective(Objectives.SequenceClassification())</c>.
/// </summary>
public sealed class BertForSequenceClassification : nn.Module<Tensor, Tensor?, Tensor>
{
    [ComponentName(Name = "bert")]
    private readonly BertModel _bert;

    [ComponentName(Name = "dropout")]
    private readonly Dropout _dropout;

    [ComponentName(Name = "classifier")]
    private readonly Linear _classifier;

    /// <summary>Builds a randomly initialized classifier (HF initialization) with <see cref="BertConfig.ResolvedLabelCount"/> classes.</summary>
    /// <param name="config">The hyper-parameters; validated before anything is allocated.</param>
    /// <param name="device">Where to allocate the parameters; <see langword="null"/> means torch's default device.</param>
    /// <exception cref="ArgumentNullException"><paramref name="config"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="config"/> fails <see cref="BertConfig.Validate"/>.</exception>
    public BertForSequenceClassification(BertConfig config, Device? device = null) : base(nameof(BertForSequenceClassification))
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        _bert = new BertModel(config, device, addPoolingLayer: true, initialize: false);
        _dropout = nn.Dropout(config.ClassifierDropout ?? config.HiddenDropout);
        _classifier = nn.Linear(config.HiddenSize, config.ResolvedLabelCount, hasBias: true, device: device);
        RegisterComponents();
        BertModules.Initialize(this, config, _bert.WordEmbeddings);
    }

    /// <summary>The hyper-parameters this model was built with.</summary>
    public BertConfig Config { get; }

    /// <summary>The encoder (the <c>bert.</c> prefix).</summary>
    public BertModel Bert => _bert;

    /// <summary>Computes class logits for a padded batch with all token types 0.</summary>
    /// <param name="inputIds">Token ids [B, T] (int64 or int32).</param>
    /// <param name="attentionMask">[B, T] with 1 for real tokens and 0 for padding, or <see langword="null"/>.</param>
    /// <returns>Logits [B, C].</returns>
    /// <exception cref="ArgumentException">The ids or mask have an invalid shape, dtype or length.</exception>
    public override Tensor forward(Tensor inputIds, Tensor? attentionMask) => forward(inputIds, attentionMask, null);

    /// <summary>Computes class logits with segment ids (sentence-pair tasks).</summary>
    /// <param name="inputIds">Token ids [B, T] (int64 or int32).</param>
    /// <param name="attentionMask">[B, T] with 1 for real tokens and 0 for padding, or <see langword="null"/>.</param>
    /// <param name="tokenTypeIds">[B, T] segment ids, or <see langword="null"/> for all 0.</param>
    /// <returns>Logits [B, C].</returns>
    /// <exception cref="ArgumentException">An input has an invalid shape, dtype or length.</exception>
    public Tensor forward(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds)
    {
        using var scope = torch.NewDisposeScope();
        var pooled = _bert.Pool(_bert.forward(inputIds, attentionMask, tokenTypeIds));
        return _classifier.call(_dropout.call(pooled)).MoveToOuterDisposeScope();
    }
}
