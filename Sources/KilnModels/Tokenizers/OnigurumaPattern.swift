/// Rewrites an Oniguruma pattern (tokenizers' regular-expression engine) into Swift `Regex`
/// syntax with the same meaning, where the two differ:
///
/// - `\d` is a decimal digit (Nd) only, and `\w` is Oniguruma's word class: alphabetic, a mark,
///   a decimal digit or connector punctuation, outside brackets also the Latin-1 digits and
///   fractions ² ³ ¹ ¼ ½ ¾ (Swift's `\d` takes every number and its `\w` no marks);
/// - `\h` is a hexadecimal digit (to Swift, horizontal whitespace);
/// - `$` is the end of a line: before `\n` or at the end (Swift also stops before `\r` and the
///   other Unicode line ends);
/// - property classes (`\p{…}`, `\P{…}`, and the two above) leave out the characters Unicode
///   assigned after Oniguruma's tables (16.0), which Swift's newer tables know.
///
/// Checked on every scalar against tokenizers for `\s`, `\w`, `\d`, `\p{L}` and `\p{N}`.
enum OnigurumaPattern {
    /// The Unicode version of Oniguruma's tables in tokenizers 0.22.2.
    static let version = TokenizerCharacterClass.regexVersion

    /// `pattern` in Swift's syntax.
    static func swiftPattern(_ pattern: String) -> String {
        var output = ""
        var classDepth = 0
        var scalars = Array(pattern.unicodeScalars)[...]
        while let scalar = scalars.popFirst() {
            switch scalar {
            case "\\":
                guard let escaped = scalars.popFirst() else {
                    output.unicodeScalars.append(scalar)
                    continue
                }
                if let (set, negated) = rewrittenClass(escaped, in: &scalars, insideBrackets: classDepth > 0) {
                    output += "[\(negated ? "^" : "")\(set)]"
                } else {
                    output.unicodeScalars.append(scalar)
                    output.unicodeScalars.append(escaped)
                }
            case "[":
                classDepth += 1
                output.unicodeScalars.append(scalar)
            case "]" where classDepth > 0:
                classDepth -= 1
                output.unicodeScalars.append(scalar)
            case "$" where classDepth == 0:
                // Oniguruma's end of line: before a newline or at the end.
                output += #"(?=\n|\z)"#
            default:
                output.unicodeScalars.append(scalar)
            }
        }
        return output
    }

    /// The class an escape stands for, as a Swift class body and whether it is negated; nil for
    /// escapes that mean the same to Swift. `\p{…}` consumes its braces from `rest`.
    private static func rewrittenClass(
        _ escaped: Unicode.Scalar, in rest: inout ArraySlice<Unicode.Scalar>, insideBrackets: Bool
    ) -> (set: String, negated: Bool)? {
        switch escaped {
        case "d", "D":
            return (known(#"\p{Nd}"#), escaped == "D")
        case "w", "W":
            let latin1 = insideBrackets ? "" : #"\u{B2}\u{B3}\u{B9}\u{BC}-\u{BE}"#
            return (known(#"\p{Alphabetic}\p{M}\p{Nd}\p{Pc}"# + latin1), escaped == "W")
        case "h", "H":
            return ("0-9A-Fa-f", escaped == "H")
        case "p", "P":
            guard rest.first == "{", let close = rest.firstIndex(of: "}") else { return nil }
            var name = String(String.UnicodeScalarView(rest[(rest.startIndex + 1)..<close]))
            rest = rest[(close + 1)...]
            var negated = escaped == "P"
            if name.hasPrefix("^") {
                name.removeFirst()
                negated.toggle()
            }
            return (known(#"\p{"# + name + "}"), negated)
        default:
            return nil
        }
    }

    /// A class body less the characters newer than Oniguruma's tables.
    private static func known(_ body: String) -> String {
        newerScalars.isEmpty ? body : "[\(body)]--[\(newerScalars)]"
    }

    /// The scalars assigned after ``version``, as a class body of ranges (empty when the
    /// platform's tables are no newer).
    static let newerScalars: String = {
        var ranges: [ClosedRange<UInt32>] = []
        for value in UInt32(0)...0x10FFFF {
            guard let scalar = Unicode.Scalar(value), UnicodeVersionCheck.isNewer(scalar, than: version) else { continue }
            if let last = ranges.last, last.upperBound + 1 == value {
                ranges[ranges.count - 1] = last.lowerBound...value
            } else {
                ranges.append(value...value)
            }
        }
        func hex(_ value: UInt32) -> String { #"\u{"# + String(value, radix: 16, uppercase: true) + "}" }
        return ranges.map { $0.count == 1 ? hex($0.lowerBound) : hex($0.lowerBound) + "-" + hex($0.upperBound) }
            .joined()
    }()
}
