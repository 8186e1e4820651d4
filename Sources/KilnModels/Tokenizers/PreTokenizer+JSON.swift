extension PreTokenizer {
    /// Reads the pre-tokenizer object of a `tokenizer.json` (its `pre_tokenizer` field, or a
    /// step of a `Sequence`). Fields tokenizers gives defaults may be left out.
    ///
    /// - Parameters:
    ///   - value: the parsed JSON value.
    ///   - name: its path in the file, for error messages (`pre_tokenizer`,
    ///     `pre_tokenizer.pretokenizers[1]`).
    ///   - file: the file being read.
    /// - Throws: ``T5TokenizerError/unsupportedComponent(path:component:type:)`` for a type
    ///   Kiln does not implement, ``T5TokenizerError/malformedField(path:field:reason:)`` for a
    ///   missing or mistyped field, ``T5TokenizerError/invalidRegex(pattern:reason:)``.
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
            let steps = try file.array(object, "\(name).pretokenizers")
            self = .sequence(try steps.enumerated().map {
                try PreTokenizer(json: $0.element, field: "\(name).pretokenizers[\($0.offset)]", in: file)
            })
        case "WhitespaceSplit": self = .whitespaceSplit
        case "Whitespace": self = .whitespace
        case "BertPreTokenizer": self = .bert
        case "Metaspace":
            self = try Self.metaspace(object, field: name, in: file)
        case "Split":
            self = .split(
                try TokenizerPattern(json: object, field: "\(name).pattern", in: file),
                behavior: try Self.behavior(object, field: "\(name).behavior", in: file) ?? .isolated,
                invert: try flag("invert", default: false))
        case "Punctuation":
            self = .punctuation(try Self.behavior(object, field: "\(name).behavior", in: file) ?? .isolated)
        case "Digits":
            self = .digits(individualDigits: try flag("individual_digits", default: false))
        case "ByteLevel":
            self = .byteLevel(
                addPrefixSpace: try flag("add_prefix_space", default: true),
                useRegex: try flag("use_regex", default: true))
        case "CharDelimiterSplit":
            self = .characterDelimiter(try Self.singleScalar(object, field: "\(name).delimiter", in: file))
        default:
            throw T5TokenizerError.unsupportedComponent(path: file.path, component: name, type: type)
        }
    }

    private static func metaspace(
        _ object: [String: Any], field name: String, in file: TokenizerFile.Fields
    ) throws -> PreTokenizer {
        let replacement = try singleScalar(object, field: "\(name).replacement", in: file)
        let addPrefixSpace = try file.optionalBool(object, "\(name).add_prefix_space")
        let scheme: PrependScheme
        if let schemeName = try file.optionalString(object, "\(name).prepend_scheme") {
            guard let parsed = PrependScheme(rawValue: schemeName) else {
                throw T5TokenizerError.malformedField(
                    path: file.path, field: "\(name).prepend_scheme",
                    reason: "expected always, first or never, found \(schemeName.debugDescription)")
            }
            if addPrefixSpace == false, parsed != .never {
                throw T5TokenizerError.malformedField(
                    path: file.path, field: "\(name).add_prefix_space",
                    reason: "false does not match prepend_scheme \(schemeName.debugDescription)")
            }
            scheme = parsed
        } else {
            // Files written before tokenizers 0.14 have only the flag.
            scheme = addPrefixSpace ?? true ? .always : .never
        }
        return .metaspace(
            replacement: replacement, prependScheme: scheme,
            split: try file.optionalBool(object, "\(name).split") ?? true)
    }

    /// A `behavior` field: `Removed`, `Isolated`, `MergedWithPrevious`, `MergedWithNext` or
    /// `Contiguous`; nil when absent.
    private static func behavior(
        _ object: [String: Any], field name: String, in file: TokenizerFile.Fields
    ) throws -> SplitDelimiterBehavior? {
        guard let text = try file.optionalString(object, name) else { return nil }
        guard let behavior = SplitDelimiterBehavior(rawValue: text) else {
            let names = SplitDelimiterBehavior.allCases.map(\.rawValue).joined(separator: ", ")
            throw T5TokenizerError.malformedField(
                path: file.path, field: name, reason: "expected one of \(names), found \(text.debugDescription)")
        }
        return behavior
    }

    /// A field holding exactly one character (a Rust `char`: one Unicode scalar).
    private static func singleScalar(
        _ object: [String: Any], field name: String, in file: TokenizerFile.Fields
    ) throws -> Unicode.Scalar {
        let text = try file.string(object, name)
        guard text.unicodeScalars.count == 1, let scalar = text.unicodeScalars.first else {
            throw T5TokenizerError.malformedField(
                path: file.path, field: name, reason: "expected one character, found \(text.debugDescription)")
        }
        return scalar
    }
}
