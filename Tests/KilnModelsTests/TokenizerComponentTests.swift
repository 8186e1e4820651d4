import Foundation
import Testing

@testable import KilnModels

/// The fixtures of `Tests/Fixtures/generate_tokenizer_normalizer_fixtures.py`.
private enum ComponentFixtureError: Error, CustomStringConvertible {
    case missingFixtures
    case malformed(String)

    var description: String {
        switch self {
        case .missingFixtures: "the Fixtures resource folder is missing"
        case .malformed(let what): "components.json: \(what)"
        }
    }
}

private func componentsFolder() throws -> URL {
    guard let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
        throw ComponentFixtureError.missingFixtures
    }
    return root.appendingPathComponent("tokenizer_components")
}

/// One recorded component: its `tokenizer.json` object and what tokenizers made of each text.
private struct RecordedComponent {
    let name: String
    let json: Any
    let outputs: [Any]
}

/// `components.json`, read with the same JSON parser as `tokenizer.json`.
private struct ComponentFixture {
    let url: URL
    let texts: [String]
    let normalizers: [RecordedComponent]
    let preTokenizers: [RecordedComponent]
    /// Name, normalizer object (or nil), pre-tokenizer object (or nil), words per text.
    let pipelines: [(name: String, normalizer: Any?, preTokenizer: Any?, pieces: [[String]])]

    init() throws {
        url = try componentsFolder().appendingPathComponent("components.json")
        let root = try TokenizerFile.object(at: url)
        guard let texts = root["texts"] as? [String] else { throw ComponentFixtureError.malformed("texts") }
        self.texts = texts
        func components(_ key: String) throws -> [RecordedComponent] {
            guard let entries = root[key] as? [[String: Any]] else { throw ComponentFixtureError.malformed(key) }
            return try entries.map { entry in
                guard let name = entry["name"] as? String, let json = entry["json"],
                      let outputs = entry["outputs"] as? [Any], outputs.count == texts.count else {
                    throw ComponentFixtureError.malformed("an entry of \(key)")
                }
                return RecordedComponent(name: name, json: json, outputs: outputs)
            }
        }
        normalizers = try components("normalizers")
        preTokenizers = try components("pre_tokenizers")
        guard let pipelineEntries = root["pipelines"] as? [[String: Any]] else {
            throw ComponentFixtureError.malformed("pipelines")
        }
        pipelines = try pipelineEntries.map { entry in
            guard let name = entry["name"] as? String, let pieces = entry["pieces"] as? [[String]],
                  pieces.count == texts.count else {
                throw ComponentFixtureError.malformed("a pipeline entry")
            }
            return (name, TokenizerFile.nonNull(entry["normalizer"]), TokenizerFile.nonNull(entry["pre_tokenizer"]), pieces)
        }
    }
}


/// Scalar-exact comparison: Swift's `==` on strings equates canonically equivalent text.
private func sameScalars(_ left: String, _ right: String) -> Bool {
    left.unicodeScalars.elementsEqual(right.unicodeScalars)
}

private func sameScalars(_ left: [String], _ right: [String]) -> Bool {
    left.count == right.count && zip(left, right).allSatisfy(sameScalars)
}

/// Whether Swift's `Regex` and Oniguruma may see different line starts for this component and
/// text: the component has a pattern with `^`, which Oniguruma matches only after `\n` and Swift
/// also after the other line ends (see ``CheckedRegex``).
private func differsInLineStarts(_ components: [Any?], _ text: String) -> Bool {
    func patterns(_ value: Any?) -> [String] {
        if let object = value as? [String: Any] {
            return object.flatMap { key, nested in
                key == "Regex" ? [nested as? String].compactMap { $0 } : patterns(nested)
            }
        }
        if let array = value as? [Any] { return array.flatMap(patterns) }
        return []
    }
    guard patterns(components).contains(where: { $0.contains("^") }) else { return false }
    let scalars = Array(text.unicodeScalars)
    return scalars.indices.contains { index in
        switch scalars[index] {
        case "\u{0B}", "\u{0C}", "\u{85}", "\u{2028}", "\u{2029}": true
        case "\r": index + 1 == scalars.count || scalars[index + 1] != "\n"
        default: false
        }
    }
}

/// How a text is shown in a failure: escaped, and cut short when long.
private func shown(_ text: String) -> String {
    let escaped = text.unicodeScalars.count > 80
        ? String(String.UnicodeScalarView(text.unicodeScalars.prefix(80))) + "…" : text
    return escaped.debugDescription
}

@Suite("tokenizer.json normalizers and pre-tokenizers against tokenizers 0.22.2")
struct TokenizerComponentTests {
    @Test("every normalizer gives tokenizers' normalize_str output on every text")
    func normalizers() throws {
        let fixture = try ComponentFixture()
        let file = TokenizerFile.Fields(path: fixture.url.path)
        try #require(fixture.normalizers.count >= 30 && fixture.texts.count >= 90)
        var compared = 0
        var lineStartCases = 0
        for (index, component) in fixture.normalizers.enumerated() {
            let normalizer = try TokenizerNormalizer(json: component.json, field: "normalizers[\(index)].json", in: file)
            var mismatches = 0
            for (text, output) in zip(fixture.texts, component.outputs) {
                let expected = try #require(output as? String)
                let normalized = normalizer.normalize(text)
                compared += 1
                if !sameScalars(normalized, expected), differsInLineStarts([component.json], text) {
                    lineStartCases += 1
                } else if !sameScalars(normalized, expected) {
                    mismatches += 1
                    Issue.record("\(component.name) \(shown(text)): \(shown(normalized)) != \(shown(expected))")
                }
            }
            #expect(mismatches == 0, "\(component.name): \(mismatches) of \(fixture.texts.count) texts differ")
        }
        #expect(compared == fixture.normalizers.count * fixture.texts.count)
        #expect(lineStartCases == 1, "known line-start differences: \(lineStartCases)")
    }

    @Test("every pre-tokenizer gives tokenizers' pre_tokenize_str pieces on every text")
    func preTokenizers() throws {
        let fixture = try ComponentFixture()
        let file = TokenizerFile.Fields(path: fixture.url.path)
        try #require(fixture.preTokenizers.count >= 40)
        var lineStartCases = 0
        for (index, component) in fixture.preTokenizers.enumerated() {
            let preTokenizer = try PreTokenizer(json: component.json, field: "pre_tokenizers[\(index)].json", in: file)
            var mismatches = 0
            for (text, output) in zip(fixture.texts, component.outputs) {
                let expected = try #require(output as? [String])
                let pieces = preTokenizer.split(text)
                if !sameScalars(pieces, expected), differsInLineStarts([component.json], text) {
                    lineStartCases += 1
                } else if !sameScalars(pieces, expected) {
                    mismatches += 1
                    Issue.record("\(component.name) \(shown(text)): \(pieces.map(shown)) != \(expected.map(shown))")
                }
            }
            #expect(mismatches == 0, "\(component.name): \(mismatches) of \(fixture.texts.count) texts differ")
        }
        #expect(lineStartCases == 3, "known line-start differences: \(lineStartCases)")
    }

    @Test("normalizer then pre-tokenizer hand the model tokenizers' words (Metaspace \"first\" included)")
    func pipelines() throws {
        let fixture = try ComponentFixture()
        let file = TokenizerFile.Fields(path: fixture.url.path)
        try #require(fixture.pipelines.count >= 10)
        let model = try Unigram(pieces: [(text: "<pad>", score: 0)], unknownID: 0, byteFallback: false, source: "test")
        var lineStartCases = 0
        for (index, pipeline) in fixture.pipelines.enumerated() {
            let normalizer = try pipeline.normalizer.map {
                try TokenizerNormalizer(json: $0, field: "pipelines[\(index)].normalizer", in: file)
            }
            let preTokenizer = try pipeline.preTokenizer.map {
                try PreTokenizer(json: $0, field: "pipelines[\(index)].pre_tokenizer", in: file)
            }
            let tokenizer = T5Tokenizer(
                model: model, normalizer: normalizer, preTokenizer: preTokenizer, addedTokens: [],
                prefixIDs: [], suffixIDs: [], padID: 0)
            var mismatches = 0
            for (text, expected) in zip(fixture.texts, pipeline.pieces) {
                let words = tokenizer.segments(of: text).compactMap { segment -> String? in
                    if case .word(let word) = segment { return word.text }
                    return nil
                }
                if !sameScalars(words, expected), differsInLineStarts([pipeline.normalizer, pipeline.preTokenizer], text) {
                    lineStartCases += 1
                } else if !sameScalars(words, expected) {
                    mismatches += 1
                    Issue.record("\(pipeline.name) \(shown(text)): \(words.map(shown)) != \(expected.map(shown))")
                }
            }
            #expect(mismatches == 0, "\(pipeline.name): \(mismatches) of \(fixture.texts.count) texts differ")
        }
        #expect(lineStartCases == 1, "known line-start differences: \(lineStartCases)")
    }

    @Test("the recorded components cover every normalizer and pre-tokenizer type")
    func coverage() throws {
        let fixture = try ComponentFixture()
        func types(_ value: Any) -> [String] {
            guard let object = value as? [String: Any], let type = object["type"] as? String else { return [] }
            let nested = (object["normalizers"] as? [Any] ?? []) + (object["pretokenizers"] as? [Any] ?? [])
            return [type] + nested.flatMap(types)
        }
        let normalizerTypes = Set(fixture.normalizers.flatMap { types($0.json) })
        let preTokenizerTypes = Set(fixture.preTokenizers.flatMap { types($0.json) })
        #expect(normalizerTypes == [
            "NFC", "NFD", "NFKC", "NFKD", "Lowercase", "Strip", "StripAccents", "Replace", "Prepend",
            "Precompiled", "Nmt", "BertNormalizer", "ByteLevel", "Sequence",
        ])
        #expect(preTokenizerTypes == [
            "Metaspace", "WhitespaceSplit", "Whitespace", "Split", "Punctuation", "Digits", "ByteLevel",
            "Sequence", "BertPreTokenizer", "CharDelimiterSplit",
        ])
    }
}
