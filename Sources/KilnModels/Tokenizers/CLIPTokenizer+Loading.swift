import Foundation

/// Why a CLIP tokenizer could not be built.
public enum CLIPTokenizerError: Error, Equatable, CustomStringConvertible {
    /// A file could not be read (missing, unreadable, or not UTF-8).
    case unreadableFile(path: String, reason: String)
    /// `vocab.json` is not a JSON object of string → integer.
    case malformedVocabulary(path: String, reason: String)
    /// A line of `merges.txt` is not what was expected.
    case malformedMerges(path: String, line: Int, expected: String, found: String)
    /// `tokenizer_config.json` or `special_tokens_map.json` has an unusable entry.
    case malformedConfiguration(path: String, reason: String)
    /// A configured special token has no id.
    case missingSpecialToken(String)

    public var description: String {
        switch self {
        case .unreadableFile(let path, let reason):
            "[CLIPTokenizer] cannot read \(path): \(reason)"
        case .malformedVocabulary(let path, let reason):
            "[CLIPTokenizer] \(path): \(reason)"
        case .malformedMerges(let path, let line, let expected, let found):
            "[CLIPTokenizer] \(path):\(line): expected \(expected), found \(found.debugDescription)"
        case .malformedConfiguration(let path, let reason):
            "[CLIPTokenizer] \(path): \(reason)"
        case .missingSpecialToken(let token):
            "[CLIPTokenizer] special token \(token.debugDescription) is not in the vocabulary"
        }
    }
}

extension CLIPTokenizer {
    /// How many merges transformers reads from `merges.txt`: CLIP's 49,152-entry BPE
    /// vocabulary less the 256 byte symbols and 2 special tokens. Later lines are ignored.
    public static let mergeCount = 49_152 - 256 - 2

    /// Builds a tokenizer from a `vocab.json` and a `merges.txt` (as in a diffusers
    /// `tokenizer/` folder).
    ///
    /// - Throws: ``CLIPTokenizerError`` naming the file, and for `merges.txt` the line number and
    ///   what was expected there.
    public init(vocabularyURL: URL, mergesURL: URL, configuration: Configuration = .init()) throws {
        let vocabulary = try Self.readVocabulary(at: vocabularyURL)
        let merges = try Self.readMerges(at: mergesURL)
        try self.init(vocabulary: vocabulary, merges: merges, configuration: configuration)
    }

    /// Loads a diffusers/transformers `tokenizer/` folder: `vocab.json`, `merges.txt`, and, when
    /// present, `tokenizer_config.json` and `special_tokens_map.json` for the special tokens,
    /// `model_max_length` and added tokens (`special_tokens_map.json` wins, as in transformers).
    public static func load(folder: URL) throws -> CLIPTokenizer {
        var configuration = Configuration()
        let configURL = folder.appendingPathComponent("tokenizer_config.json")
        if FileManager.default.fileExists(atPath: configURL.path) {
            let object = try readJSONObject(at: configURL)
            try apply(object, from: configURL, to: &configuration)
        }
        let mapURL = folder.appendingPathComponent("special_tokens_map.json")
        if FileManager.default.fileExists(atPath: mapURL.path) {
            let object = try readJSONObject(at: mapURL)
            try apply(object, from: mapURL, to: &configuration)
        }
        return try CLIPTokenizer(
            vocabularyURL: folder.appendingPathComponent("vocab.json"),
            mergesURL: folder.appendingPathComponent("merges.txt"),
            configuration: configuration)
    }

    /// The vocabulary CLIP derives from its merges: the 256 byte symbols (in byte-to-symbol
    /// table order), the same 256 with `</w>`, one entry per merge (the concatenated pair), then
    /// `<|startoftext|>` and `<|endoftext|>`. With CLIP's 48,894 merges this is the 49,408-entry
    /// `vocab.json` of every CLIP/Stable Diffusion tokenizer.
    public static func vocabulary(fromMerges merges: [(String, String)]) -> [String: Int] {
        var tokens = ByteLevelBPE.vocabularyByteOrder.map { String(ByteLevelBPE.byteSymbols[$0]) }
        tokens += tokens.map { $0 + ByteLevelBPE.endOfWordSuffix }
        tokens += merges.map { $0.0 + $0.1 }
        tokens += ["<|startoftext|>", "<|endoftext|>"]
        var vocabulary = [String: Int](minimumCapacity: tokens.count)
        for (id, token) in tokens.enumerated() {
            vocabulary[token] = id
        }
        return vocabulary
    }

    /// Reads `merges.txt`: a `#version` header line, then one merge per line as two symbols
    /// separated by whitespace. Only the first ``mergeCount`` merges are returned.
    public static func readMerges(at url: URL) throws -> [(String, String)] {
        let text = try readText(at: url)
        var merges: [(String, String)] = []
        merges.reserveCapacity(mergeCount)
        // Split on scalars: as Characters, "\r\n" is one grapheme and would not split on "\n".
        var lines = text.unicodeScalars
            .split(separator: "\n", omittingEmptySubsequences: false)
            .map { String(String.UnicodeScalarView($0)) }
        // Trailing blank lines are harmless (transformers strips the whole file first).
        while let last = lines.last, last.unicodeScalars.allSatisfy(CLIPTextNormalizer.isPythonWhitespace) {
            lines.removeLast()
        }
        guard let header = lines.first, header.hasPrefix("#version") else {
            throw CLIPTokenizerError.malformedMerges(
                path: url.path, line: 1, expected: "a '#version: 0.2' header", found: lines.first ?? "")
        }
        for (offset, line) in lines.enumerated().dropFirst() {
            guard merges.count < mergeCount else { break }
            let fields = line.unicodeScalars
                .split(whereSeparator: CLIPTextNormalizer.isPythonWhitespace)
                .map { String(String.UnicodeScalarView($0)) }
            guard fields.count == 2 else {
                throw CLIPTokenizerError.malformedMerges(
                    path: url.path, line: offset + 1,
                    expected: "two symbols separated by a space", found: line)
            }
            merges.append((fields[0], fields[1]))
        }
        return merges
    }

    /// Reads `vocab.json`, a JSON object of token → id.
    public static func readVocabulary(at url: URL) throws -> [String: Int] {
        let data = try readData(at: url)
        do {
            return try JSONDecoder().decode([String: Int].self, from: data)
        } catch {
            throw CLIPTokenizerError.malformedVocabulary(
                path: url.path, reason: "expected a JSON object of token to integer id (\(error))")
        }
    }

    // MARK: - Configuration files

    private static func apply(
        _ object: [String: Any], from url: URL, to configuration: inout Configuration
    ) throws {
        let tokenKeys: [(String, WritableKeyPath<Configuration, String>)] = [
            ("bos_token", \.bosToken), ("eos_token", \.eosToken),
            ("pad_token", \.padToken), ("unk_token", \.unknownToken),
        ]
        for (key, path) in tokenKeys {
            guard let value = object[key], !(value is NSNull) else { continue }
            guard let token = tokenContent(value) else {
                throw CLIPTokenizerError.malformedConfiguration(
                    path: url.path, reason: "\(key) is neither a string nor an object with \"content\"")
            }
            configuration[keyPath: path] = token
        }
        if let length = object["model_max_length"] as? NSNumber {
            // Configs without a limit store a huge sentinel (1e30); keep CLIP's 77 then.
            let value = length.doubleValue
            if value >= 1, value <= 1_000_000, value == value.rounded() {
                configuration.modelMaxLength = Int(value)
            }
        }
        if let added = object["added_tokens_decoder"] as? [String: Any] {
            for (idText, value) in added {
                guard let id = Int(idText), let token = tokenContent(value) else {
                    throw CLIPTokenizerError.malformedConfiguration(
                        path: url.path, reason: "added_tokens_decoder entry \(idText.debugDescription) is malformed")
                }
                configuration.addedTokens[token] = id
            }
        }
    }

    /// A token given either as a plain string or as a serialized `AddedToken` object.
    private static func tokenContent(_ value: Any) -> String? {
        if let string = value as? String {
            return string
        }
        if let object = value as? [String: Any], let content = object["content"] as? String {
            return content
        }
        return nil
    }

    private static func readJSONObject(at url: URL) throws -> [String: Any] {
        let data = try readData(at: url)
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw CLIPTokenizerError.malformedConfiguration(path: url.path, reason: "invalid JSON (\(error))")
        }
        guard let object = parsed as? [String: Any] else {
            throw CLIPTokenizerError.malformedConfiguration(path: url.path, reason: "expected a JSON object")
        }
        return object
    }

    private static func readData(at url: URL) throws -> Data {
        do {
            return try Data(contentsOf: url)
        } catch {
            let reason = FileManager.default.fileExists(atPath: url.path)
                ? error.localizedDescription : "no such file"
            throw CLIPTokenizerError.unreadableFile(path: url.path, reason: reason)
        }
    }

    private static func readText(at url: URL) throws -> String {
        let data = try readData(at: url)
        guard let text = String(data: data, encoding: .utf8) else {
            throw CLIPTokenizerError.unreadableFile(path: url.path, reason: "not valid UTF-8")
        }
        return text
    }
}
