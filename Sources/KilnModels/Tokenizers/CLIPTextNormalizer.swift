/// Turns raw prompt text into the pieces CLIP's BPE sees, reproducing transformers' slow
/// `CLIPTokenizer` when `ftfy` is not installed: BERT-style basic cleanup (control characters
/// dropped, CJK ideographs spaced out, NFC, whitespace split, Python-style lower-casing with
/// accents kept and no punctuation split), then CLIP's word pattern
/// `<|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+`
/// matched case-insensitively.
///
/// Everything works on Unicode scalars, never on Swift `Character`s: Python strings are code
/// point sequences, and grapheme clustering would glue combining marks and ZWJ sequences to
/// their neighbours.
enum CLIPTextNormalizer {
    /// The two literals CLIP's word pattern keeps whole. They are fixed in the pattern itself,
    /// independent of the configured special tokens.
    static let startOfTextLiteral = "<|startoftext|>"
    static let endOfTextLiteral = "<|endoftext|>"

    /// The pieces of `text` (a stretch without special tokens), each to be byte-encoded and BPE'd.
    static func pieces(of text: some StringProtocol) -> [[Unicode.Scalar]] {
        var pieces: [[Unicode.Scalar]] = []
        for word in lowercasedWords(of: text) {
            appendPieces(of: word, to: &pieces)
        }
        return pieces
    }

    // MARK: - Basic cleanup

    /// Cleans, spaces CJK, normalizes to NFC, splits on whitespace and lower-cases each word.
    static func lowercasedWords(of text: some StringProtocol) -> [[Unicode.Scalar]] {
        var cleaned = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if scalar.value == 0 || scalar.value == 0xFFFD || isControl(scalar) {
                continue
            }
            if isBasicWhitespace(scalar) {
                cleaned.append(" ")
            } else if isCJKIdeograph(scalar) {
                cleaned.append(" ")
                cleaned.append(scalar)
                cleaned.append(" ")
            } else {
                cleaned.append(scalar)
            }
        }
        let normalized = nfc(String(cleaned))
        return split(normalized, separator: isPythonWhitespace).map(pythonLowercased)
    }

    /// Control characters in the BERT sense: any "C*" category except tab, newline and return
    /// (those count as whitespace). Format characters such as ZWJ, ZWSP and BOM are included,
    /// so emoji ZWJ sequences fall apart into their emoji.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "\t" || scalar == "\n" || scalar == "\r" {
            return false
        }
        if isNewerThanReferenceUnicode(scalar) {
            return true
        }
        switch scalar.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned:
            return true
        default:
            return false
        }
    }

    /// The Unicode version of the reference: transformers' tokenizer classifies characters with
    /// Python's `unicodedata`, 14.0 in Python 3.11, with which the fixtures were made.
    static let referenceUnicodeVersion: Unicode.Version = (major: 14, minor: 0)

    /// Characters assigned after ``referenceUnicodeVersion`` are unassigned ("Cn") to the
    /// reference and so removed as control characters; newer Swift runtimes know them.
    static func isNewerThanReferenceUnicode(_ scalar: Unicode.Scalar) -> Bool {
        UnicodeVersionCheck.isNewer(scalar, than: referenceUnicodeVersion)
    }

    /// Whitespace in the BERT sense, which becomes a plain space: space, tab, newline, return and
    /// the space separators (Zs). Line and paragraph separators are not among them; they
    /// survive cleanup and only act as separators in the later whitespace split.
    static func isBasicWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        scalar == " " || scalar == "\t" || scalar == "\n" || scalar == "\r"
            || scalar.properties.generalCategory == .spaceSeparator
    }

    /// The ideograph blocks BERT surrounds with spaces (CJK Unified Ideographs, extensions A to
    /// E and the compatibility blocks). Kana and Hangul are not included.
    static func isCJKIdeograph(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
            0x2B740...0x2B81F, 0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }

    /// Python's `str.isspace()`, which `str.split()` splits on.
    static func isPythonWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029,
            0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// Canonical composition (NFC), scalar-exact with Python's `unicodedata.normalize("NFC")`
    /// (characters newer than the reference's Unicode version are gone by now).
    static func nfc(_ text: String) -> String {
        UnicodeNormalization.normalize(text, form: .nfc)
    }

    /// Python's `str.lower()`: full lower-case mappings (İ becomes i + U+0307) and the
    /// context-dependent final sigma.
    static func pythonLowercased(_ word: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var lowered: [Unicode.Scalar] = []
        lowered.reserveCapacity(word.count)
        for (index, scalar) in word.enumerated() {
            if scalar == "\u{03A3}" {
                lowered.append(isFinalSigma(at: index, in: word) ? "\u{03C2}" : "\u{03C3}")
            } else {
                lowered.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            }
        }
        return lowered
    }

    /// Unicode's Final_Sigma condition: a cased letter before (skipping case-ignorables) and
    /// none after.
    private static func isFinalSigma(at index: Int, in word: [Unicode.Scalar]) -> Bool {
        let before = word[..<index].last { !$0.properties.isCaseIgnorable }
        guard let before, before.properties.isCased else { return false }
        let after = word[(index + 1)...].first { !$0.properties.isCaseIgnorable }
        return !(after?.properties.isCased ?? false)
    }

    private static func split(
        _ text: String, separator: (Unicode.Scalar) -> Bool
    ) -> [[Unicode.Scalar]] {
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        for scalar in text.unicodeScalars {
            if separator(scalar) {
                if !current.isEmpty {
                    words.append(current)
                    current.removeAll(keepingCapacity: true)
                }
            } else {
                current.append(scalar)
            }
        }
        if !current.isEmpty {
            words.append(current)
        }
        return words
    }

    // MARK: - Word pattern

    /// Splits one whitespace-free, lower-cased word with CLIP's pattern. Words never contain
    /// whitespace, so matching word by word equals matching the space-joined text.
    private static func appendPieces(of word: [Unicode.Scalar], to pieces: inout [[Unicode.Scalar]]) {
        var start = 0
        while start < word.count {
            if isUnmatchable(word[start]) {
                start += 1
                continue
            }
            let end = matchEnd(in: word, at: start)
            pieces.append(Array(word[start..<end]))
            start = end
        }
    }

    /// End of the pattern match at `start`; the alternatives are tried in the pattern's order.
    private static func matchEnd(in word: [Unicode.Scalar], at start: Int) -> Int {
        for literal in patternLiterals {
            if matchesIgnoringCase(literal, in: word, at: start) {
                return start + literal.count
            }
        }
        if word[start] == "'" {
            for suffix in contractionSuffixes {
                if matchesIgnoringCase(suffix, in: word, at: start + 1) {
                    return start + 1 + suffix.count
                }
            }
        }
        if isLetter(word[start]) {
            var end = start + 1
            while end < word.count, isLetter(word[end]) {
                end += 1
            }
            return end
        }
        if isNumber(word[start]) {
            return start + 1
        }
        // Not a letter or number, and words hold no whitespace: a run of "other" characters.
        var end = start + 1
        while end < word.count, !isLetter(word[end]), !isNumber(word[end]), !isUnmatchable(word[end]) {
            end += 1
        }
        return end
    }

    private static let patternLiterals: [[Unicode.Scalar]] =
        [startOfTextLiteral, endOfTextLiteral].map { Array($0.unicodeScalars) }

    /// U+0345 COMBINING GREEK YPOGEGRAMMENI case-folds to iota, a letter, so under the
    /// pattern's case-insensitivity it is excluded from the "other" class, yet it is no letter
    /// itself: no alternative matches it and it silently disappears. It is the only scalar
    /// surviving cleanup with that fate.
    private static func isUnmatchable(_ scalar: Unicode.Scalar) -> Bool {
        scalar == "\u{0345}"
    }

    private static let contractionSuffixes: [[Unicode.Scalar]] =
        ["s", "t", "re", "ve", "m", "ll", "d"].map { Array($0.unicodeScalars) }

    /// Case-insensitive literal match with the pattern's simple case folding. The literals are
    /// ASCII lower-case letters and punctuation; besides the ASCII capitals, the only scalar
    /// that folds onto one of their letters is U+017F LATIN SMALL LETTER LONG S (onto "s").
    private static func matchesIgnoringCase(
        _ literal: [Unicode.Scalar], in word: [Unicode.Scalar], at start: Int
    ) -> Bool {
        guard start + literal.count <= word.count else { return false }
        for (offset, expected) in literal.enumerated() {
            let actual = word[start + offset]
            if actual == expected { continue }
            let isUpperCaseASCII = actual.isASCII && actual.properties.isUppercase
            if isUpperCaseASCII, actual.value + 0x20 == expected.value { continue }
            if expected == "s", actual == "\u{017F}" { continue }
            return false
        }
        return true
    }

    private static func isLetter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return true
        default:
            return false
        }
    }

    private static func isNumber(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber:
            return true
        default:
            return false
        }
    }
}
