namespace NicheTune.Tests.Support;

/// <summary>
/// The classical baseline for perplexity: an add-k smoothed n-gram model over token ids, trained on the same split.
/// Perplexity is computed over the same next-token targets the causal LM objective uses (every token after the first of each sequence).
/// </summary>
internal sealed class NGramBaseline
{
    private readonly int _order;
    private readonly int _vocabulary;
    private readonly double _k;
    private readonly Dictionary<string, Dictionary<int, int>> _counts = new();
    private readonly Dictionary<string, int> _totals = new();

    public NGramBaseline(int order, int vocabulary, double k = 0.1)
    {
        _order = order;
        _vocabulary = vocabulary;
        _k = k;
    }

    public NGramBaseline Train(IEnumerable<int[]> sequences)
    {
        foreach (int[] s in sequences)
        {
            for (int t = 1; t < s.Length; t++)
            {
                string context = Context(s, t);
                if (!_counts.TryGetValue(context, out var next))
                {
                    _counts[context] = next = new Dictionary<int, int>();
                }

                next[s[t]] = next.GetValueOrDefault(s[t]) + 1;
                _totals[context] = _totals.GetValueOrDefault(context) + 1;
            }
        }

        return this;
    }

    public double Perplexity(IEnumerable<int[]> sequences)
    {
        double nll = 0;
        long count = 0;
        foreach (int[] s in sequences)
        {
            for (int t = 1; t < s.Length; t++)
            {
                string context = Context(s, t);
                int c = _counts.TryGetValue(context, out var next) ? next.GetValueOrDefault(s[t]) : 0;
                int total = _totals.GetValueOrDefault(context);
                nll -= Math.Log((c + _k) / (total + _k * _vocabulary));
                count++;
            }
        }

        return Math.Exp(nll / count);
    }

    private string Context(int[] s, int t)
    {
        int start = Math.Max(0, t - (_order - 1));
        return string.Join(',', s[start..t]);
    }
}
