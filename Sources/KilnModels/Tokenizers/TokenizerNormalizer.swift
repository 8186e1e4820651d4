/// A normalizer of a Hugging Face `tokenizer.json` (tokenizers' `normalizers.*`), applied with
/// the library's semantics; read one with ``init(json:field:in:)``.
///
/// Converters write, for example: T5 (transformers) `Sequence[Precompiled, Strip(right),
/// Replace(/ {2,}/, "▁")]`; tokenizers' own SentencePiece Unigram tokenizer `Sequence[Nmt, NFKC,
/// Replace(/ {2,}/, " ")]`; CLIP `Sequence[NFC, Replace(/\s+/, " "), Lowercase]`; BERT
/// `BertNormalizer`.
///
/// The normalization forms, combining marks and the punctuation and control-character classes
/// follow the (older) Unicode versions of the library's tables; see ``TokenizerCharacterClass``.
public indirect enum TokenizerNormalizer: Sendable {
    /// Each step in order.
    case sequence([TokenizerNormalizer])
    /// BERT's cleanup (see ``BertOptions``).
    case bert(BertOptions)
    /// Removes leading and/or trailing whitespace (White_Space).
    case strip(left: Bool, right: Bool)
    /// Removes combining marks (Mn, Mc, Me); usually after ``nfd`` or ``nfkd``.
    case stripAccents
    /// Unicode normalization form C.
    case nfc
    /// Unicode normalization form D.
    case nfd
    /// Unicode normalization form KC.
    case nfkc
    /// Unicode normalization form KD.
    case nfkd
    /// Lower-cases each character on its own (no final-sigma rule).
    case lowercase
    /// SentencePiece's `nmt` rules: removes the C0 controls other than tab, newline, form feed
    /// and carriage return (and U+007F, U+008F, U+009F), and turns tab, newline, form feed,
    /// carriage return, U+1680, U+200B–U+200F, U+2028, U+2029, U+2581, U+FEFF and U+FFFD into
    /// spaces.
    case nmt
    /// SentencePiece's precompiled character map.
    case precompiled(PrecompiledCharsMap)
    /// Replaces every match of the pattern, left to right, by `content`.
    case replace(TokenizerPattern, content: String)
    /// Puts the string in front of non-empty text.
    case prepend(String)
    /// Spells every UTF-8 byte as GPT-2's printable stand-in character.
    case byteLevel

    /// The steps of tokenizers' `BertNormalizer`, in the order it applies them.
    public struct BertOptions: Sendable, Equatable {
        /// Removes NUL, U+FFFD and control characters (Cc, Cf, Co), and turns whitespace into
        /// spaces.
        public var cleanText: Bool
        /// Surrounds CJK ideographs with spaces.
        public var handleChineseCharacters: Bool
        /// Decomposes (NFD) and removes non-spacing marks; `nil` follows ``lowercase``.
        public var stripAccents: Bool?
        /// Lower-cases.
        public var lowercase: Bool

        /// Options; the defaults are tokenizers' (all on, accents following lower-casing).
        public init(
            cleanText: Bool = true, handleChineseCharacters: Bool = true, stripAccents: Bool? = nil,
            lowercase: Bool = true
        ) {
            self.cleanText = cleanText
            self.handleChineseCharacters = handleChineseCharacters
            self.stripAccents = stripAccents
            self.lowercase = lowercase
        }
    }

    /// The normalized text.
    public func normalize(_ text: String) -> String {
        var aligned = AlignedText(text)
        normalize(&aligned)
        return aligned.text
    }

    /// Normalizes `text` in place, keeping its alignment with the input as tokenizers does.
    public func normalize(_ text: inout AlignedText) {
        switch self {
        case .sequence(let steps):
            for step in steps {
                step.normalize(&text)
            }
        case .bert(let options):
            Self.applyBert(options, to: &text)
        case .strip(let left, let right):
            Self.strip(&text, left: left, right: right)
        case .stripAccents:
            text.filter { !TokenizerCharacterClass.isCombiningMark($0) }
        case .nfc:
            Self.normalizeForm(.nfc, &text)
        case .nfd:
            Self.normalizeForm(.nfd, &text)
        case .nfkc:
            Self.normalizeForm(.nfkc, &text)
        case .nfkd:
            Self.normalizeForm(.nfkd, &text)
        case .lowercase:
            text.expand(TokenizerCharacterClass.lowercased)
        case .nmt:
            text.filter(Self.isKeptByNmt, map: { Self.isSpaceToNmt($0) ? " " : $0 })
        case .precompiled(let map):
            if let changes = map.transformations(of: text.scalars) {
                text.transform(changes)
            }
        case .replace(let pattern, let content):
            Self.replace(pattern, with: Array(content.unicodeScalars), in: &text)
        case .prepend(let prefix):
            guard !text.isEmpty, !prefix.isEmpty else { return }
            let prefixScalars = Array(prefix.unicodeScalars)
            let atOrigin = text.scalarsAtOrigin > 0 ? text.scalarsAtOrigin + prefixScalars.count : 0
            text.scalars = prefixScalars + text.scalars
            text.scalarsAtOrigin = atOrigin
        case .byteLevel:
            text.expand { scalar in String(scalar).utf8.map { ByteLevelBPE.byteSymbols[Int($0)] } }
        }
    }

    // MARK: - Steps

    private static func applyBert(_ options: BertOptions, to text: inout AlignedText) {
        if options.cleanText {
            text.filter(
                { !($0.value == 0 || $0.value == 0xFFFD || TokenizerCharacterClass.isBertControl($0)) },
                map: { TokenizerCharacterClass.isBertWhitespace($0) ? " " : $0 })
        }
        if options.handleChineseCharacters {
            text.expand { TokenizerCharacterClass.isChineseCharacter($0) ? [" ", $0, " "] : [$0] }
        }
        if options.stripAccents ?? options.lowercase {
            normalizeForm(.nfd, &text)
            text.filter { !TokenizerCharacterClass.isNonspacingMark($0) }
        }
        if options.lowercase {
            text.expand(TokenizerCharacterClass.lowercased)
        }
    }

    private static func strip(_ text: inout AlignedText, left: Bool, right: Bool) {
        let isWhitespace = TokenizerCharacterClass.isWhitespace
        let leading = left ? text.scalars.prefix(while: isWhitespace).count : 0
        let trailing = right ? text.scalars.reversed().prefix(while: isWhitespace).count : 0
        guard leading > 0 || trailing > 0 else { return }
        let end = max(leading, text.scalars.count - trailing)
        let atOrigin = text.scalarsAtOrigin - leading
        text.scalars = Array(text.scalars[leading..<end])
        text.scalarsAtOrigin = min(max(atOrigin, 0), text.scalars.count)
    }

    /// A normalization form with tokenizers' Unicode tables and alignment.
    private static func normalizeForm(_ form: UnicodeNormalization.Form, _ text: inout AlignedText) {
        let version = TokenizerCharacterClass.Table.normalization.version
        let normalized = Array(UnicodeNormalization.normalize(text.text, form: form, version: version).unicodeScalars)
        let atOrigin = NormalizationAlignment.scalarsAtOrigin(
            afterNormalizing: text.scalars, scalarsAtOrigin: text.scalarsAtOrigin, form: form, version: version)
        text.scalars = normalized
        text.scalarsAtOrigin = min(atOrigin, normalized.count)
    }

    /// Replacement as tokenizers does it: text between matches is kept, and the content of a
    /// match takes the alignment of the match's last scalar (of the scalar before an empty match,
    /// or the origin for an empty match at the start).
    private static func replace(_ pattern: TokenizerPattern, with content: [Unicode.Scalar], in text: inout AlignedText) {
        let matches = pattern.matches(in: text.scalars)
        guard !matches.isEmpty else { return }
        var scalars: [Unicode.Scalar] = []
        var atOrigin: [Bool] = []
        scalars.reserveCapacity(text.scalars.count)
        var copiedUpTo = 0
        func copy(upTo end: Int) {
            scalars += text.scalars[copiedUpTo..<end]
            atOrigin += (copiedUpTo..<end).map { $0 < text.scalarsAtOrigin }
        }
        for match in matches {
            copy(upTo: match.lowerBound)
            let aligned = match.isEmpty
                ? match.lowerBound == 0 || match.lowerBound - 1 < text.scalarsAtOrigin
                : match.upperBound - 1 < text.scalarsAtOrigin
            scalars += content
            atOrigin += repeatElement(aligned, count: content.count)
            copiedUpTo = match.upperBound
        }
        copy(upTo: text.scalars.count)
        text.scalars = scalars
        text.scalarsAtOrigin = atOrigin.prefix { $0 }.count
    }

    /// Whether the `nmt` rules keep a scalar.
    static func isKeptByNmt(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x01...0x08, 0x0B, 0x0E...0x1F, 0x7F, 0x8F, 0x9F: false
        default: true
        }
    }

    /// Whether the `nmt` rules turn a scalar into a space.
    static func isSpaceToNmt(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09, 0x0A, 0x0C, 0x0D, 0x1680, 0x200B...0x200F, 0x2028, 0x2029, 0x2581, 0xFEFF, 0xFFFD: true
        default: false
        }
    }
}
