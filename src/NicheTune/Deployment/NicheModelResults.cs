using System.Collections.Immutable;

namespace NicheTune.Deployment;

/// <summary>A served classifier's answer.</summary>
/// <param name="Label">The most probable label.</param>
/// <param name="Index">Its class id.</param>
/// <param name="Probabilities">The probability of every class, in class-id order.</param>
public sealed record ClassificationResult(string Label, int Index, ImmutableArray<float> Probabilities)
{
    /// <summary>The probability of <see cref="Label"/>.</summary>
    public float Confidence => Probabilities[Index];
}

/// <summary>How likely a causal language model finds a text.</summary>
/// <param name="LogLikelihood">The sum of the log-probabilities of every token after the first, given the tokens before it (natural log).</param>
/// <param name="TokenCount">The tokens of the (possibly truncated) text; <paramref name="TokenCount"/> − 1 of them were predicted.</param>
public sealed record TextScore(double LogLikelihood, int TokenCount)
{
    /// <summary>exp(−LogLikelihood / (TokenCount − 1)): the model's perplexity on the text; lower means more expected.</summary>
    public double Perplexity => Math.Exp(-LogLikelihood / Math.Max(1, TokenCount - 1));
}
