/// The character classes Hugging Face tokenizers' normalizers and pre-tokenizers test, each
/// decided as the library decides it.
///
/// The library takes its classes from several sources with different Unicode versions: Rust's
/// standard library (whitespace, numbers, lower-casing: as new as the platform's here), Rust's
/// `regex` (the `Whitespace` pre-tokenizer's `\w`), Oniguruma (the `ByteLevel` pre-tokenizer's
/// `\p{L}`, `\p{N}`, `\s`), and two older crates: `unicode_categories` (punctuation, BERT's
/// control characters and non-spacing marks) and `unicode-normalization-alignments` (the
/// normalization forms and combining marks). Where a source is older than the platform's tables,
/// characters assigned after it are classified as it would (unassigned: in no class), which the
/// tests check for every scalar against tokenizers 0.22.2.
enum TokenizerCharacterClass {
    /// The Unicode version of the regular-expression engines' tables (Rust's `regex` for `\w`,
    /// Oniguruma for the `ByteLevel` pattern).
    static let regexVersion: Unicode.Version = (major: 16, minor: 0)

    /// Rust's `char::is_whitespace`: the White_Space property.
    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.isWhitespace
    }

    /// Rust's `char::is_numeric`: general category Nd, Nl or No.
    static func isNumeric(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: true
        default: false
        }
    }

    /// Rust `regex`'s Unicode `\w`: alphabetic, a mark, a decimal digit, connector punctuation
    /// or a join control.
    static func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
        guard !UnicodeVersionCheck.isNewer(scalar, than: regexVersion) else { return false }
        let properties = scalar.properties
        if properties.isAlphabetic || properties.isJoinControl { return true }
        switch properties.generalCategory {
        case .decimalNumber, .connectorPunctuation, .nonspacingMark, .spacingMark, .enclosingMark: return true
        default: return false
        }
    }

    /// tokenizers' punctuation (the `Punctuation` and `BertPreTokenizer` pre-tokenizers): ASCII
    /// punctuation (which includes the ASCII symbols `$+<=>^`|~`) or a Unicode P* category.
    static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.isASCII {
            return (0x21...0x2F).contains(scalar.value) || (0x3A...0x40).contains(scalar.value)
                || (0x5B...0x60).contains(scalar.value) || (0x7B...0x7E).contains(scalar.value)
        }
        switch category(of: scalar, in: .categories) {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
            .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    /// `BertNormalizer`'s control characters: general category Cc, Cf or Co, except tab,
    /// newline and carriage return (which count as whitespace).
    static func isBertControl(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "\t" || scalar == "\n" || scalar == "\r" { return false }
        switch category(of: scalar, in: .categories) {
        case .control, .format, .privateUse: return true
        default: return false
        }
    }

    /// `BertNormalizer`'s whitespace: tab, newline, carriage return and White_Space.
    static func isBertWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        scalar == "\t" || scalar == "\n" || scalar == "\r" || isWhitespace(scalar)
    }

    /// A non-spacing mark (Mn), which `BertNormalizer`'s accent stripping removes after NFD.
    static func isNonspacingMark(_ scalar: Unicode.Scalar) -> Bool {
        category(of: scalar, in: .categories) == .nonspacingMark
    }

    /// A combining mark (Mn, Mc or Me), which the `StripAccents` normalizer removes.
    static func isCombiningMark(_ scalar: Unicode.Scalar) -> Bool {
        switch category(of: scalar, in: .normalization) {
        case .nonspacingMark, .spacingMark, .enclosingMark: return true
        default: return false
        }
    }

    /// The ideograph ranges `BertNormalizer` surrounds with spaces. tokenizers starts its fifth
    /// range at U+2B920 (not U+2B820, where CJK Extension E begins), so U+2B820–U+2B91F are
    /// left alone.
    static func isChineseCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
            0x2B740...0x2B81F, 0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }

    /// Rust's `char::to_lowercase` of one scalar: its full lower-case mapping, with no context
    /// (a final capital sigma becomes σ, not ς).
    static func lowercased(_ scalar: Unicode.Scalar) -> [Unicode.Scalar] {
        if scalar.isASCII {
            let isUppercase = (0x41...0x5A).contains(scalar.value)
            return [isUppercase ? Unicode.Scalar(UInt8(scalar.value + 0x20)) : scalar]
        }
        return Array(scalar.properties.lowercaseMapping.unicodeScalars)
    }

    /// One of the older character tables tokenizers uses.
    enum Table {
        /// `unicode_categories` (Unicode 8.0).
        case categories
        /// `unicode-normalization-alignments` (Unicode 9.0).
        case normalization

        /// The table's Unicode version.
        var version: Unicode.Version {
            switch self {
            case .categories: (major: 8, minor: 0)
            case .normalization: (major: 9, minor: 0)
            }
        }

        /// Scalars whose general category Unicode changed after the table's version, with the
        /// category the table gives them (found by comparing every scalar with tokenizers; for
        /// the normalization table only the mark classes matter).
        var changedCategories: [UInt32: Unicode.GeneralCategory] {
            switch self {
            case .categories:
                [
                    0x166D: .otherPunctuation, 0x1734: .nonspacingMark, 0x1885: .otherLetter,
                    0x1886: .otherLetter, 0x1CF2: .spacingMark, 0x1CF3: .spacingMark, 0xA9BD: .spacingMark,
                    0x111C9: .otherPunctuation, 0x1171E: .nonspacingMark,
                ]
            case .normalization:
                [0x1CF2: .spacingMark, 0x1CF3: .spacingMark, 0x111C9: .otherPunctuation]
            }
        }
    }

    /// The general category `table` gives `scalar`; nil when the table predates it.
    static func category(of scalar: Unicode.Scalar, in table: Table) -> Unicode.GeneralCategory? {
        guard !UnicodeVersionCheck.isNewer(scalar, than: table.version) else { return nil }
        if let changed = table.changedCategories[scalar.value] { return changed }
        return scalar.properties.generalCategory
    }

    /// Oniguruma's `\p{L}`, as the `ByteLevel` pre-tokenizer's pattern tests it.
    static func isLetter(_ scalar: Unicode.Scalar) -> Bool {
        guard !UnicodeVersionCheck.isNewer(scalar, than: regexVersion) else { return false }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    /// Oniguruma's `\p{N}`, as the `ByteLevel` pre-tokenizer's pattern tests it.
    static func isNumber(_ scalar: Unicode.Scalar) -> Bool {
        !UnicodeVersionCheck.isNewer(scalar, than: regexVersion) && isNumeric(scalar)
    }

    /// Oniguruma's `\s`, as the `ByteLevel` pre-tokenizer's pattern tests it.
    static func isPatternWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        isWhitespace(scalar)
    }
}
