import Foundation

extension T5Tokenizer {
    /// Loads a transformers T5 tokenizer folder (`tokenizer_3/` of SD3, `tokenizer_2/` of FLUX).
    ///
    /// `tokenizer.json` is used when present (the fast tokenizer's own file); otherwise
    /// `spiece.model` is converted the way transformers converts it for `T5TokenizerFast`, with
    /// `tokenizer_config.json` and `special_tokens_map.json` (when present) for the special
    /// tokens, `extra_ids`, `legacy` and added-token flags.
    ///
    /// - Throws: ``T5TokenizerError`` naming the file and what was wrong in it.
    public init(folder: URL) throws {
        let tokenizerJSON = folder.appendingPathComponent("tokenizer.json")
        let sentencePieceModel = folder.appendingPathComponent("spiece.model")
        let configuration = try TokenizerFolderConfiguration(folder: folder)
        if FileManager.default.fileExists(atPath: tokenizerJSON.path) {
            try self.init(tokenizerJSON: tokenizerJSON, configuration: configuration)
        } else if FileManager.default.fileExists(atPath: sentencePieceModel.path) {
            let model = try SentencePieceModel(url: sentencePieceModel)
            try self.init(sentencePieceModel: model, source: sentencePieceModel.path, configuration: configuration)
        } else {
            throw T5TokenizerError.noTokenizerFiles(folder: folder.path)
        }
    }

    /// Loads a Hugging Face `tokenizer.json` with a Unigram model; the pad token is `<pad>`
    /// unless `configuration` names another.
    public init(tokenizerJSON url: URL, configuration: TokenizerFolderConfiguration = .init()) throws {
        let root = try TokenizerFile.object(at: url)
        let path = url.path
        let field = TokenizerFile.Fields(path: path)

        let modelObject = try field.object(root, "model")
        let modelType = try field.string(modelObject, "model.type")
        guard modelType == "Unigram" else {
            throw T5TokenizerError.unsupportedComponent(path: path, component: "model", type: modelType)
        }
        let vocabulary = try field.array(modelObject, "model.vocab")
        var pieces: [(text: String, score: Double)] = []
        pieces.reserveCapacity(vocabulary.count)
        for (index, entry) in vocabulary.enumerated() {
            guard let pair = entry as? [Any], pair.count == 2, let text = pair[0] as? String,
                  let score = TokenizerFile.double(pair[1]) else {
                throw T5TokenizerError.malformedField(
                    path: path, field: "model.vocab[\(index)]", reason: "expected [piece, score]")
            }
            pieces.append((text, score))
        }
        let unknownID = try field.optionalInt(modelObject, "model.unk_id")
        let byteFallback = try field.optionalBool(modelObject, "model.byte_fallback") ?? false
        let model = try Unigram(pieces: pieces, unknownID: unknownID, byteFallback: byteFallback, source: path)

        let normalizer = try TokenizerFile.nonNull(root["normalizer"]).map {
            try TokenizerNormalizer(json: $0, field: "normalizer", in: field)
        }
        let preTokenizer = try TokenizerFile.nonNull(root["pre_tokenizer"]).map {
            try PreTokenizer(json: $0, field: "pre_tokenizer", in: field)
        }

        var addedTokens: [AddedToken] = []
        for (index, entry) in try field.array(root, "added_tokens").enumerated() {
            let name = "added_tokens[\(index)]"
            guard let object = entry as? [String: Any] else {
                throw T5TokenizerError.malformedField(path: path, field: name, reason: "expected an object")
            }
            addedTokens.append(AddedToken(
                content: try field.string(object, "\(name).content"),
                id: try field.int(object, "\(name).id"),
                singleWord: try field.optionalBool(object, "\(name).single_word") ?? false,
                leftStrip: try field.optionalBool(object, "\(name).lstrip") ?? false,
                rightStrip: try field.optionalBool(object, "\(name).rstrip") ?? false,
                normalized: try field.optionalBool(object, "\(name).normalized") ?? false))
        }

        var prefixIDs: [Int] = []
        var suffixIDs: [Int] = []
        if let processor = TokenizerFile.nonNull(root["post_processor"]) {
            (prefixIDs, suffixIDs) = try Self.templateIDs(from: processor, in: field)
        }

        func id(of token: String) -> Int? {
            addedTokens.last { $0.content == token }?.id ?? model.id(of: token)
        }
        let padToken = configuration.padToken ?? "<pad>"
        guard let padID = id(of: padToken) else {
            throw T5TokenizerError.missingSpecialToken(source: path, token: padToken)
        }
        self.init(
            model: model, normalizer: normalizer, preTokenizer: preTokenizer, addedTokens: addedTokens,
            prefixIDs: prefixIDs, suffixIDs: suffixIDs, padID: padID)
    }

    // MARK: - Post-processor

    /// The ids a `TemplateProcessing` post-processor's `single` template puts before and after
    /// the sequence.
    private static func templateIDs(
        from value: Any, in field: TokenizerFile.Fields
    ) throws -> (prefix: [Int], suffix: [Int]) {
        guard let object = value as? [String: Any] else {
            throw T5TokenizerError.malformedField(path: field.path, field: "post_processor", reason: "expected an object")
        }
        let type = try field.string(object, "post_processor.type")
        guard type == "TemplateProcessing" else {
            throw T5TokenizerError.unsupportedComponent(path: field.path, component: "post_processor", type: type)
        }
        let specialTokens = try field.object(object, "post_processor.special_tokens")
        var prefix: [Int] = []
        var suffix: [Int] = []
        var sawSequence = false
        for (index, item) in try field.array(object, "post_processor.single").enumerated() {
            let name = "post_processor.single[\(index)]"
            guard let item = item as? [String: Any] else {
                throw T5TokenizerError.malformedField(path: field.path, field: name, reason: "expected an object")
            }
            if item["Sequence"] != nil {
                sawSequence = true
                continue
            }
            let special = try field.object(item, "\(name).SpecialToken")
            let tokenName = try field.string(special, "\(name).SpecialToken.id")
            guard let entry = specialTokens[tokenName] as? [String: Any] else {
                throw T5TokenizerError.missingSpecialToken(source: field.path, token: tokenName)
            }
            let ids = try field.array(entry, "post_processor.special_tokens.\(tokenName).ids").enumerated().map {
                guard let id = TokenizerFile.int($0.element) else {
                    throw T5TokenizerError.malformedField(
                        path: field.path, field: "post_processor.special_tokens.\(tokenName).ids[\($0.offset)]",
                        reason: "expected an integer")
                }
                return id
            }
            if sawSequence { suffix += ids } else { prefix += ids }
        }
        guard sawSequence else {
            throw T5TokenizerError.malformedField(
                path: field.path, field: "post_processor.single", reason: "the template has no Sequence item")
        }
        return (prefix, suffix)
    }
}
