using System.Collections.Immutable;

namespace NicheTune;

/// <summary>Thrown by <c>Build()</c> (or <c>Fit</c>) when a plan is invalid; lists every problem at once.</summary>
public sealed class FineTunePlanException : Exception
{
    /// <summary>Creates the exception from the list of problems.</summary>
    /// <param name="problems">Each problem: what is wrong, the value seen, and what to do.</param>
    public FineTunePlanException(IEnumerable<string> problems)
        : this([.. problems])
    {
    }

    private FineTunePlanException(ImmutableArray<string> problems)
        : base(Format(problems))
    {
        Problems = problems;
    }

    /// <summary>Every problem found, one message each.</summary>
    public ImmutableArray<string> Problems { get; }

    private static string Format(ImmutableArray<string> problems) => problems.Length == 1
        ? $"The fine-tuning plan is invalid: {problems[0]}"
        : $"The fine-tuning plan has {problems.Length} problems:{Environment.NewLine}" +
          string.Join(Environment.NewLine, problems.Select((p, i) => $"  {i + 1}. {p}"));
}
