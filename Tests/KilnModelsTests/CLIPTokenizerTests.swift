import Foundation
import Testing

@testable import KilnModels

/// One reference case written by `Tests/Fixtures/generate_tokenizer_fixtures.py`.
private struct TokenizerCase: Decodable {
    let text: String
    let ids: [Int]
    let paddedIDs: [Int]
    let attentionMask: [Int]
    let bangIDs: [Int]
    let bangPaddedIDs: [Int]

    enum CodingKeys: String, CodingKey {
        case text, ids
        case paddedIDs = "padded_ids"
        case attentionMask = "attention_mask"
        case bangIDs = "bang_ids"
        case bangPaddedIDs = "bang_padded_ids"
    }
}

private struct TokenizerFixture: Decodable {
    let transformers: String
    let cases: [TokenizerCase]
}

private enum FixtureError: Error {
    case missingFixtures
}

private func clipFixtureURL() throws -> URL {
    guard let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
        throw FixtureError.missingFixtures
    }
    return root.appendingPathComponent("clip")
}

/// The committed CLIP merges, parsed once for the whole suite.
private let realMerges: Result<[(String, String)], any Error> = Result {
    try CLIPTokenizer.readMerges(at: clipFixtureURL().appendingPathComponent("merges.txt"))
}

private func realTokenizer(padToken: String = "<|endoftext|>") throws -> CLIPTokenizer {
    let merges = try realMerges.get()
    return try CLIPTokenizer(
        vocabulary: CLIPTokenizer.vocabulary(fromMerges: merges), merges: merges,
        configuration: .init(padToken: padToken))
}

private func temporaryFolder() throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("kiln-tokenizer-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite("CLIP tokenizer")
struct CLIPTokenizerTests {
    @Test("the vocabulary derived from the merges is CLIP's")
    func derivedVocabulary() throws {
        let merges = try realMerges.get()
        #expect(merges.count == 48_894)
        let vocabulary = CLIPTokenizer.vocabulary(fromMerges: merges)
        #expect(vocabulary.count == 49_408)
        #expect(Set(vocabulary.values) == Set(0..<49_408))
        #expect(vocabulary["<|startoftext|>"] == 49_406)
        #expect(vocabulary["<|endoftext|>"] == 49_407)
        #expect(vocabulary["!"] == 0)
        #expect(vocabulary["!</w>"] == 256)
        // Byte 0x20 (space) is the 33rd shifted byte symbol, U+0120.
        #expect(vocabulary["\u{0120}"] == 220)
        // Ids published independently of transformers (OpenAI CLIP / open_clip examples).
        #expect(vocabulary["a</w>"] == 320)
        #expect(vocabulary["photo</w>"] == 1125)
        #expect(vocabulary["of</w>"] == 539)
        #expect(vocabulary["cat</w>"] == 2368)
    }

    @Test("prompts with ids published outside transformers")
    func publishedPrompts() throws {
        let tokenizer = try realTokenizer()
        #expect(tokenizer.encode("a photo of a cat") == [49406, 320, 1125, 539, 320, 2368, 49407])
        #expect(tokenizer.encode("the black dog") == [49406, 518, 1449, 1929, 49407])
        #expect(
            tokenizer.encode("a photo of an astronaut riding a horse on mars")
                == [49406, 320, 1125, 539, 550, 18376, 6765, 320, 4558, 525, 7496, 49407])
    }

    @Test("every reference case from transformers matches exactly")
    func referenceCases() throws {
        let url = try clipFixtureURL().appendingPathComponent("token_ids.json")
        let fixture = try JSONDecoder().decode(TokenizerFixture.self, from: Data(contentsOf: url))
        try #require(fixture.cases.count >= 100, "token_ids.json has only \(fixture.cases.count) cases")
        let tokenizer = try realTokenizer()
        let bangTokenizer = try realTokenizer(padToken: "!")
        for testCase in fixture.cases {
            let text = testCase.text.debugDescription
            #expect(tokenizer.encode(testCase.text) == testCase.ids, "unpadded \(text)")
            let encoding = tokenizer.encoding(testCase.text)
            #expect(encoding.ids == testCase.paddedIDs, "padded \(text)")
            #expect(encoding.attentionMask == testCase.attentionMask, "attention mask \(text)")
            #expect(tokenizer.encode(testCase.text, padding: true, truncation: true) == testCase.paddedIDs)
            #expect(bangTokenizer.encode(testCase.text) == testCase.bangIDs, "pad '!' unpadded \(text)")
            #expect(bangTokenizer.encode(testCase.text, padding: true, truncation: true) == testCase.bangPaddedIDs,
                    "pad '!' padded \(text)")
        }
    }

    @Test("padding and truncation flags act independently")
    func paddingAndTruncationFlags() throws {
        let tokenizer = try realTokenizer()
        let long = Array(repeating: "cat", count: 100).joined(separator: " ")
        let full = tokenizer.encode(long)
        #expect(full.count == 102)
        #expect(tokenizer.encode(long, padding: true, truncation: false) == full)
        let truncated = tokenizer.encode(long, padding: false, truncation: true)
        #expect(truncated.count == 77)
        #expect(truncated.first == 49406 && truncated.last == 49407)
        #expect(tokenizer.encode("a cat", padding: false, truncation: true) == [49406, 320, 2368, 49407])
    }

    @Test("a folder with tokenizer_config.json picks up pad token and length")
    func loadFolder() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = try clipFixtureURL()
        try FileManager.default.copyItem(
            at: source.appendingPathComponent("merges.txt"), to: folder.appendingPathComponent("merges.txt"))
        let vocabulary = CLIPTokenizer.vocabulary(fromMerges: try realMerges.get())
        try JSONEncoder().encode(vocabulary).write(to: folder.appendingPathComponent("vocab.json"))
        let config = """
            {"model_max_length": 16, "pad_token": {"__type": "AddedToken", "content": "<|endoftext|>"},
             "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
            """
        try Data(config.utf8).write(to: folder.appendingPathComponent("tokenizer_config.json"))
        let map = #"{"pad_token": "!"}"#
        try Data(map.utf8).write(to: folder.appendingPathComponent("special_tokens_map.json"))

        let tokenizer = try CLIPTokenizer.load(folder: folder)
        #expect(tokenizer.configuration.modelMaxLength == 16)
        #expect(tokenizer.configuration.padToken == "!")
        #expect(tokenizer.padTokenID == 0)
        let encoding = tokenizer.encoding("a photo of a cat")
        #expect(encoding.ids == [49406, 320, 1125, 539, 320, 2368, 49407] + Array(repeating: 0, count: 9))
        #expect(encoding.attentionMask == Array(repeating: 1, count: 7) + Array(repeating: 0, count: 9))
    }

    @Test("a malformed merges line is reported with its line number")
    func malformedMerges() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("merges.txt")
        try Data("#version: 0.2\ni n\nt h e\n".utf8).write(to: url)
        #expect(throws: CLIPTokenizerError.malformedMerges(
            path: url.path, line: 3, expected: "two symbols separated by a space", found: "t h e")
        ) {
            try CLIPTokenizer.readMerges(at: url)
        }
        try Data("i n\nt h\n".utf8).write(to: url)
        #expect(throws: CLIPTokenizerError.malformedMerges(
            path: url.path, line: 1, expected: "a '#version: 0.2' header", found: "i n")
        ) {
            try CLIPTokenizer.readMerges(at: url)
        }
    }

    @Test("a missing vocab file names its path")
    func missingVocabulary() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let vocabularyURL = folder.appendingPathComponent("vocab.json")
        let mergesURL = try clipFixtureURL().appendingPathComponent("merges.txt")
        #expect(throws: CLIPTokenizerError.unreadableFile(path: vocabularyURL.path, reason: "no such file")) {
            try CLIPTokenizer(vocabularyURL: vocabularyURL, mergesURL: mergesURL)
        }
        try Data("[1, 2]".utf8).write(to: vocabularyURL)
        let error = #expect(throws: CLIPTokenizerError.self) {
            try CLIPTokenizer(vocabularyURL: vocabularyURL, mergesURL: mergesURL)
        }
        #expect(error?.description.contains(vocabularyURL.path) == true)
    }

    @Test("a vocabulary without the special tokens is rejected")
    func missingSpecialToken() {
        #expect(throws: CLIPTokenizerError.missingSpecialToken("<|startoftext|>")) {
            try CLIPTokenizer(vocabulary: ["a</w>": 0], merges: [])
        }
    }
}
