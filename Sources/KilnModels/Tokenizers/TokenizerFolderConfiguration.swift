import Foundation

/// What a transformers tokenizer folder's `tokenizer_config.json` and `special_tokens_map.json`
/// say about a T5 tokenizer; every field is nil or empty when neither file gives it.
public struct TokenizerFolderConfiguration: Sendable, Equatable {
    /// `pad_token`.
    public var padToken: String?
    /// `eos_token`.
    public var eosToken: String?
    /// `unk_token`.
    public var unknownToken: String?
    /// `additional_special_tokens` (T5's `<extra_id_N>`), in file order.
    public var additionalSpecialTokens: [String] = []
    /// `extra_ids`: how many `<extra_id_N>` tokens follow the SentencePiece pieces.
    public var extraIDs: Int?
    /// `legacy`: false makes the Metaspace prefix apply only at the start of the input.
    public var legacy: Bool?
    /// `add_prefix_space`: false drops the Metaspace prefix altogether.
    public var addPrefixSpace: Bool?
    /// `added_tokens_decoder`: the added tokens with their ids and matching flags.
    public var addedTokens: [AddedToken] = []

    /// An empty configuration (transformers' defaults apply).
    public init() {}

    /// Reads `tokenizer_config.json`, then `special_tokens_map.json` (whose tokens win, as in
    /// transformers), each only when present.
    public init(folder: URL) throws {
        let configURL = folder.appendingPathComponent("tokenizer_config.json")
        if FileManager.default.fileExists(atPath: configURL.path) {
            try apply(TokenizerFile.object(at: configURL), path: configURL.path)
        }
        let mapURL = folder.appendingPathComponent("special_tokens_map.json")
        if FileManager.default.fileExists(atPath: mapURL.path) {
            try apply(TokenizerFile.object(at: mapURL), path: mapURL.path)
        }
    }

    private mutating func apply(_ object: [String: Any], path: String) throws {
        let field = TokenizerFile.Fields(path: path)
        if let token = try Self.token(object["pad_token"], name: "pad_token", path: path) { padToken = token }
        if let token = try Self.token(object["eos_token"], name: "eos_token", path: path) { eosToken = token }
        if let token = try Self.token(object["unk_token"], name: "unk_token", path: path) { unknownToken = token }
        if let list = TokenizerFile.nonNull(object["additional_special_tokens"]) {
            guard let entries = list as? [Any] else {
                throw T5TokenizerError.malformedField(path: path, field: "additional_special_tokens", reason: "expected an array")
            }
            additionalSpecialTokens = try entries.enumerated().map {
                guard let token = try Self.token($0.element, name: "additional_special_tokens[\($0.offset)]", path: path) else {
                    throw T5TokenizerError.malformedField(
                        path: path, field: "additional_special_tokens[\($0.offset)]", reason: "is null")
                }
                return token
            }
        }
        if let value = try field.optionalInt(object, "extra_ids") { extraIDs = value }
        if let value = try field.optionalBool(object, "legacy") { legacy = value }
        if let value = try field.optionalBool(object, "add_prefix_space") { addPrefixSpace = value }
        if let decoder = TokenizerFile.nonNull(object["added_tokens_decoder"]) {
            guard let entries = decoder as? [String: Any] else {
                throw T5TokenizerError.malformedField(path: path, field: "added_tokens_decoder", reason: "expected an object")
            }
            var tokens: [AddedToken] = []
            for (idText, value) in entries {
                let name = "added_tokens_decoder.\(idText)"
                guard let id = Int(idText), let entry = value as? [String: Any] else {
                    throw T5TokenizerError.malformedField(
                        path: path, field: name, reason: "expected an integer key and an object")
                }
                tokens.append(AddedToken(
                    content: try field.string(entry, "\(name).content"), id: id,
                    singleWord: try field.optionalBool(entry, "\(name).single_word") ?? false,
                    leftStrip: try field.optionalBool(entry, "\(name).lstrip") ?? false,
                    rightStrip: try field.optionalBool(entry, "\(name).rstrip") ?? false,
                    normalized: try field.optionalBool(entry, "\(name).normalized") ?? false))
            }
            addedTokens = tokens.sorted { $0.id < $1.id }
        }
    }

    /// A token given as a string or as a serialized `AddedToken` object; nil for null/absent.
    private static func token(_ value: Any?, name: String, path: String) throws -> String? {
        guard let value = TokenizerFile.nonNull(value) else { return nil }
        if let string = value as? String { return string }
        if let object = value as? [String: Any], let content = object["content"] as? String { return content }
        throw T5TokenizerError.malformedField(
            path: path, field: name, reason: "expected a string or an object with \"content\"")
    }
}
