namespace NicheTune.Augmentation;

/// <summary>WordNet's four open-class parts of speech (the ones that have synonyms).</summary>
public enum PartOfSpeech
{
    /// <summary>Noun (WordNet <c>n</c>).</summary>
    Noun,

    /// <summary>Verb (WordNet <c>v</c>).</summary>
    Verb,

    /// <summary>Adjective, satellites included (WordNet <c>a</c>/<c>s</c>).</summary>
    Adjective,

    /// <summary>Adverb (WordNet <c>r</c>).</summary>
    Adverb,
}
