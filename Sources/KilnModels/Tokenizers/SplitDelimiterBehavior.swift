/// What a splitting pre-tokenizer does with the delimiters it finds (tokenizers'
/// `SplitDelimiterBehavior`). Splitting `the-final--countdown` on `-`:
///
/// | behavior | pieces |
/// |---|---|
/// | removed | `the` `final` `countdown` |
/// | isolated | `the` `-` `final` `-` `-` `countdown` |
/// | mergedWithPrevious | `the-` `final-` `-` `countdown` |
/// | mergedWithNext | `the` `-final` `-` `-countdown` |
/// | contiguous | `the` `-` `final` `--` `countdown` |
public enum SplitDelimiterBehavior: String, Sendable, CaseIterable {
    /// Delimiters are dropped.
    case removed = "Removed"
    /// Each delimiter is a piece of its own.
    case isolated = "Isolated"
    /// A delimiter joins the piece before it, unless that piece is a delimiter itself.
    case mergedWithPrevious = "MergedWithPrevious"
    /// A delimiter joins the piece after it, unless that piece is a delimiter itself.
    case mergedWithNext = "MergedWithNext"
    /// Consecutive delimiters form one piece.
    case contiguous = "Contiguous"

    /// A stretch of text that is a delimiter match or lies between matches.
    struct Span: Equatable {
        /// Scalar offsets.
        var range: Range<Int>
        /// Whether the stretch is a delimiter.
        var isMatch: Bool
    }

    /// The ranges of the pieces `spans` (consecutive, covering the text) give; empty pieces
    /// are kept here and dropped by the caller, as tokenizers drops them.
    func pieces(of spans: [Span]) -> [Range<Int>] {
        switch self {
        case .removed:
            return spans.filter { !$0.isMatch }.map(\.range)
        case .isolated:
            return spans.map(\.range)
        case .contiguous:
            var pieces: [Range<Int>] = []
            var previousWasMatch = false
            for span in spans {
                if span.isMatch == previousWasMatch, let last = pieces.last {
                    pieces[pieces.count - 1] = last.lowerBound..<span.range.upperBound
                } else {
                    pieces.append(span.range)
                }
                previousWasMatch = span.isMatch
            }
            return pieces
        case .mergedWithPrevious:
            var pieces: [Range<Int>] = []
            var previousWasMatch = false
            for span in spans {
                if span.isMatch, !previousWasMatch, let last = pieces.last {
                    pieces[pieces.count - 1] = last.lowerBound..<span.range.upperBound
                } else {
                    pieces.append(span.range)
                }
                previousWasMatch = span.isMatch
            }
            return pieces
        case .mergedWithNext:
            // Walked backwards: a delimiter joins the piece after it.
            var pieces: [Range<Int>] = []
            var nextWasMatch = false
            for span in spans.reversed() {
                if span.isMatch, !nextWasMatch, let last = pieces.last {
                    pieces[pieces.count - 1] = span.range.lowerBound..<last.upperBound
                } else {
                    pieces.append(span.range)
                }
                nextWasMatch = span.isMatch
            }
            return pieces.reversed()
        }
    }

    /// The spans of a per-scalar delimiter test: every scalar it accepts is a one-scalar match
    /// (tokenizers' `find_matches` for a character predicate).
    static func spans(of scalars: [Unicode.Scalar], delimiter isDelimiter: (Unicode.Scalar) -> Bool) -> [Span] {
        guard !scalars.isEmpty else { return [Span(range: 0..<0, isMatch: false)] }
        var spans: [Span] = []
        var start = 0
        for (index, scalar) in scalars.enumerated() where isDelimiter(scalar) {
            if start < index { spans.append(Span(range: start..<index, isMatch: false)) }
            spans.append(Span(range: index..<(index + 1), isMatch: true))
            start = index + 1
        }
        if start < scalars.count { spans.append(Span(range: start..<scalars.count, isMatch: false)) }
        return spans
    }
}
