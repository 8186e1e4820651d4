import Foundation

/// Several files in one fuzz input, one after another with a separator line between them: how a
/// target whose parser reads a folder (a tokenizer, a sharded checkpoint) gets all its files from
/// one input, so that libFuzzer mutates them together. The separator is in each such target's
/// dictionary.
enum FuzzParts {
    static let separator = Data("\n--kiln-fuzz-file--\n".utf8)

    /// At most `maximum` parts; the last holds the rest of the input, separators included.
    static func split(_ data: Data, maximum: Int) -> [Data] {
        var parts: [Data] = []
        var rest = data[...]
        while parts.count < maximum - 1, let range = rest.range(of: separator) {
            parts.append(Data(rest[..<range.lowerBound]))
            rest = rest[range.upperBound...]
        }
        parts.append(Data(rest))
        return parts
    }

    /// The text of a part, or nil when it is not UTF-8.
    static func text(_ data: Data) -> String? { String(data: data, encoding: .utf8) }
}
