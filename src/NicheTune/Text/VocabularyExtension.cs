using NicheTune.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NicheTune.Text;

/// <summary>
/// Adds a niche domain's terms (product names, drug names, jargon) to a pretrained tokenizer as whole tokens and grows
/// the model's token embedding to match, so that a term the base vocabulary splits into many pieces becomes one id
/// whose vector starts at the mean of those pieces' vectors: the model begins from what it already knows about the
/// term's spelling, instead of a random row, and sequences get shorter.
/// </summary>
/// <remarks>
/// Call it before creating the optimizer (or the trainer): the embedding parameters are resized in place (same
/// <see cref="Parameter"/> objects, so fields, tied heads and <c>named_parameters()</c> all see the new rows), and
/// any gradient they held is dropped. A model whose configuration records its vocabulary size implements
/// <see cref="IVocabularyResizable"/> (<see cref="Gpt2LMHeadModel"/> does) and is told the new size, so a saved
/// <c>config.json</c> stays consistent with the weights.
/// </remarks>
public static class VocabularyExtension
{
    /// <summary>Adds <paramref name="terms"/> to a GPT-2 model and its tokenizer (<c>transformer.wte.weight</c>, and <c>lm_head.weight</c> when untied).</summary>
    /// <param name="model">The model; its <see cref="Gpt2LMHeadModel.Config"/> is updated to the new vocabulary size.</param>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="terms">Domain terms, matched case-sensitively as written.</param>
    /// <returns>What was added, and the extended tokenizer to use from now on.</returns>
    /// <exception cref="ArgumentException">A term is empty or whitespace.</exception>
    /// <exception cref="InvalidOperationException">The tokenizer does not fit the model's embedding.</exception>
    public static VocabularyExtensionResult Extend(Gpt2LMHeadModel model, ITextTokenizer tokenizer, IEnumerable<string> terms) =>
        Extend(model, tokenizer, terms, EmbeddingParameterNames.Gpt2);

    /// <summary>
    /// Adds <paramref name="terms"/> as new tokens to <paramref name="tokenizer"/> and grows the named embedding matrices
    /// of <paramref name="model"/>: each new row is the mean of the rows of the sub-tokens the base tokenizer splits the
    /// term into. Terms that already are one token, repeat an earlier term or encode to nothing are skipped and listed.
    /// </summary>
    /// <param name="model">Any module whose token embedding (and untied output head) are [V, d] parameters.</param>
    /// <param name="tokenizer">The model's tokenizer (it may already carry added tokens).</param>
    /// <param name="terms">Domain terms, matched case-sensitively as written (add "Kubernetes" and " Kubernetes" for GPT-2 to match it after a space as one token).</param>
    /// <param name="names">Which parameters to grow (<see cref="EmbeddingParameterNames.Gpt2"/>, <see cref="EmbeddingParameterNames.Bert"/>, <see cref="EmbeddingParameterNames.Llama"/> or your own).</param>
    /// <returns>What was added, and the extended tokenizer to use from now on.</returns>
    /// <exception cref="ArgumentException">A term is empty or whitespace, or the input embedding name matches no [V, d] parameter.</exception>
    /// <exception cref="InvalidOperationException">The tokenizer does not fit the model's embedding, or the output head's rows differ from the embedding's.</exception>
    public static VocabularyExtensionResult Extend(nn.Module model, ITextTokenizer tokenizer, IEnumerable<string> terms, EmbeddingParameterNames names)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(terms);
        ArgumentNullException.ThrowIfNull(names);

        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        if (!parameters.TryGetValue(names.Input, out Parameter? input) || input.dim() != 2)
        {
            string closest = string.Join(", ", parameters.Keys.Where(n => n.Contains("embed", StringComparison.OrdinalIgnoreCase) || n.Contains("wte", StringComparison.Ordinal)).Take(5));
            throw new ArgumentException(
                $"The model has no [V, d] parameter named '{names.Input}'; pass the token embedding's name in EmbeddingParameterNames. " +
                $"Embedding-like parameters present: {(closest.Length == 0 ? "none" : closest)}.",
                nameof(names));
        }

        Parameter? output = names.Output is { } outputName && parameters.TryGetValue(outputName, out Parameter? head) && head.Handle != input.Handle ? head : null;
        long rows = input.size(0);
        if (output is not null && (output.dim() != 2 || output.size(0) != rows))
        {
            throw new InvalidOperationException(
                $"The output head '{names.Output}' has shape [{string.Join(", ", output.shape)}] but the token embedding '{names.Input}' has {rows} rows; both must be [V, d] with the same V.");
        }

        Tokenizers.EnsureFits(tokenizer, rows);

        var added = new List<AddedTerm>();
        var skipped = new List<string>();
        var newTokens = new List<KeyValuePair<string, int>>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        int nextId = tokenizer.VocabularySize;
        foreach (string term in terms)
        {
            if (string.IsNullOrWhiteSpace(term))
            {
                throw new ArgumentException($"Term {added.Count + skipped.Count} is empty or whitespace; give each domain term as its text.", nameof(terms));
            }

            int[] pieces = tokenizer.Encode(term, addSpecialTokens: false);
            if (!seen.Add(term) || pieces.Length <= 1 || tokenizer.TokenToId(term) is not null)
            {
                skipped.Add(term);
                continue;
            }

            added.Add(new AddedTerm(term, nextId, pieces));
            newTokens.Add(new(term, nextId));
            nextId++;
        }

        var extended = new AddedTokensTokenizer(tokenizer, newTokens);
        long newRows = Math.Max(rows, extended.VocabularySize);
        var resized = new List<string>();
        if (added.Count > 0)
        {
            Grow(input, added, newRows);
            resized.Add(names.Input);
            // A head that shares the embedding's tensor (tied) already has the new rows after set_: grow it only if not.
            if (output is not null && output.size(0) == rows)
            {
                Grow(output, added, newRows);
                resized.Add(names.Output!);
            }

            if (model is IVocabularyResizable resizable)
            {
                resizable.OnVocabularyResized(checked((int)newRows));
            }
        }

        return new VocabularyExtensionResult(extended, added, skipped, checked((int)rows), checked((int)newRows), resized);
    }

    private static void Grow(Parameter parameter, List<AddedTerm> added, long newRows)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        long rows = parameter.size(0);
        var grown = torch.zeros(newRows, parameter.size(1), dtype: parameter.dtype, device: parameter.device);
        grown.narrow(0, 0, rows).copy_(parameter);
        foreach (AddedTerm term in added)
        {
            var pieces = torch.tensor(term.SubTokenIds.Select(i => (long)i).ToArray(), device: parameter.device);
            grown[term.Id].copy_(parameter.index_select(0, pieces).mean([0]));
        }

        // set_ swaps the storage under the same tensor object, so every reference to this parameter (a module field,
        // the registered parameter, a tied head) sees the grown matrix; a stale gradient of the old shape must go.
        parameter.set_(grown);
        parameter.grad = null;
    }
}

/// <summary>The fully qualified names of a model's token embedding and (untied) output head, each a [V, d] matrix.</summary>
/// <param name="Input">The token embedding (e.g. <c>transformer.wte.weight</c>).</param>
/// <param name="Output">The output head, grown too when the model has it as a separate parameter; absent or tied heads are skipped.</param>
public sealed record EmbeddingParameterNames(string Input, string? Output = null)
{
    /// <summary>GPT-2 (<c>GPT2LMHeadModel</c>): <c>transformer.wte.weight</c> and, when untied, <c>lm_head.weight</c>.</summary>
    public static EmbeddingParameterNames Gpt2 { get; } = new("transformer.wte.weight", "lm_head.weight");

    /// <summary>BERT (<c>BertFor…</c>): <c>bert.embeddings.word_embeddings.weight</c> (the masked-LM decoder is tied to it).</summary>
    public static EmbeddingParameterNames Bert { get; } = new("bert.embeddings.word_embeddings.weight");

    /// <summary>Llama (<c>LlamaForCausalLM</c>): <c>model.embed_tokens.weight</c> and, when untied, <c>lm_head.weight</c>.</summary>
    public static EmbeddingParameterNames Llama { get; } = new("model.embed_tokens.weight", "lm_head.weight");
}

/// <summary>A term added as a token: its text, new id and the base ids whose embedding mean initialised its row.</summary>
/// <param name="Term">The term.</param>
/// <param name="Id">Its new token id.</param>
/// <param name="SubTokenIds">The ids the tokenizer split it into before.</param>
public sealed record AddedTerm(string Term, int Id, int[] SubTokenIds);

/// <summary>The outcome of <see cref="VocabularyExtension.Extend(nn.Module, ITextTokenizer, IEnumerable{string}, EmbeddingParameterNames)"/>.</summary>
/// <param name="Tokenizer">The tokenizer with the new tokens: use it from now on, and <see cref="AddedTokensTokenizer.Save"/> it with the model.</param>
/// <param name="Added">The terms added, in order.</param>
/// <param name="Skipped">Terms not added: already one token, repeated, or encoded to a single piece.</param>
/// <param name="PreviousRows">The embedding rows before.</param>
/// <param name="Rows">The embedding rows now.</param>
/// <param name="ResizedParameters">The parameter names that were grown.</param>
public sealed record VocabularyExtensionResult(
    AddedTokensTokenizer Tokenizer,
    IReadOnlyList<AddedTerm> Added,
    IReadOnlyList<string> Skipped,
    int PreviousRows,
    int Rows,
    IReadOnlyList<string> ResizedParameters);

/// <summary>
/// Implemented by models whose configuration records the vocabulary size (HF <c>vocab_size</c>), so that
/// <see cref="VocabularyExtension"/> can keep it equal to the token embedding's rows after growing them.
/// </summary>
public interface IVocabularyResizable
{
    /// <summary>Called after the token embedding (and output head) were resized to <paramref name="vocabularySize"/> rows.</summary>
    /// <param name="vocabularySize">The new number of rows.</param>
    void OnVocabularyResized(int vocabularySize);
}
