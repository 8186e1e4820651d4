import Foundation

/// CLIP's byte-level BPE tokenizer, id-exact with Hugging Face transformers' slow
/// `CLIPTokenizer` (as it behaves without `ftfy` installed), the tokenizer diffusers uses for
/// Stable Diffusion 1.x/2.x and both SDXL text encoders.
///
/// Encoding: special tokens (`<|startoftext|>`, `<|endoftext|>`, the pad token and any added
/// tokens) are split out first and map straight to their ids; the text between them is cleaned,
/// NFC-normalized, lower-cased and cut into words by ``CLIPTextNormalizer``; each word's UTF-8
/// bytes are BPE-merged by merge rank, with `</w>` marking the word end.
///
/// Reference: Radford et al., "Learning Transferable Visual Models From Natural Language
/// Supervision" (https://arxiv.org/abs/2103.00020).
public struct CLIPTokenizer: Sendable {
    /// Special tokens and lengths; defaults are those of Stable Diffusion 1.x's tokenizer.
    public struct Configuration: Sendable, Equatable {
        /// The context length of the text encoder; padding and truncation produce this many ids.
        public var modelMaxLength: Int
        /// Token placed before the text.
        public var bosToken: String
        /// Token placed after the text (and, for SD1.x, used as padding).
        public var eosToken: String
        /// Token used to pad to ``modelMaxLength``: `<|endoftext|>` for SD1.x, `!` for SD2.x and
        /// SDXL's second tokenizer. Like every special token it is never split, so with `!` as
        /// pad token a run like `!!!` encodes as three separate `!` ids.
        public var padToken: String
        /// Token used for a symbol missing from the vocabulary.
        public var unknownToken: String
        /// Extra never-split tokens with their ids (for example textual-inversion tokens from a
        /// `tokenizer_config.json`'s `added_tokens_decoder`).
        public var addedTokens: [String: Int]

        /// Creates a configuration; the defaults match diffusers' SD1.x `tokenizer/` folder.
        public init(
            modelMaxLength: Int = 77,
            bosToken: String = "<|startoftext|>",
            eosToken: String = "<|endoftext|>",
            padToken: String = "<|endoftext|>",
            unknownToken: String = "<|endoftext|>",
            addedTokens: [String: Int] = [:]
        ) {
            self.modelMaxLength = modelMaxLength
            self.bosToken = bosToken
            self.eosToken = eosToken
            self.padToken = padToken
            self.unknownToken = unknownToken
            self.addedTokens = addedTokens
        }
    }

    /// Token ids with their attention mask (1 for real tokens, 0 for padding).
    public struct Encoding: Sendable, Equatable {
        /// Token ids, BOS first.
        public var ids: [Int]
        /// One entry per id: 1 for BOS, text tokens and EOS, 0 for padding.
        public var attentionMask: [Int]
    }

    /// The configuration this tokenizer was built with.
    public let configuration: Configuration
    /// Token string → id.
    public let vocabulary: [String: Int]
    /// Id of ``Configuration/bosToken``.
    public let bosTokenID: Int
    /// Id of ``Configuration/eosToken``.
    public let eosTokenID: Int
    /// Id of ``Configuration/padToken``.
    public let padTokenID: Int
    /// Id of ``Configuration/unknownToken``.
    public let unknownTokenID: Int

    private let bpe: ByteLevelBPE
    /// Never-split tokens as scalar arrays with their ids, longest first so the longest match at
    /// a position wins.
    private let specialTokens: [(scalars: [Unicode.Scalar], id: Int)]
    private let cache = TokenCache()

    /// Builds a tokenizer from an in-memory vocabulary and merge list.
    ///
    /// - Throws: ``CLIPTokenizerError/missingSpecialToken(_:)`` when a configured special
    ///   token is neither in `vocabulary` nor in ``Configuration/addedTokens``.
    public init(
        vocabulary: [String: Int], merges: [(String, String)], configuration: Configuration = .init()
    ) throws {
        func id(of token: String) throws -> Int {
            if let id = configuration.addedTokens[token] ?? vocabulary[token] {
                return id
            }
            throw CLIPTokenizerError.missingSpecialToken(token)
        }
        self.configuration = configuration
        self.vocabulary = vocabulary
        self.bpe = ByteLevelBPE(merges: merges)
        bosTokenID = try id(of: configuration.bosToken)
        eosTokenID = try id(of: configuration.eosToken)
        padTokenID = try id(of: configuration.padToken)
        unknownTokenID = try id(of: configuration.unknownToken)
        var special: [String: Int] = configuration.addedTokens
        special[configuration.bosToken] = bosTokenID
        special[configuration.eosToken] = eosTokenID
        special[configuration.padToken] = padTokenID
        special[configuration.unknownToken] = unknownTokenID
        specialTokens = special
            .filter { !$0.key.isEmpty }
            .map { (Array($0.key.unicodeScalars), $0.value) }
            .sorted { $0.scalars.count > $1.scalars.count }
    }

    /// Token ids for `text`: BOS, the text's tokens, EOS; no padding and no truncation.
    ///
    /// Equals transformers' `tokenizer(text).input_ids`.
    public func encode(_ text: String) -> [Int] {
        [bosTokenID] + tokenIDs(text) + [eosTokenID]
    }

    /// Token ids for `text`, padded and/or truncated to ``Configuration/modelMaxLength``.
    ///
    /// Equals transformers' `tokenizer(text, padding="max_length", max_length=77,
    /// truncation=True).input_ids` with both flags set. Truncation keeps BOS and EOS and drops
    /// text tokens from the end; padding appends the pad id after EOS.
    public func encode(_ text: String, padding: Bool = true, truncation: Bool = true) -> [Int] {
        encoding(text, padding: padding, truncation: truncation).ids
    }

    /// Token ids and attention mask for `text`; see ``encode(_:padding:truncation:)``.
    public func encoding(_ text: String, padding: Bool = true, truncation: Bool = true) -> Encoding {
        var tokens = tokenIDs(text)
        let textCapacity = max(configuration.modelMaxLength - 2, 0)
        if truncation, tokens.count > textCapacity {
            tokens.removeLast(tokens.count - textCapacity)
        }
        var ids = [bosTokenID] + tokens + [eosTokenID]
        var attentionMask = [Int](repeating: 1, count: ids.count)
        if padding, ids.count < configuration.modelMaxLength {
            let padCount = configuration.modelMaxLength - ids.count
            ids += [Int](repeating: padTokenID, count: padCount)
            attentionMask += [Int](repeating: 0, count: padCount)
        }
        return Encoding(ids: ids, attentionMask: attentionMask)
    }

    /// Ids of the text's tokens, without BOS and EOS.
    public func tokenIDs(_ text: String) -> [Int] {
        var ids: [Int] = []
        var pending = String.UnicodeScalarView()
        let scalars = Array(text.unicodeScalars)
        var index = 0
        while index < scalars.count {
            if let token = specialToken(in: scalars, at: index) {
                appendTextIDs(of: String(pending), to: &ids)
                pending.removeAll()
                ids.append(token.id)
                index += token.scalars.count
            } else {
                pending.append(scalars[index])
                index += 1
            }
        }
        appendTextIDs(of: String(pending), to: &ids)
        return ids
    }

    /// The longest never-split token that starts at `index`, if any.
    private func specialToken(
        in scalars: [Unicode.Scalar], at index: Int
    ) -> (scalars: [Unicode.Scalar], id: Int)? {
        specialTokens.first { token in
            index + token.scalars.count <= scalars.count
                && scalars[index..<(index + token.scalars.count)].elementsEqual(token.scalars)
        }
    }

    private func appendTextIDs(of text: String, to ids: inout [Int]) {
        guard !text.isEmpty else { return }
        for piece in CLIPTextNormalizer.pieces(of: text) {
            // Keyed by the byte-encoded form: its symbols contain no combining marks, so Swift's
            // canonical-equivalence string comparison cannot mix up two different pieces.
            let encoded = ByteLevelBPE.byteEncoded(String(String.UnicodeScalarView(piece)))
            if let cached = cache.ids(for: encoded) {
                ids += cached
                continue
            }
            let pieceIDs = idsOfEncodedPiece(encoded)
            cache.store(pieceIDs, for: encoded)
            ids += pieceIDs
        }
    }

    private func idsOfEncodedPiece(_ encoded: String) -> [Int] {
        // The word pattern keeps these two literals whole and they skip BPE (no `</w>`),
        // whatever the configured special tokens are. They are ASCII, so byte encoding leaves
        // them unchanged.
        if encoded == CLIPTextNormalizer.startOfTextLiteral || encoded == CLIPTextNormalizer.endOfTextLiteral {
            return [vocabulary[encoded] ?? unknownTokenID]
        }
        return bpe.symbols(forWord: encoded).map { vocabulary[$0] ?? unknownTokenID }
    }
}
