import Foundation

extension T5Tokenizer {
    /// How many `<extra_id_N>` sentinel tokens T5 appends after its SentencePiece pieces when the
    /// configuration does not say.
    public static let defaultExtraIDCount = 100

    /// Builds the tokenizer transformers' `T5TokenizerFast` makes from a `spiece.model`
    /// (its T5 converter), so that ids match those of the converted `tokenizer.json`:
    ///
    /// - vocabulary: the pieces with their scores, then `<extra_id_{n-1}>` … `<extra_id_0>`
    ///   scored 0 (so `<extra_id_0>` has the last id), unknown id from the trainer spec, no byte
    ///   fallback (the T5 converter does not carry it over);
    /// - normalizer: the precompiled charsmap (when the model has one), trailing whitespace
    ///   stripped, runs of two or more spaces replaced by one `▁`;
    /// - pre-tokenizer: Metaspace `▁`, prefixed `always` (`first` when `legacy` is false, never
    ///   when `add_prefix_space` is false);
    /// - added tokens: control and user-defined pieces, the pad/EOS/unknown tokens and the
    ///   additional special tokens, with flags from `added_tokens_decoder` when given;
    /// - post-processor: `</s>` (or the configured EOS token) after the text.
    ///
    /// - Throws: ``T5TokenizerError`` when the model is not Unigram, a special token has no id
    ///   or the charsmap is malformed.
    public init(
        sentencePieceModel model: SentencePieceModel, source: String,
        configuration: TokenizerFolderConfiguration = .init()
    ) throws {
        guard model.modelType == 1 else {
            throw T5TokenizerError.malformedSentencePieceModel(
                path: source, offset: 0, reason: "model_type \(model.modelType) is not Unigram (1)")
        }
        let extraIDCount = configuration.extraIDs ?? Self.defaultExtraIDCount
        var pieces = model.pieces.map { (text: $0.text, score: Double($0.score)) }
        pieces += (0..<extraIDCount).reversed().map { (text: "<extra_id_\($0)>", score: 0.0) }
        let unigram = try Unigram(pieces: pieces, unknownID: model.unknownID, byteFallback: false, source: source)

        var normalizerSteps: [TokenizerNormalizer] = []
        if !model.precompiledCharsMap.isEmpty {
            normalizerSteps.append(.precompiled(try PrecompiledCharsMap(blob: model.precompiledCharsMap, source: source)))
        }
        normalizerSteps.append(.strip(left: false, right: true))
        normalizerSteps.append(.replace(try .regex(" {2,}"), content: "\u{2581}"))

        let prependScheme: PreTokenizer.PrependScheme =
            configuration.addPrefixSpace == false ? .never : (configuration.legacy == false ? .first : .always)

        let addedTokens = try Self.sentencePieceAddedTokens(
            model: model, vocabulary: unigram, configuration: configuration, source: source)
        func id(of token: String) throws -> Int {
            guard let id = addedTokens.last(where: { $0.content == token })?.id ?? unigram.id(of: token) else {
                throw T5TokenizerError.missingSpecialToken(source: source, token: token)
            }
            return id
        }
        self.init(
            model: unigram, normalizer: .sequence(normalizerSteps),
            preTokenizer: .metaspace(replacement: "\u{2581}", prependScheme: prependScheme, split: true),
            addedTokens: addedTokens, prefixIDs: [],
            suffixIDs: [try id(of: configuration.eosToken ?? "</s>")],
            padID: try id(of: configuration.padToken ?? "<pad>"))
    }

    /// The added tokens of a converted `spiece.model`: control and user-defined pieces (in id
    /// order), then the special tokens of the tokenizer. A token already in the vocabulary keeps
    /// its id; one that is not gets the next id after everything else, as in tokenizers.
    private static func sentencePieceAddedTokens(
        model: SentencePieceModel, vocabulary: Unigram, configuration: TokenizerFolderConfiguration,
        source: String
    ) throws -> [AddedToken] {
        let flags = Dictionary(configuration.addedTokens.map { ($0.content, $0) }, uniquingKeysWith: { $1 })
        var tokens: [AddedToken] = []
        var seen: Set<String> = []
        var nextID = vocabulary.pieces.count
        func add(_ content: String, id knownID: Int?) {
            guard !content.isEmpty, !seen.contains(content) else { return }
            seen.insert(content)
            let id: Int
            if let knownID {
                id = knownID
            } else if let configured = flags[content]?.id {
                id = configured
            } else {
                id = nextID
                nextID += 1
            }
            var token = flags[content] ?? AddedToken(content: content, id: id)
            token.id = id
            tokens.append(token)
        }
        for (id, piece) in model.pieces.enumerated() where piece.type == .control || piece.type == .userDefined {
            add(piece.text, id: vocabulary.id(of: piece.text) ?? id)
        }
        let extraIDCount = configuration.extraIDs ?? defaultExtraIDCount
        let extraTokens = configuration.additionalSpecialTokens.isEmpty
            ? (0..<extraIDCount).map { "<extra_id_\($0)>" } : configuration.additionalSpecialTokens
        let special = [
            configuration.eosToken ?? "</s>", configuration.unknownToken ?? "<unk>",
            configuration.padToken ?? "<pad>",
        ] + extraTokens
        for content in special {
            add(content, id: vocabulary.id(of: content))
        }
        return tokens
    }
}
