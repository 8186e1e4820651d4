import Foundation

/// T5's SentencePiece Unigram tokenizer, id-exact with Hugging Face transformers'
/// `T5TokenizerFast`, the third tokenizer of Stable Diffusion 3 and the second of FLUX.
///
/// Encoding, as tokenizers does it: added tokens (`<pad>`, `</s>`, `<unk>`, `<extra_id_N>`) are
/// cut out of the raw text first and map straight to their ids; each stretch between them is
/// normalized by the file's ``TokenizerNormalizer`` (for transformers' T5 conversion
/// SentencePiece's precompiled NFKC map, trailing whitespace stripped, runs of spaces collapsed;
/// for tokenizers' own SentencePiece layout Nmt, NFKC and the same collapsing), split into words
/// by its ``PreTokenizer`` (Metaspace: `▁` marks each word start) and segmented by the
/// ``Unigram`` model; the post-processor then appends `</s>`.
///
/// Load it with ``init(folder:)`` from a transformers tokenizer folder (`tokenizer.json`, or
/// `spiece.model` when there is no `tokenizer.json`).
///
/// Reference: Raffel et al., "Exploring the Limits of Transfer Learning with a Unified
/// Text-to-Text Transformer" (https://arxiv.org/abs/1910.10683); Kudo and Richardson,
/// "SentencePiece" (https://arxiv.org/abs/1808.06226).
public struct T5Tokenizer: Sendable {
    /// Token ids with their attention mask, both `[maxLength]`.
    public struct Encoding: Sendable, Equatable {
        /// Text token ids, then `</s>`, then pad ids.
        public var ids: [Int32]
        /// 1 for text tokens and `</s>`, 0 for padding.
        public var attentionMask: [Int32]
    }

    /// The segmentation model.
    public let model: Unigram
    /// Text normalization, applied between added tokens.
    public let normalizer: TokenizerNormalizer?
    /// Word splitting after normalization.
    public let preTokenizer: PreTokenizer?
    /// Tokens matched whole before normalization (or, when `normalized`, after it).
    public let addedTokens: [AddedToken]
    /// Ids the post-processor puts before the text (none for T5).
    public let prefixIDs: [Int]
    /// Ids the post-processor puts after the text (`</s>` for T5).
    public let suffixIDs: [Int]
    /// Id used for padding (`<pad>`, 0 for T5).
    public let padID: Int

    private let rawSplitter: AddedTokenSplitter
    private let normalizedSplitter: AddedTokenSplitter

    /// Builds a tokenizer from its parts; ``init(folder:)`` reads them from files.
    public init(
        model: Unigram, normalizer: TokenizerNormalizer?, preTokenizer: PreTokenizer?,
        addedTokens: [AddedToken], prefixIDs: [Int], suffixIDs: [Int], padID: Int
    ) {
        self.model = model
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.addedTokens = addedTokens
        self.prefixIDs = prefixIDs
        self.suffixIDs = suffixIDs
        self.padID = padID
        rawSplitter = AddedTokenSplitter(tokens: addedTokens.filter { !$0.normalized })
        normalizedSplitter = AddedTokenSplitter(tokens: addedTokens.filter(\.normalized))
    }

    /// Token ids of `text` followed by `</s>`, without padding or truncation.
    ///
    /// Equals transformers' `T5TokenizerFast(text).input_ids`.
    public func encode(_ text: String) -> [Int32] {
        (prefixIDs + tokenIDs(text) + suffixIDs).map { Int32(truncatingIfNeeded: $0) }
    }

    /// Token ids and attention mask of `text`, truncated and padded to exactly `maxLength`.
    ///
    /// Equals transformers' `tokenizer(text, padding="max_length", max_length=maxLength,
    /// truncation=True, add_special_tokens=True)`: text tokens are dropped from the end until
    /// they and `</s>` fit, `</s>` is always kept, and pad ids (mask 0) fill the rest.
    ///
    /// - Throws: ``T5TokenizerError/maxLengthTooShort(maxLength:specialTokenCount:)`` when
    ///   `maxLength` is smaller than the number of special tokens added (1 for T5).
    public func encode(_ text: String, maxLength: Int) throws -> Encoding {
        let specialCount = prefixIDs.count + suffixIDs.count
        guard maxLength >= specialCount else {
            throw T5TokenizerError.maxLengthTooShort(maxLength: maxLength, specialTokenCount: specialCount)
        }
        let textIDs = tokenIDs(text).prefix(maxLength - specialCount)
        let ids = prefixIDs + textIDs + suffixIDs
        let padCount = maxLength - ids.count
        return Encoding(
            ids: (ids + repeatElement(padID, count: padCount)).map { Int32(truncatingIfNeeded: $0) },
            attentionMask: [Int32](repeating: 1, count: ids.count) + [Int32](repeating: 0, count: padCount))
    }

    /// Ids of the text's tokens alone, without `</s>`.
    public func tokenIDs(_ text: String) -> [Int] {
        var ids: [Int] = []
        for segment in segments(of: text) {
            switch segment {
            case .token(let id): ids.append(id)
            case .word(let word): ids += model.ids(forWord: word.text)
            }
        }
        return ids
    }

    /// What the model is given: an added token's id, or a word to segment.
    enum Segment: Equatable {
        case token(Int)
        case word(AlignedText)
    }

    /// The text cut as tokenizers cuts it before the model: raw added tokens first, each stretch
    /// between them normalized, normalized added tokens next, then the pre-tokenizer's words.
    func segments(of text: String) -> [Segment] {
        var segments: [Segment] = []
        for segment in rawSplitter.split(text, startsInput: true) {
            switch segment {
            case .token(let id):
                segments.append(.token(id))
            case .text(let raw, let startsInput):
                var normalized = AlignedText(raw, startsInput: startsInput)
                normalizer?.normalize(&normalized)
                for piece in normalizedSplitter.split(normalized.text, startsInput: normalized.startsInput) {
                    switch piece {
                    case .token(let id):
                        segments.append(.token(id))
                    case .text(let text, let startsInput):
                        // tokenizers slices the normalized text here, so a piece's origin is
                        // where its first scalar came from: the input start only if the
                        // normalizer kept it there.
                        let aligned = startsInput
                            ? normalized.slice(0..<text.unicodeScalars.count) : AlignedText(text, startsInput: false)
                        let words = preTokenizer?.split(aligned) ?? [aligned]
                        segments += words.map(Segment.word)
                    }
                }
            }
        }
        return segments
    }
}
