/// A pre-tokenizer of a Hugging Face `tokenizer.json` (tokenizers' `pre_tokenizers.*`): cuts
/// normalized text into the pieces the model segments, with the library's semantics; read one
/// with ``init(json:field:in:)``.
///
/// Converters write, for example: T5 `Metaspace`; older SentencePiece files `Sequence[
/// WhitespaceSplit, Metaspace]`; transformers' T5 training example `Sequence[Metaspace, Digits,
/// Punctuation]`; CLIP `Sequence[Split(CLIP's word pattern, removed, invert), ByteLevel]`; GPT-2
/// `ByteLevel`; BERT `BertPreTokenizer`. Pieces that come out empty are dropped, as tokenizers
/// drops them.
public indirect enum PreTokenizer: Sendable {
    /// Each pre-tokenizer in order, each applied to every piece the previous one produced.
    case sequence([PreTokenizer])
    /// Splits on whitespace (White_Space), dropping it.
    case whitespaceSplit
    /// Keeps runs of word characters (`\w`) and runs of other non-space characters, as the
    /// pattern `\w+|[^\w\s]+`; whitespace is dropped.
    case whitespace
    /// SentencePiece's word-boundary marking: every space becomes `replacement` (`▁`), one is
    /// put in front as `prependScheme` says, and with `split` the text is cut before every
    /// replacement character (a run of them leaves single ones behind: `a▁▁b` gives `a`, `▁`,
    /// `▁b`).
    case metaspace(replacement: Unicode.Scalar, prependScheme: PrependScheme, split: Bool)
    /// Splits on the pattern's matches (on what lies between them with `invert`).
    case split(TokenizerPattern, behavior: SplitDelimiterBehavior, invert: Bool)
    /// Splits on punctuation (ASCII punctuation and symbols, Unicode P*).
    case punctuation(SplitDelimiterBehavior)
    /// Splits off numbers (Nd, Nl, No): each digit alone with `individualDigits`, else runs.
    case digits(individualDigits: Bool)
    /// GPT-2's byte-level pre-tokenizer: a space in front (with `addPrefixSpace`, unless there
    /// is one), GPT-2's word pattern (with `useRegex`), then every UTF-8 byte spelled as its
    /// printable stand-in. (`trim_offsets` only changes offsets, which Kiln does not report.)
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    /// BERT's: splits on whitespace (dropped), then isolates punctuation.
    case bert
    /// Splits on one character, dropping it.
    case characterDelimiter(Unicode.Scalar)

    /// When Metaspace puts a replacement character in front of a piece that lacks one.
    public enum PrependScheme: String, Sendable {
        /// In front of every piece.
        case always
        /// Only in front of the piece that starts the input text; text after a special token
        /// gets none (transformers' `legacy=False` T5 conversion).
        case first
        /// Never.
        case never
    }

    /// The pieces `text` is cut into (tokenizers' `pre_tokenize_str`, offsets left out).
    public func split(_ text: String) -> [String] {
        split(AlignedText(text)).map(\.text)
    }

    /// The non-empty pieces `piece` is cut into, each aligned as tokenizers aligns it.
    public func split(_ piece: AlignedText) -> [AlignedText] {
        switch self {
        case .sequence(let steps):
            var pieces = [piece]
            for step in steps {
                pieces = pieces.flatMap(step.split)
            }
            return pieces
        case .whitespaceSplit:
            return Self.split(piece, behavior: .removed, on: TokenizerCharacterClass.isWhitespace)
        case .whitespace:
            return Self.wordRuns(of: piece)
        case .metaspace(let replacement, let prependScheme, let split):
            return Self.metaspace(piece, replacement: replacement, prependScheme: prependScheme, split: split)
        case .split(let pattern, let behavior, let invert):
            var spans = pattern.spans(in: piece.scalars)
            if invert {
                for index in spans.indices { spans[index].isMatch.toggle() }
            }
            return Self.pieces(of: piece, ranges: behavior.pieces(of: spans))
        case .punctuation(let behavior):
            return Self.split(piece, behavior: behavior, on: TokenizerCharacterClass.isPunctuation)
        case .digits(let individualDigits):
            return Self.split(
                piece, behavior: individualDigits ? .isolated : .contiguous, on: TokenizerCharacterClass.isNumeric)
        case .byteLevel(let addPrefixSpace, let useRegex):
            return ByteLevelPattern.preTokenize(piece, addPrefixSpace: addPrefixSpace, useRegex: useRegex)
        case .bert:
            return Self.split(piece, behavior: .removed, on: TokenizerCharacterClass.isWhitespace).flatMap {
                Self.split($0, behavior: .isolated, on: TokenizerCharacterClass.isPunctuation)
            }
        case .characterDelimiter(let delimiter):
            return Self.split(piece, behavior: .removed) { $0 == delimiter }
        }
    }

    // MARK: - Shared steps

    /// The non-empty slices of `piece` at `ranges`.
    static func pieces(of piece: AlignedText, ranges: [Range<Int>]) -> [AlignedText] {
        ranges.filter { !$0.isEmpty }.map(piece.slice)
    }

    /// Splits on every scalar `isDelimiter` accepts, treating each as a match of its own.
    static func split(
        _ piece: AlignedText, behavior: SplitDelimiterBehavior, on isDelimiter: (Unicode.Scalar) -> Bool
    ) -> [AlignedText] {
        let spans = SplitDelimiterBehavior.spans(of: piece.scalars, delimiter: isDelimiter)
        return pieces(of: piece, ranges: behavior.pieces(of: spans))
    }

    /// `\w+|[^\w\s]+` matches, whitespace between them dropped.
    private static func wordRuns(of piece: AlignedText) -> [AlignedText] {
        enum Kind { case word, space, other }
        func kind(_ scalar: Unicode.Scalar) -> Kind {
            if TokenizerCharacterClass.isWordCharacter(scalar) { return .word }
            return TokenizerCharacterClass.isWhitespace(scalar) ? .space : .other
        }
        var ranges: [Range<Int>] = []
        var start = 0
        while start < piece.scalars.count {
            let startKind = kind(piece.scalars[start])
            var end = start + 1
            while end < piece.scalars.count, kind(piece.scalars[end]) == startKind {
                end += 1
            }
            if startKind != .space { ranges.append(start..<end) }
            start = end
        }
        return pieces(of: piece, ranges: ranges)
    }

    private static func metaspace(
        _ piece: AlignedText, replacement: Unicode.Scalar, prependScheme: PrependScheme, split: Bool
    ) -> [AlignedText] {
        var text = piece
        // One scalar for one: the alignment is unchanged.
        text.scalars = text.scalars.map { $0 == " " ? replacement : $0 }
        let prepends: Bool
        switch prependScheme {
        case .always: prepends = true
        // tokenizers asks whether the piece's span starts at input offset 0.
        case .first: prepends = piece.originStartsInput
        case .never: prepends = false
        }
        if prepends, let first = text.scalars.first, first != replacement {
            let atOrigin = text.scalarsAtOrigin > 0 ? text.scalarsAtOrigin + 1 : 0
            text.scalars.insert(replacement, at: 0)
            text.scalarsAtOrigin = atOrigin
        }
        guard !text.isEmpty else { return [] }
        guard split else { return [text] }
        return Self.split(text, behavior: .mergedWithNext) { $0 == replacement }
    }
}
