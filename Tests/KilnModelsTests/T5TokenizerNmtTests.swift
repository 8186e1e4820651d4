import Foundation
import Testing

@testable import KilnModels

/// One prompt of `tokenizer_components/t5_nmt_ids.json`.
private struct NmtCase: Decodable {
    let text: String
    /// `T5TokenizerFast(text).input_ids` of the `t5_nmt` folder.
    let ids: [Int32]
    /// The same with the Metaspace prepend scheme "first".
    let firstIDs: [Int32]

    enum CodingKeys: String, CodingKey {
        case text, ids
        case firstIDs = "first_ids"
    }
}

private struct NmtFixture: Decodable {
    let cases: [NmtCase]
}

private enum NmtFixtureError: Error {
    case missingFixtures
}

private func componentsFolder() throws -> URL {
    guard let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
        throw NmtFixtureError.missingFixtures
    }
    return root.appendingPathComponent("tokenizer_components")
}

private func nmtFolder() throws -> URL {
    try componentsFolder().appendingPathComponent("t5_nmt")
}

private let nmtFixture: Result<NmtFixture, any Error> = Result {
    let url = try componentsFolder().appendingPathComponent("t5_nmt_ids.json")
    return try JSONDecoder().decode(NmtFixture.self, from: Data(contentsOf: url))
}

/// A fresh folder with the `t5_nmt` tokenizer.json, its text changed by `edit`. Edited as text:
/// rewriting it through JSONSerialization would round the scores.
private func editedNmtFolder(_ edit: (inout String) throws -> Void) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-t5-nmt-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    var text = try String(contentsOf: nmtFolder().appendingPathComponent("tokenizer.json"), encoding: .utf8)
    try edit(&text)
    try text.write(to: url.appendingPathComponent("tokenizer.json"), atomically: true, encoding: .utf8)
    return url
}

/// Replaces the one occurrence of `target` after `anchor`.
private func replace(_ target: String, with replacement: String, after anchor: String, in text: inout String) throws {
    let start = try #require(text.range(of: anchor))
    let range = try #require(text.range(of: target, range: start.upperBound..<text.endIndex))
    text.replaceSubrange(range, with: replacement)
}

@Suite("T5 tokenizer.json with tokenizers' SentencePiece normalizer (Nmt, NFKC, Replace)")
struct T5TokenizerNmtTests {
    @Test("the folder loads with the Nmt + NFKC + Replace normalizer and the Metaspace pre-tokenizer")
    func structure() throws {
        let tokenizer = try T5Tokenizer(folder: nmtFolder())
        guard case .sequence(let steps)? = tokenizer.normalizer, steps.count == 3,
              case .nmt = steps[0], case .nfkc = steps[1],
              case .replace(.regex(let regex), let content) = steps[2] else {
            Issue.record("unexpected normalizer \(String(describing: tokenizer.normalizer))")
            return
        }
        #expect(regex.pattern == " {2,}" && content == " ")
        guard case .metaspace(let replacement, let scheme, let split)? = tokenizer.preTokenizer else {
            Issue.record("unexpected pre-tokenizer \(String(describing: tokenizer.preTokenizer))")
            return
        }
        #expect(replacement == "\u{2581}" && scheme == .always && split)
        #expect(tokenizer.model.pieces.count == 3100 && tokenizer.suffixIDs == [1] && tokenizer.padID == 0)
    }

    @Test("ids equal T5TokenizerFast's on every recorded text")
    func referenceIDs() throws {
        let tokenizer = try T5Tokenizer(folder: nmtFolder())
        let cases = try nmtFixture.get().cases
        try #require(cases.count >= 250)
        var matched = 0
        for testCase in cases {
            let ids = tokenizer.encode(testCase.text)
            if ids == testCase.ids {
                matched += 1
            } else {
                Issue.record("\(testCase.text.debugDescription): \(ids) != \(testCase.ids)")
            }
        }
        #expect(matched == cases.count, "\(matched) of \(cases.count) texts id-exact")
        // Long texts are covered, and padding works on this tokenizer as on the others.
        #expect(cases.contains { $0.ids.count > 512 })
        let longest = try #require(cases.max { $0.ids.count < $1.ids.count })
        let padded = try tokenizer.encode(longest.text, maxLength: 77)
        #expect(padded.ids == Array(longest.ids.prefix(76)) + [1])
    }

    @Test("prepend scheme \"first\": ids equal T5TokenizerFast's on every recorded text")
    func firstSchemeIDs() throws {
        let url = try editedNmtFolder {
            try replace("\"prepend_scheme\": \"always\"", with: "\"prepend_scheme\": \"first\"", after: "\"pre_tokenizer\"", in: &$0)
        }
        defer { try? FileManager.default.removeItem(at: url) }
        let tokenizer = try T5Tokenizer(folder: url)
        let cases = try nmtFixture.get().cases
        #expect(cases.contains { $0.firstIDs != $0.ids }, "the fixture must exercise the difference")
        var matched = 0
        for testCase in cases {
            let ids = tokenizer.encode(testCase.text)
            if ids == testCase.firstIDs {
                matched += 1
            } else {
                Issue.record("\(testCase.text.debugDescription): \(ids) != \(testCase.firstIDs)")
            }
        }
        #expect(matched == cases.count, "\(matched) of \(cases.count) texts id-exact")
    }

    @Test("an unknown normalizer type is an error naming its place in the file")
    func unknownNormalizer() throws {
        let url = try editedNmtFolder {
            try replace("\"type\": \"Nmt\"", with: "\"type\": \"Foo\"", after: "\"normalizer\"", in: &$0)
        }
        defer { try? FileManager.default.removeItem(at: url) }
        let path = url.appendingPathComponent("tokenizer.json").path
        let error = try #require(throws: T5TokenizerError.self) { try T5Tokenizer(folder: url) }
        #expect(error == .unsupportedComponent(path: path, component: "normalizer.normalizers[0]", type: "Foo"))
        #expect(error.description.hasSuffix("normalizer.normalizers[0] type \"Foo\" is not supported"))
    }

    @Test("an unknown pre-tokenizer type is an error naming its place in the file")
    func unknownPreTokenizer() throws {
        let url = try editedNmtFolder {
            try replace(
                "\"type\": \"Metaspace\"",
                with: "\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"WhitespaceSplit\"}, {\"type\": \"UnicodeScripts\"}]",
                after: "\"pre_tokenizer\"", in: &$0)
        }
        defer { try? FileManager.default.removeItem(at: url) }
        let error = try #require(throws: T5TokenizerError.self) { try T5Tokenizer(folder: url) }
        #expect(error.description.hasSuffix("pre_tokenizer.pretokenizers[1] type \"UnicodeScripts\" is not supported"))
    }

    @Test("malformed component fields name the field and what was expected")
    func malformedFields() throws {
        let cases: [(target: String, replacement: String, anchor: String, message: String)] = [
            ("\"split\": true", "\"split\": \"yes\"", "\"pre_tokenizer\"", "pre_tokenizer.split: expected true or false"),
            ("\"replacement\": \"\u{2581}\"", "\"replacement\": \"ab\"", "\"pre_tokenizer\"",
             "pre_tokenizer.replacement: expected one character, found \"ab\""),
            ("\"Regex\": \" {2,}\"", "\"Glob\": \" {2,}\"", "\"normalizer\"",
             "normalizer.normalizers[2].pattern: expected {\"String\": …} or {\"Regex\": …}"),
            ("\"prepend_scheme\": \"always\"", "\"prepend_scheme\": \"sometimes\"", "\"pre_tokenizer\"",
             "pre_tokenizer.prepend_scheme: expected always, first or never, found \"sometimes\""),
        ]
        for testCase in cases {
            let url = try editedNmtFolder { try replace(testCase.target, with: testCase.replacement, after: testCase.anchor, in: &$0) }
            defer { try? FileManager.default.removeItem(at: url) }
            let error = try #require(throws: T5TokenizerError.self) { try T5Tokenizer(folder: url) }
            #expect(error.description.hasSuffix(testCase.message), "\(error)")
        }
    }
}
