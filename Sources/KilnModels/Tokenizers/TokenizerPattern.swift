/// What a `Replace` normalizer or a `Split` pre-tokenizer of a Hugging Face `tokenizer.json`
/// looks for: `{"String": …}` or `{"Regex": …}`.
public enum TokenizerPattern: Sendable, Equatable {
    /// A literal string (tokenizers escapes it into a regular expression, so the empty string
    /// matches, emptily, at every position).
    case string(String)
    /// A regular expression.
    case regex(CheckedRegex)

    /// A compiled regular-expression pattern.
    ///
    /// - Throws: ``T5TokenizerError/invalidRegex(pattern:reason:)`` when it does not compile.
    public static func regex(_ pattern: String) throws -> TokenizerPattern {
        .regex(try CheckedRegex(pattern))
    }

    /// The non-overlapping matches in `scalars`, left to right, as scalar offset ranges, with
    /// tokenizers' (Oniguruma's) iteration: after a match, the search goes on at its end, and an
    /// empty match right where the previous match ended is skipped. Empty text has no matches.
    func matches(in scalars: [Unicode.Scalar]) -> [Range<Int>] {
        // tokenizers looks for no match at all in empty text.
        guard !scalars.isEmpty else { return [] }
        switch self {
        case .string(let literal):
            return Self.literalMatches(of: Array(literal.unicodeScalars), in: scalars)
        case .regex(let regex):
            return regex.matches(in: scalars)
        }
    }

    /// The whole of `scalars` as consecutive stretches, each marked as a match or not
    /// (tokenizers' `find_matches`); empty text gives one empty non-match.
    func spans(in scalars: [Unicode.Scalar]) -> [SplitDelimiterBehavior.Span] {
        guard !scalars.isEmpty else { return [.init(range: 0..<0, isMatch: false)] }
        var spans: [SplitDelimiterBehavior.Span] = []
        var previousEnd = 0
        for match in matches(in: scalars) {
            if previousEnd != match.lowerBound {
                spans.append(.init(range: previousEnd..<match.lowerBound, isMatch: false))
            }
            spans.append(.init(range: match, isMatch: true))
            previousEnd = match.upperBound
        }
        if previousEnd != scalars.count {
            spans.append(.init(range: previousEnd..<scalars.count, isMatch: false))
        }
        return spans
    }

    private static func literalMatches(of needle: [Unicode.Scalar], in scalars: [Unicode.Scalar]) -> [Range<Int>] {
        guard !needle.isEmpty else {
            // An empty pattern matches at every position, the end included.
            return (0...scalars.count).map { $0..<$0 }
        }
        var matches: [Range<Int>] = []
        var index = 0
        while index + needle.count <= scalars.count {
            if scalars[index..<(index + needle.count)].elementsEqual(needle) {
                matches.append(index..<(index + needle.count))
                index += needle.count
            } else {
                index += 1
            }
        }
        return matches
    }
}

/// A regular-expression pattern known to compile. Only the pattern text is kept (Swift's `Regex`
/// is not `Sendable`); it is compiled again where it is used.
///
/// tokenizers compiles patterns with Oniguruma; Kiln compiles them with Swift's `Regex`, matching
/// on Unicode scalars, after ``OnigurumaPattern`` has rewritten what the two spell differently.
/// Two differences remain: `^` matches at the start of every line as in Oniguruma, but Swift
/// also starts a line after `\r`, U+000B, U+000C, U+0085, U+2028 and U+2029, where Oniguruma
/// counts only `\n` (Swift's `Regex` has no lookbehind to say so); and `(?i)` folds case simply
/// where Oniguruma folds fully (`ß` against `SS`).
public struct CheckedRegex: Sendable, Equatable {
    /// The pattern text, as written in `tokenizer.json`.
    public let pattern: String

    /// Checks that `pattern` compiles.
    ///
    /// - Throws: ``T5TokenizerError/invalidRegex(pattern:reason:)`` when it does not.
    public init(_ pattern: String) throws {
        do {
            _ = try Regex(OnigurumaPattern.swiftPattern(pattern))
        } catch {
            throw T5TokenizerError.invalidRegex(pattern: pattern, reason: "\(error)")
        }
        self.pattern = pattern
    }

    /// The matches in `scalars` (see ``TokenizerPattern/matches(in:)``).
    func matches(in scalars: [Unicode.Scalar]) -> [Range<Int>] {
        // The initializer compiled this very pattern, so compiling it again succeeds.
        guard let compiled = try? Regex(OnigurumaPattern.swiftPattern(pattern)) else { return [] }
        let regex = compiled.matchingSemantics(.unicodeScalar).anchorsMatchLineEndings()
        let text = String(String.UnicodeScalarView(scalars))
        // Scalar offset of every UTF-8 offset that starts a scalar.
        var scalarOffset = [Int](repeating: 0, count: text.utf8.count + 1)
        var utf8Offset = 0
        for (index, scalar) in scalars.enumerated() {
            scalarOffset[utf8Offset] = index
            utf8Offset += UTF8.width(scalar)
        }
        scalarOffset[utf8Offset] = scalars.count
        var matches: [Range<Int>] = []
        var previousEnd: Int?
        for match in text.matches(of: regex) {
            // UTF-8 distances are constant-time on native strings.
            let start = scalarOffset[text.utf8.distance(from: text.utf8.startIndex, to: match.range.lowerBound)]
            let end = scalarOffset[text.utf8.distance(from: text.utf8.startIndex, to: match.range.upperBound)]
            if start == end, start == previousEnd { continue }
            matches.append(start..<end)
            previousEnd = end
        }
        return matches
    }
}
