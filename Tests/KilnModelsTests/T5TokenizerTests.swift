import Foundation
import Testing

@testable import KilnModels

/// One prompt recorded by `Tests/Fixtures/generate_t5_tokenizer_fixtures.py`.
private struct T5TokenizerCase: Decodable {
    let text: String
    /// `T5TokenizerFast(text).input_ids`.
    let ids: [Int32]
    /// The same with the Metaspace prepend scheme "first".
    let firstIDs: [Int32]
    /// Real-token count of the padded/truncated call, per max length.
    let lengths: [Int]
    /// A fast tokenizer loaded from `spiece.model` alone, where it differs from `ids`.
    let spieceIDs: [Int32]?
    /// The byte-fallback Unigram tokenizer of `byte_fallback/tokenizer.json`.
    let byteFallbackIDs: [Int32]

    enum CodingKeys: String, CodingKey {
        case text, ids, lengths
        case firstIDs = "first_ids"
        case spieceIDs = "spiece_ids"
        case byteFallbackIDs = "byte_fallback_ids"
    }
}

private struct T5TokenizerFixture: Decodable {
    let maxLengths: [Int]
    let padID: Int32
    let eosID: Int32
    let cases: [T5TokenizerCase]

    enum CodingKeys: String, CodingKey {
        case cases
        case maxLengths = "max_lengths"
        case padID = "pad_id"
        case eosID = "eos_id"
    }

    /// What transformers returned for `tokenizer(text, padding="max_length", max_length=N,
    /// truncation=True)`, rebuilt from the recorded length as the generator asserted it.
    func expected(_ testCase: T5TokenizerCase, lengthIndex: Int) -> T5Tokenizer.Encoding {
        let maxLength = maxLengths[lengthIndex]
        let length = testCase.lengths[lengthIndex]
        let kept = length < testCase.ids.count ? Array(testCase.ids.prefix(length - 1)) + [eosID] : testCase.ids
        return T5Tokenizer.Encoding(
            ids: kept + [Int32](repeating: padID, count: maxLength - length),
            attentionMask: [Int32](repeating: 1, count: length) + [Int32](repeating: 0, count: maxLength - length))
    }
}

private enum T5FixtureError: Error {
    case missingFixtures
}

private func t5FixtureURL() throws -> URL {
    guard let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
        throw T5FixtureError.missingFixtures
    }
    return root.appendingPathComponent("t5_tokenizer")
}

private func tokenizerFolder() throws -> URL {
    try t5FixtureURL().appendingPathComponent("tokenizer")
}

private let t5Fixture: Result<T5TokenizerFixture, any Error> = Result {
    let url = try t5FixtureURL().appendingPathComponent("token_ids.json")
    return try JSONDecoder().decode(T5TokenizerFixture.self, from: Data(contentsOf: url))
}

/// A fresh folder holding copies of the named files of the fixture tokenizer folder.
private func folder(copying names: [String]) throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("kiln-t5-tokenizer-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    for name in names {
        try FileManager.default.copyItem(
            at: tokenizerFolder().appendingPathComponent(name), to: url.appendingPathComponent(name))
    }
    return url
}

/// A copy of the fixture `tokenizer.json` with `edit` applied to its JSON object.
private func folder(editingTokenizerJSON edit: (inout [String: Any]) -> Void) throws -> URL {
    let url = try folder(copying: [])
    let data = try Data(contentsOf: tokenizerFolder().appendingPathComponent("tokenizer.json"))
    guard var object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        throw T5FixtureError.missingFixtures
    }
    edit(&object)
    try JSONSerialization.data(withJSONObject: object).write(to: url.appendingPathComponent("tokenizer.json"))
    return url
}

/// Checks every recorded prompt at every max length; `expectedIDs` picks the reference ids.
private func expectReferenceIDs(
    _ tokenizer: T5Tokenizer, label: String, expectedIDs: (T5TokenizerCase) -> [Int32]
) throws {
    let fixture = try t5Fixture.get()
    try #require(fixture.cases.count >= 150, "token_ids.json has only \(fixture.cases.count) cases")
    try #require(fixture.maxLengths == [77, 256, 512])
    var mismatches = 0
    for testCase in fixture.cases {
        let ids = expectedIDs(testCase)
        let encoded = tokenizer.encode(testCase.text)
        if encoded != ids {
            mismatches += 1
            Issue.record("\(label) \(testCase.text.debugDescription): \(encoded) != \(ids)")
            continue
        }
        for (index, maxLength) in fixture.maxLengths.enumerated() {
            var reference = testCase
            reference = T5TokenizerCase(
                text: reference.text, ids: ids, firstIDs: reference.firstIDs, lengths: reference.lengths,
                spieceIDs: nil, byteFallbackIDs: reference.byteFallbackIDs)
            let expected = fixture.expected(reference, lengthIndex: index)
            let padded = try tokenizer.encode(testCase.text, maxLength: maxLength)
            #expect(padded == expected, "\(label) \(testCase.text.debugDescription) at max length \(maxLength)")
        }
    }
    #expect(mismatches == 0, "\(label): \(mismatches) of \(fixture.cases.count) prompts differ")
}

@Suite("T5 tokenizer")
struct T5TokenizerTests {
    @Test("tokenizer.json: every recorded prompt at max lengths 77, 256 and 512")
    func tokenizerJSONReferenceCases() throws {
        let tokenizer = try T5Tokenizer(folder: tokenizerFolder())
        try expectReferenceIDs(tokenizer, label: "tokenizer.json") { $0.ids }
    }

    @Test("spiece.model alone: every recorded prompt")
    func sentencePieceReferenceCases() throws {
        let url = try folder(copying: ["spiece.model"])
        defer { try? FileManager.default.removeItem(at: url) }
        let tokenizer = try T5Tokenizer(folder: url)
        try expectReferenceIDs(tokenizer, label: "spiece.model") { $0.spieceIDs ?? $0.ids }
    }

    @Test("spiece.model with the configuration files: every recorded prompt")
    func sentencePieceWithConfigurationReferenceCases() throws {
        let url = try folder(copying: ["spiece.model", "tokenizer_config.json", "special_tokens_map.json"])
        defer { try? FileManager.default.removeItem(at: url) }
        let tokenizer = try T5Tokenizer(folder: url)
        #expect(tokenizer.addedTokens.first { $0.content == "<extra_id_0>" }?.leftStrip == true)
        try expectReferenceIDs(tokenizer, label: "spiece.model + config") { $0.ids }
    }

    @Test("prepend scheme \"first\" (legacy=False conversion): every recorded prompt")
    func prependFirstReferenceCases() throws {
        // Edited as text: rewriting the file through JSONSerialization would round the scores.
        let url = try folder(copying: [])
        var text = try String(
            contentsOf: tokenizerFolder().appendingPathComponent("tokenizer.json"), encoding: .utf8)
        let preTokenizer = try #require(text.range(of: "\"pre_tokenizer\""))
        let scheme = try #require(text.range(of: "\"prepend_scheme\": \"always\"", range: preTokenizer.upperBound..<text.endIndex))
        text.replaceSubrange(scheme, with: "\"prepend_scheme\": \"first\"")
        try text.write(to: url.appendingPathComponent("tokenizer.json"), atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        let tokenizer = try T5Tokenizer(folder: url)
        guard case .metaspace(_, let scheme, _)? = tokenizer.preTokenizer else {
            Issue.record("expected a Metaspace pre-tokenizer, found \(String(describing: tokenizer.preTokenizer))")
            return
        }
        #expect(scheme == .first)
        let fixture = try t5Fixture.get()
        #expect(fixture.cases.contains { $0.firstIDs != $0.ids }, "the fixture must exercise the difference")
        for testCase in fixture.cases {
            #expect(tokenizer.encode(testCase.text) == testCase.firstIDs, "\(testCase.text.debugDescription)")
        }
    }

    @Test("spiece.model with \"legacy\": false converts with prepend scheme \"first\"")
    func sentencePieceLegacyFalse() throws {
        let url = try folder(copying: ["spiece.model", "special_tokens_map.json"])
        defer { try? FileManager.default.removeItem(at: url) }
        let config = try String(
            contentsOf: tokenizerFolder().appendingPathComponent("tokenizer_config.json"), encoding: .utf8)
        try #require(config.contains("\"legacy\": true"))
        try config.replacingOccurrences(of: "\"legacy\": true", with: "\"legacy\": false")
            .write(to: url.appendingPathComponent("tokenizer_config.json"), atomically: true, encoding: .utf8)
        let tokenizer = try T5Tokenizer(folder: url)
        for testCase in try t5Fixture.get().cases {
            #expect(tokenizer.encode(testCase.text) == testCase.firstIDs, "\(testCase.text.debugDescription)")
        }
    }

    @Test("byte fallback, NFKC, Lowercase, WhitespaceSplit and a two-sided template: every recorded prompt")
    func byteFallbackReferenceCases() throws {
        let tokenizer = try T5Tokenizer(folder: t5FixtureURL().appendingPathComponent("byte_fallback"))
        #expect(tokenizer.model.byteFallback)
        #expect(tokenizer.prefixIDs == [0] && tokenizer.suffixIDs == [1])
        let fixture = try t5Fixture.get()
        for testCase in fixture.cases {
            // "㈱ ㊤ ㋿" included: tokenizers' NFKC tables predate U+32FF (Unicode 12.1) and keep it,
            // and so does Kiln's NFKC with the library's Unicode version.
            #expect(tokenizer.encode(testCase.text) == testCase.byteFallbackIDs, "\(testCase.text.debugDescription)")
        }
        let truncated = try tokenizer.encode("a photo of a cat", maxLength: 4)
        #expect(truncated.ids.first == 0 && truncated.ids.last == 1 && truncated.ids.count == 4)
    }

    @Test("both loaders read the same vocabulary, special tokens and sentinels")
    func loadersAgreeOnStructure() throws {
        let fromJSON = try T5Tokenizer(folder: tokenizerFolder())
        let url = try folder(copying: ["spiece.model"])
        defer { try? FileManager.default.removeItem(at: url) }
        let fromModel = try T5Tokenizer(folder: url)
        for tokenizer in [fromJSON, fromModel] {
            #expect(tokenizer.model.pieces.count == 3100)
            #expect(tokenizer.model.unknownID == 2)
            #expect(tokenizer.padID == 0)
            #expect(tokenizer.suffixIDs == [1])
            #expect(tokenizer.prefixIDs.isEmpty)
            #expect(tokenizer.model.id(of: "<extra_id_99>") == 3000)
            #expect(tokenizer.model.id(of: "<extra_id_0>") == 3099)
            #expect(tokenizer.encode("<extra_id_0>") == [3099, 1])
            #expect(tokenizer.encode("") == [1])
        }
        #expect(fromJSON.model.pieces.map(\.text) == fromModel.model.pieces.map(\.text))
        // tokenizer.json stores each float32 score widened to double; the protobuf holds the float.
        #expect(fromJSON.model.pieces.map(\.score) == fromModel.model.pieces.map(\.score))
        #expect(Set(fromJSON.addedTokens.map(\.content)) == Set(fromModel.addedTokens.map(\.content)))
        #expect(fromJSON.addedTokens.count == 103)
    }

    @Test("spiece.model fields")
    func sentencePieceModelFields() throws {
        let model = try SentencePieceModel(url: tokenizerFolder().appendingPathComponent("spiece.model"))
        #expect(model.pieces.count == 3000)
        #expect(model.modelType == 1)
        #expect(model.unknownID == 2)
        #expect(model.byteFallback == false)
        #expect(model.normalizerName == "nmt_nfkc")
        #expect(model.addDummyPrefix && model.removeExtraWhitespaces && model.escapeWhitespaces)
        #expect(model.precompiledCharsMap.count > 100_000)
        #expect(model.pieces[0] == .init(text: "<pad>", score: 0, type: .control))
        #expect(model.pieces[1] == .init(text: "</s>", score: 0, type: .control))
        #expect(model.pieces[2] == .init(text: "<unk>", score: 0, type: .unknown))
        #expect(model.pieces[3].type == .normal && model.pieces[3].score < 0)
    }

    @Test("the precompiled charsmap maps NFKC cases and leaves plain text alone")
    func precompiledCharsMap() throws {
        let model = try SentencePieceModel(url: tokenizerFolder().appendingPathComponent("spiece.model"))
        let map = try PrecompiledCharsMap(blob: model.precompiledCharsMap, source: "spiece.model")
        #expect(map.normalize("plain ascii text") == "plain ascii text")
        #expect(map.normalize("Ｆｕｌｌ１２３") == "Full123")
        #expect(map.normalize("ﬁ") == "fi")
        #expect(map.normalize("x²") == "x2")
        #expect(map.normalize("e\u{301}").unicodeScalars.elementsEqual("\u{e9}".unicodeScalars))
        // A short cluster whose first character is mapped is replaced whole by that mapping, so
        // the combining accent is lost (tokenizers does the same; NFKC would keep it).
        #expect(map.normalize("\u{FF21}\u{301}") == "A")
        // A cluster of 6 or more bytes is mapped character by character instead.
        #expect(map.normalize("\u{FF21}\u{301}\u{301}").unicodeScalars.elementsEqual("A\u{301}\u{301}".unicodeScalars))
    }

    @Test("padding and truncation keep </s> and fill with the pad id")
    func paddingAndTruncation() throws {
        let tokenizer = try T5Tokenizer(folder: tokenizerFolder())
        let long = Array(repeating: "word", count: 100).joined(separator: " ")
        let full = tokenizer.encode(long)
        #expect(full.count > 100 && full.last == 1)
        let truncated = try tokenizer.encode(long, maxLength: 10)
        #expect(truncated.ids == Array(full.prefix(9)) + [1])
        #expect(truncated.attentionMask == [Int32](repeating: 1, count: 10))
        let short = try tokenizer.encode("a cat", maxLength: 8)
        let unpadded = tokenizer.encode("a cat")
        #expect(short.ids == unpadded + [Int32](repeating: 0, count: 8 - unpadded.count))
        #expect(short.attentionMask.filter { $0 == 1 }.count == unpadded.count)
        #expect(try tokenizer.encode(long, maxLength: 1).ids == [1])
        #expect(throws: T5TokenizerError.maxLengthTooShort(maxLength: 0, specialTokenCount: 1)) {
            try tokenizer.encode("a cat", maxLength: 0)
        }
    }
}

@Suite("Unigram segmentation")
struct UnigramSegmentationTests {
    private func model(_ pieces: [(String, Double)], unknownID: Int? = 0, byteFallback: Bool = false) throws -> Unigram {
        try Unigram(pieces: pieces.map { (text: $0.0, score: $0.1) }, unknownID: unknownID, byteFallback: byteFallback, source: "test")
    }

    @Test("the highest-scoring segmentation wins")
    func bestPath() throws {
        let unigram = try model([("<unk>", 0), ("a", -1), ("b", -1), ("ab", -1.5), ("abc", -4), ("c", -2)])
        // ab + c = -3.5 beats abc = -4 and a + b + c = -4.
        #expect(unigram.ids(forWord: "abc") == [3, 5])
        #expect(unigram.ids(forWord: "ab") == [3])
        #expect(unigram.ids(forWord: "") == [])
    }

    @Test("on equal scores the path found first is kept")
    func ties() throws {
        // a + bc and ab + c both score -2; "bc" ends at 3 from start 1 after "ab" reached 2 from
        // start 0: at end 3 the candidate from start 1 (a + bc) arrives first.
        let unigram = try model([("<unk>", 0), ("a", -1), ("ab", -1), ("bc", -1), ("c", -1)])
        #expect(unigram.ids(forWord: "abc") == [1, 3])
    }

    @Test("unknown characters score lowest minus 10 and consecutive ones fuse")
    func unknownCharacters() throws {
        let unigram = try model([("<unk>", 0), ("a", -1), ("b", -2)])
        #expect(unigram.ids(forWord: "a☃☃b") == [1, 0, 2])
        #expect(unigram.ids(forWord: "☃a☃") == [0, 1, 0])
        let noUnknown = try model([("a", -1)], unknownID: nil)
        #expect(noUnknown.ids(forWord: "a") == [0])
    }

    @Test("byte fallback spells unknown text as <0xXX> tokens")
    func byteFallback() throws {
        var pieces: [(String, Double)] = [("<unk>", 0), ("a", -1)]
        for byte in 0..<256 {
            pieces.append((String(format: "<0x%02X>", byte), -5))
        }
        let unigram = try model(pieces, byteFallback: true)
        // "é" is C3 A9 in UTF-8.
        #expect(unigram.ids(forWord: "aé") == [1, 2 + 0xC3, 2 + 0xA9])
        let partial = try model([("<unk>", 0), ("a", -1), ("<0xC3>", -5)], byteFallback: true)
        #expect(partial.ids(forWord: "aé") == [1, 0])
    }

    @Test("an unknown id outside the vocabulary is rejected")
    func invalidUnknownID() throws {
        #expect(throws: T5TokenizerError.invalidUnknownID(source: "test", id: 5, count: 1)) {
            try Unigram(pieces: [(text: "a", score: -1)], unknownID: 5, byteFallback: false, source: "test")
        }
    }
}

@Suite("T5 tokenizer errors")
struct T5TokenizerErrorTests {
    @Test("a folder without tokenizer files")
    func emptyFolder() throws {
        let url = try folder(copying: [])
        defer { try? FileManager.default.removeItem(at: url) }
        #expect(throws: T5TokenizerError.noTokenizerFiles(folder: url.path)) { try T5Tokenizer(folder: url) }
    }

    @Test("tokenizer.json is preferred: a corrupt spiece.model beside it is not read")
    func prefersTokenizerJSON() throws {
        let url = try folder(copying: ["tokenizer.json"])
        defer { try? FileManager.default.removeItem(at: url) }
        try Data([0xFF, 0xFF, 0xFF]).write(to: url.appendingPathComponent("spiece.model"))
        let tokenizer = try T5Tokenizer(folder: url)
        #expect(tokenizer.encode("a photo of a cat") == (try t5Fixture.get().cases.first { $0.text == "a photo of a cat" }?.ids))
    }

    @Test("invalid JSON names the file")
    func invalidJSON() throws {
        let url = try folder(copying: [])
        defer { try? FileManager.default.removeItem(at: url) }
        let file = url.appendingPathComponent("tokenizer.json")
        try Data("{\"model\": ".utf8).write(to: file)
        let error = try #require(throws: T5TokenizerError.self) { try T5Tokenizer(folder: url) }
        guard case .malformedJSON(let path, _) = error else {
            Issue.record("expected malformedJSON, got \(error)")
            return
        }
        #expect(path == file.path)
        #expect(error.description.contains("tokenizer.json"))
    }

    @Test("a BPE model is reported as unsupported")
    func unsupportedModel() throws {
        let url = try folder { object in
            object["model"] = ["type": "BPE", "vocab": [:], "merges": []]
        }
        defer { try? FileManager.default.removeItem(at: url) }
        let path = url.appendingPathComponent("tokenizer.json").path
        #expect(throws: T5TokenizerError.unsupportedComponent(path: path, component: "model", type: "BPE")) {
            try T5Tokenizer(folder: url)
        }
    }

    @Test("an unknown normalizer type names its place in the file")
    func unsupportedNormalizer() throws {
        let url = try folder { object in
            object["normalizer"] = ["type": "Sequence", "normalizers": [["type": "Foo"]]]
        }
        defer { try? FileManager.default.removeItem(at: url) }
        let path = url.appendingPathComponent("tokenizer.json").path
        #expect(throws: T5TokenizerError.unsupportedComponent(
            path: path, component: "normalizer.normalizers[0]", type: "Foo")) {
            try T5Tokenizer(folder: url)
        }
    }

    @Test("a malformed vocabulary entry names its index")
    func malformedVocabulary() throws {
        let url = try folder { object in
            guard var model = object["model"] as? [String: Any], var vocabulary = model["vocab"] as? [Any] else { return }
            vocabulary[7] = ["piece"]
            model["vocab"] = vocabulary
            object["model"] = model
        }
        defer { try? FileManager.default.removeItem(at: url) }
        let path = url.appendingPathComponent("tokenizer.json").path
        #expect(throws: T5TokenizerError.malformedField(path: path, field: "model.vocab[7]", reason: "expected [piece, score]")) {
            try T5Tokenizer(folder: url)
        }
    }

    @Test("a regex that does not compile is reported with its pattern")
    func invalidRegex() throws {
        let url = try folder { object in
            object["normalizer"] = ["type": "Replace", "pattern": ["Regex": "(unclosed"], "content": " "]
        }
        defer { try? FileManager.default.removeItem(at: url) }
        let error = try #require(throws: T5TokenizerError.self) { try T5Tokenizer(folder: url) }
        guard case .invalidRegex(let pattern, _) = error else {
            Issue.record("expected invalidRegex, got \(error)")
            return
        }
        #expect(pattern == "(unclosed")
    }

    @Test("a charsmap whose header overstates its trie")
    func malformedCharsMap() throws {
        let url = try folder { object in
            // Header says 0x100 trie bytes, only 4 follow.
            let blob = Data([0x00, 0x01, 0x00, 0x00, 1, 2, 3, 4])
            object["normalizer"] = ["type": "Precompiled", "precompiled_charsmap": blob.base64EncodedString()]
        }
        defer { try? FileManager.default.removeItem(at: url) }
        let error = try #require(throws: T5TokenizerError.self) { try T5Tokenizer(folder: url) }
        guard case .malformedCharsMap(let source, let reason) = error else {
            Issue.record("expected malformedCharsMap, got \(error)")
            return
        }
        #expect(source.hasSuffix("tokenizer.json"))
        #expect(reason.contains("256"))
    }

    @Test("a pad token missing from the vocabulary")
    func missingPadToken() throws {
        let jsonFolder = try folder(copying: ["tokenizer.json"])
        defer { try? FileManager.default.removeItem(at: jsonFolder) }
        try Data("{\"pad_token\": \"<nothing>\"}".utf8).write(to: jsonFolder.appendingPathComponent("special_tokens_map.json"))
        #expect(throws: T5TokenizerError.missingSpecialToken(
            source: jsonFolder.appendingPathComponent("tokenizer.json").path, token: "<nothing>")) {
            try T5Tokenizer(folder: jsonFolder)
        }
    }

    @Test("a truncated spiece.model names the byte offset")
    func truncatedSentencePieceModel() throws {
        let original = try Data(contentsOf: tokenizerFolder().appendingPathComponent("spiece.model"))
        let url = try folder(copying: [])
        defer { try? FileManager.default.removeItem(at: url) }
        let file = url.appendingPathComponent("spiece.model")
        try original.prefix(original.count / 2).write(to: file)
        let error = try #require(throws: T5TokenizerError.self) { try T5Tokenizer(folder: url) }
        guard case .malformedSentencePieceModel(let path, let offset, let reason) = error else {
            Issue.record("expected malformedSentencePieceModel, got \(error)")
            return
        }
        #expect(path == file.path)
        #expect(offset > 0 && offset < original.count / 2)
        #expect(reason.contains("remain") || reason.contains("truncated"))
    }

    @Test("garbage and empty spiece.model files")
    func garbageSentencePieceModel() throws {
        #expect(throws: T5TokenizerError.malformedSentencePieceModel(
            path: "x.model", offset: 0, reason: "field 31 has unsupported wire type 7")) {
            try SentencePieceModel(bytes: [0xFF, 0x01], path: "x.model")
        }
        #expect(throws: T5TokenizerError.malformedSentencePieceModel(path: "x.model", offset: 0, reason: "no pieces")) {
            try SentencePieceModel(bytes: [], path: "x.model")
        }
        // Field 2 (trainer_spec) with model_type 2 (BPE) and one piece.
        let bpe: [UInt8] = [0x0A, 0x03, 0x0A, 0x01, 0x61, 0x12, 0x02, 0x18, 0x02]
        let model = try SentencePieceModel(bytes: bpe, path: "x.model")
        #expect(model.modelType == 2)
        #expect(throws: T5TokenizerError.malformedSentencePieceModel(
            path: "x.model", offset: 0, reason: "model_type 2 is not Unigram (1)")) {
            try T5Tokenizer(sentencePieceModel: model, source: "x.model")
        }
    }

    @Test("an unreadable file names its path")
    func unreadableFile() throws {
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-no-such-\(UUID().uuidString).model")
        #expect(throws: T5TokenizerError.unreadableFile(path: missing.path, reason: "no such file")) {
            try SentencePieceModel(url: missing)
        }
    }
}
