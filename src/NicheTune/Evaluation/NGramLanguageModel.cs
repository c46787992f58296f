namespace NicheTune.Evaluation;

/// <summary>
/// The classical baseline for perplexity: an interpolated n-gram model over token ids with Witten–Bell smoothing
/// (each context's weight is its count over count plus distinct followers, the rest goes to the shorter context),
/// bottoming out in an add-one unigram. Train it on the same split as the neural model and report both: a fine-tune
/// that loses to it has not learned anything an n-gram could not.
/// </summary>
public sealed class NGramLanguageModel
{
    private readonly int _order;
    private readonly int _vocabularySize;
    private readonly Dictionary<ContextKey, Counts>[] _tables;
    private readonly long[] _unigram;
    private long _unigramTotal;

    /// <summary>Creates an empty model.</summary>
    /// <param name="order">n: 1 = unigram, 2 = bigram, …; at most 8.</param>
    /// <param name="vocabularySize">Number of token ids (for the add-one unigram floor).</param>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range.</exception>
    public NGramLanguageModel(int order, int vocabularySize)
    {
        if (order is < 1 or > 8)
        {
            throw new ArgumentOutOfRangeException(nameof(order), order, "The n-gram order must be between 1 and 8.");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(vocabularySize, 1);
        _order = order;
        _vocabularySize = vocabularySize;
        _unigram = new long[vocabularySize];
        _tables = new Dictionary<ContextKey, Counts>[order - 1];
        for (int i = 0; i < _tables.Length; i++)
        {
            _tables[i] = [];
        }
    }

    /// <summary>Counts every next-token event of <paramref name="sequences"/> (each position after the first, like the causal LM objective).</summary>
    /// <param name="sequences">Token-id sequences.</param>
    /// <returns>This model.</returns>
    public NGramLanguageModel Fit(IEnumerable<int[]> sequences)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        foreach (int[] s in sequences)
        {
            for (int t = 1; t < s.Length; t++)
            {
                int token = Check(s[t]);
                _unigram[token]++;
                _unigramTotal++;
                for (int n = 1; n < _order && n <= t; n++)
                {
                    var key = new ContextKey(s, t - n, n);
                    if (!_tables[n - 1].TryGetValue(key, out Counts? counts))
                    {
                        _tables[n - 1][key] = counts = new Counts();
                    }

                    counts.Add(token);
                }
            }
        }

        return this;
    }

    /// <summary>Perplexity over every next-token target of <paramref name="sequences"/>.</summary>
    /// <param name="sequences">Token-id sequences.</param>
    /// <returns>exp of the mean negative log-likelihood.</returns>
    public double Perplexity(IEnumerable<int[]> sequences)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        double nll = 0;
        long count = 0;
        foreach (int[] s in sequences)
        {
            for (int t = 1; t < s.Length; t++)
            {
                nll -= Math.Log(Probability(s, t));
                count++;
            }
        }

        return count == 0 ? double.NaN : Math.Exp(nll / count);
    }

    /// <summary>P(s[t] | the up to n − 1 tokens before it).</summary>
    /// <param name="sequence">The sequence.</param>
    /// <param name="position">The position of the predicted token, ≥ 1.</param>
    /// <returns>The interpolated probability.</returns>
    public double Probability(int[] sequence, int position)
    {
        int token = Check(sequence[position]);
        double p = (_unigram[token] + 1.0) / (_unigramTotal + _vocabularySize);
        for (int n = 1; n < _order && n <= position; n++)
        {
            if (!_tables[n - 1].TryGetValue(new ContextKey(sequence, position - n, n), out Counts? counts))
            {
                break;
            }

            double lambda = counts.Total / (double)(counts.Total + counts.Followers.Count);
            p = lambda * counts.Followers.GetValueOrDefault(token) / counts.Total + (1 - lambda) * p;
        }

        return p;
    }

    private int Check(int token) => token >= 0 && token < _vocabularySize
        ? token
        : throw new ArgumentOutOfRangeException(nameof(token), token, $"Token id {token} is outside the vocabulary [0, {_vocabularySize}).");

    private sealed class Counts
    {
        public Dictionary<int, long> Followers { get; } = [];

        public long Total { get; private set; }

        public void Add(int token)
        {
            Followers[token] = Followers.GetValueOrDefault(token) + 1;
            Total++;
        }
    }

    private readonly struct ContextKey : IEquatable<ContextKey>
    {
        private readonly int[] _tokens;

        public ContextKey(int[] source, int start, int length) => _tokens = source[start..(start + length)];

        public bool Equals(ContextKey other) => _tokens.AsSpan().SequenceEqual(other._tokens);

        public override bool Equals(object? obj) => obj is ContextKey other && Equals(other);

        public override int GetHashCode()
        {
            var hash = new HashCode();
            foreach (int t in _tokens)
            {
                hash.Add(t);
            }

            return hash.ToHashCode();
        }
    }
}
