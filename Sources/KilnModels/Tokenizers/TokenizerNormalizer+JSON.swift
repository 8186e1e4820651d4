import Foundation

extension TokenizerNormalizer {
    /// Reads the normalizer object of a `tokenizer.json` (its `normalizer` field, or a step of a
    /// `Sequence`). Fields tokenizers gives defaults may be left out.
    ///
    /// - Parameters:
    ///   - value: the parsed JSON value.
    ///   - name: its path in the file, for error messages (`normalizer`,
    ///     `normalizer.normalizers[0]`).
    ///   - file: the file being read.
    /// - Throws: ``T5TokenizerError/unsupportedComponent(path:component:type:)`` for a type
    ///   Kiln does not implement, ``T5TokenizerError/malformedField(path:field:reason:)`` for a
    ///   missing or mistyped field, ``T5TokenizerError/invalidRegex(pattern:reason:)`` and
    ///   ``T5TokenizerError/malformedCharsMap(source:reason:)``.
    init(json value: Any, field name: String, in file: TokenizerFile.Fields) throws {
        guard let object = value as? [String: Any] else {
            throw T5TokenizerError.malformedField(path: file.path, field: name, reason: "expected an object")
        }
        let type = try file.string(object, "\(name).type")
        func flag(_ key: String, default defaultValue: Bool) throws -> Bool {
            try file.optionalBool(object, "\(name).\(key)") ?? defaultValue
        }
        switch type {
        case "Sequence":
            let steps = try file.array(object, "\(name).normalizers")
            self = .sequence(try steps.enumerated().map {
                try TokenizerNormalizer(json: $0.element, field: "\(name).normalizers[\($0.offset)]", in: file)
            })
        case "BertNormalizer":
            self = .bert(BertOptions(
                cleanText: try flag("clean_text", default: true),
                handleChineseCharacters: try flag("handle_chinese_chars", default: true),
                stripAccents: try file.optionalBool(object, "\(name).strip_accents"),
                lowercase: try flag("lowercase", default: true)))
        case "Strip":
            self = .strip(left: try flag("strip_left", default: true), right: try flag("strip_right", default: true))
        case "StripAccents": self = .stripAccents
        case "NFC": self = .nfc
        case "NFD": self = .nfd
        case "NFKC": self = .nfkc
        case "NFKD": self = .nfkd
        case "Lowercase": self = .lowercase
        case "Nmt": self = .nmt
        case "ByteLevel": self = .byteLevel
        case "Precompiled":
            self = try Self.precompiled(object, field: name, in: file)
        case "Replace":
            self = .replace(
                try TokenizerPattern(json: object, field: "\(name).pattern", in: file),
                content: try file.string(object, "\(name).content"))
        case "Prepend":
            self = .prepend(try file.string(object, "\(name).prepend"))
        default:
            throw T5TokenizerError.unsupportedComponent(path: file.path, component: name, type: type)
        }
    }

    /// A `Precompiled` step; a missing or empty charsmap maps nothing.
    private static func precompiled(
        _ object: [String: Any], field name: String, in file: TokenizerFile.Fields
    ) throws -> TokenizerNormalizer {
        guard let encoded = TokenizerFile.nonNull(object["precompiled_charsmap"]) else {
            return .sequence([])
        }
        guard let text = encoded as? String, let blob = Data(base64Encoded: text) else {
            throw T5TokenizerError.malformedField(
                path: file.path, field: "\(name).precompiled_charsmap", reason: "expected a base64 string")
        }
        if blob.isEmpty { return .sequence([]) }
        return .precompiled(try PrecompiledCharsMap(blob: Array(blob), source: file.path))
    }
}

extension TokenizerPattern {
    /// Reads the `pattern` field of a `Replace` normalizer or `Split` pre-tokenizer,
    /// `{"String": …}` or `{"Regex": …}`; `name` is the field's path for error messages.
    init(json object: [String: Any], field name: String, in file: TokenizerFile.Fields) throws {
        let pattern = try file.object(object, name)
        if let literal = pattern["String"] as? String {
            self = .string(literal)
        } else if let regex = pattern["Regex"] as? String {
            self = try .regex(regex)
        } else {
            throw T5TokenizerError.malformedField(
                path: file.path, field: name, reason: "expected {\"String\": …} or {\"Regex\": …}")
        }
    }
}
