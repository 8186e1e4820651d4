import Foundation

/// A text normalizer of a Hugging Face `tokenizer.json`, limited to the steps SentencePiece-based
/// tokenizers (T5, and those converted like it) use.
///
/// transformers' converter gives T5 `Sequence[Precompiled(charsmap), Strip(right),
/// Replace(/ {2,}/, "▁")]`: SentencePiece's NFKC-like map, trailing whitespace removed, and every
/// run of two or more spaces turned into a single `▁` (which the Metaspace pre-tokenizer then
/// treats as one word boundary, collapsing repeated spaces as SentencePiece does).
public indirect enum SentencePieceNormalizer: Sendable {
    /// Each step in order.
    case sequence([SentencePieceNormalizer])
    /// SentencePiece's precompiled character map.
    case precompiled(PrecompiledCharsMap)
    /// Removes leading and/or trailing Unicode whitespace.
    case strip(left: Bool, right: Bool)
    /// Replaces every non-overlapping match, scanning left to right.
    case replace(ReplacePattern, content: String)
    /// Unicode normalization form KC. Like NFC, NFD and NFKD it follows the platform's Unicode
    /// version; tokenizers' tables are older, so characters assigned since (such as U+32FF ㋿,
    /// Unicode 12.1) may normalize differently. T5 uses ``precompiled(_:)`` instead.
    case nfkc
    /// Unicode normalization form C.
    case nfc
    /// Unicode normalization form D.
    case nfd
    /// Unicode normalization form KD.
    case nfkd
    /// Unicode lower-casing.
    case lowercase
    /// Puts the string in front of non-empty text.
    case prepend(String)

    /// What a `Replace` step looks for.
    public enum ReplacePattern: Sendable {
        /// A literal string.
        case string(String)
        /// A regular expression (tokenizers uses Rust's `regex`; the patterns converters emit,
        /// such as ` {2,}`, mean the same in Swift's), matched on Unicode scalars.
        case regex(CheckedRegex)

        /// A compiled regular-expression pattern.
        ///
        /// - Throws: ``T5TokenizerError/invalidRegex(pattern:reason:)`` when it does not compile.
        public static func regex(_ pattern: String) throws -> ReplacePattern {
            .regex(try CheckedRegex(pattern))
        }
    }

    /// A regular-expression pattern known to compile. Only the pattern text is kept (Swift's
    /// `Regex` is not `Sendable`); it is compiled again where it is used.
    public struct CheckedRegex: Sendable, Equatable {
        /// The pattern text.
        public let pattern: String

        /// Checks that `pattern` compiles.
        ///
        /// - Throws: ``T5TokenizerError/invalidRegex(pattern:reason:)`` when it does not.
        public init(_ pattern: String) throws {
            do {
                _ = try Regex(pattern)
            } catch {
                throw T5TokenizerError.invalidRegex(pattern: pattern, reason: "\(error)")
            }
            self.pattern = pattern
        }

        /// Every non-overlapping match in `text`, left to right, replaced by `content`.
        func replacingMatches(in text: String, with content: String) -> String {
            // The initializer compiled this very pattern, so compiling it again succeeds.
            guard let regex = try? Regex(pattern).matchingSemantics(.unicodeScalar) else { return text }
            return text.replacing(regex, with: content)
        }
    }

    /// The normalized text.
    public func normalize(_ text: String) -> String {
        switch self {
        case .sequence(let steps):
            var result = text
            for step in steps {
                result = step.normalize(result)
            }
            return result
        case .precompiled(let map):
            return map.normalize(text)
        case .strip(let left, let right):
            var scalars = Substring(text).unicodeScalars[...]
            if left {
                scalars = scalars.drop(while: \.properties.isWhitespace)
            }
            if right {
                while let last = scalars.last, last.properties.isWhitespace {
                    scalars = scalars.dropLast()
                }
            }
            return String(String.UnicodeScalarView(scalars))
        case .replace(.string(let pattern), let content):
            return Self.replaceLiteral(pattern, with: content, in: text)
        case .replace(.regex(let regex), let content):
            return regex.replacingMatches(in: text, with: content)
        case .nfkc:
            // Decompose, then compose: Foundation's one-step NFKC on Linux leaves some pairs
            // uncomposed (half-width "ｶﾞ" gives カ + U+3099 instead of ガ).
            return text.decomposedStringWithCompatibilityMapping.precomposedStringWithCanonicalMapping
        case .nfc:
            return text.precomposedStringWithCanonicalMapping
        case .nfd:
            return text.decomposedStringWithCanonicalMapping
        case .nfkd:
            return text.decomposedStringWithCompatibilityMapping
        case .lowercase:
            return text.lowercased()
        case .prepend(let prefix):
            return text.isEmpty ? text : prefix + text
        }
    }

    /// Literal replacement on UTF-8 bytes, so that canonically equivalent but different
    /// sequences are not confused (Swift's `String` comparison would equate them).
    private static func replaceLiteral(_ pattern: String, with content: String, in text: String) -> String {
        let needle = Array(pattern.utf8)
        guard !needle.isEmpty else { return text }
        let bytes = Array(text.utf8)
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if index + needle.count <= bytes.count, bytes[index..<(index + needle.count)].elementsEqual(needle) {
                output += content.utf8
                index += needle.count
            } else {
                output.append(bytes[index])
                index += 1
            }
        }
        return String(decoding: output, as: UTF8.self)
    }
}
