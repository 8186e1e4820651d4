import Foundation
import Testing

@testable import KilnModels

/// `tokenizer_components/unicode_classes.json`: what tokenizers 0.22.2 does with every scalar.
private struct UnicodeClassFixture {
    /// Probe name → the scalars for which it holds, as sorted ranges.
    let classes: [String: [ClosedRange<UInt32>]]
    /// Scalar → Lowercase's output, for every scalar it changes.
    let lowercase: [UInt32: [UInt32]]

    init() throws {
        guard let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
            throw CocoaError(.fileNoSuchFile)
        }
        let url = root.appendingPathComponent("tokenizer_components/unicode_classes.json")
        let object = try TokenizerFile.object(at: url)
        let classObject = try #require(object["classes"] as? [String: Any])
        var classes: [String: [ClosedRange<UInt32>]] = [:]
        for (name, value) in classObject {
            let text = try #require(value as? String)
            classes[name] = try text.split(separator: " ").map { range in
                let bounds = try range.split(separator: "-").map { try #require(UInt32($0, radix: 16)) }
                return bounds[0]...bounds[bounds.count - 1]
            }
        }
        self.classes = classes
        var lowercase: [UInt32: [UInt32]] = [:]
        for entry in try #require(object["lowercase"] as? String).split(separator: " ") {
            let parts = entry.split(separator: ":")
            let source = try #require(UInt32(parts[0], radix: 16))
            lowercase[source] = try parts[1].split(separator: ",").map { try #require(UInt32($0, radix: 16)) }
        }
        self.lowercase = lowercase
    }
}

/// Every Unicode scalar, surrogates excepted.
private let allScalars: [Unicode.Scalar] = (UInt32(0)...0x10FFFF).compactMap(Unicode.Scalar.init)

@Suite("tokenizers' character classes on every scalar")
struct TokenizerCharacterClassTests {
    private typealias Classes = TokenizerCharacterClass

    private static func bertCleanRemoves(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value == 0 || scalar.value == 0xFFFD || Classes.isBertControl(scalar)
    }

    /// Each probe of the fixture with the test Kiln's components make for it.
    private static let predicates: [String: @Sendable (Unicode.Scalar) -> Bool] = [
        "WhitespaceSplit splits on it": Classes.isWhitespace,
        "Digits isolates it": Classes.isNumeric,
        "Punctuation isolates it": Classes.isPunctuation,
        "Whitespace keeps it in a word": Classes.isWordCharacter,
        "ByteLevel takes it as a letter": Classes.isLetter,
        "ByteLevel takes it as a number": Classes.isNumber,
        "ByteLevel takes it as other": {
            !Classes.isPatternWhitespace($0) && !Classes.isLetter($0) && !Classes.isNumber($0)
        },
        "BertNormalizer clean_text removes it": bertCleanRemoves,
        "BertNormalizer clean_text spaces it": { $0 != " " && !bertCleanRemoves($0) && Classes.isBertWhitespace($0) },
        "BertNormalizer spaces it as Chinese": Classes.isChineseCharacter,
        // A non-spacing mark, or (checked below) a scalar that decomposes into them.
        "BertNormalizer strip_accents removes it": Classes.isNonspacingMark,
        "StripAccents removes it": Classes.isCombiningMark,
        "Nmt removes it": { !TokenizerNormalizer.isKeptByNmt($0) },
        "Nmt spaces it": { $0 != " " && TokenizerNormalizer.isKeptByNmt($0) && TokenizerNormalizer.isSpaceToNmt($0) },
    ]

    @Test("every character class agrees with tokenizers on every scalar")
    func classes() throws {
        let fixture = try UnicodeClassFixture()
        #expect(Set(fixture.classes.keys) == Set(Self.predicates.keys))
        let stripAccents = TokenizerNormalizer.bert(
            .init(cleanText: false, handleChineseCharacters: false, stripAccents: true, lowercase: false))
        for (name, ranges) in fixture.classes.sorted(by: { $0.key < $1.key }) {
            let predicate = try #require(Self.predicates[name])
            var rangeIndex = 0
            var mismatches: [UInt32] = []
            for scalar in allScalars {
                while rangeIndex < ranges.count, ranges[rangeIndex].upperBound < scalar.value { rangeIndex += 1 }
                let expected = rangeIndex < ranges.count && ranges[rangeIndex].contains(scalar.value)
                guard predicate(scalar) != expected else { continue }
                if name == "BertNormalizer strip_accents removes it",
                   stripAccents.normalize(String(scalar)).isEmpty == expected {
                    continue
                }
                mismatches.append(scalar.value)
            }
            let shown = mismatches.prefix(20).map { String($0, radix: 16, uppercase: true) }
            #expect(mismatches.isEmpty, "\(name): \(mismatches.count) scalars differ, first \(shown)")
        }
    }

    @Test("Lowercase agrees with tokenizers on every scalar")
    func lowercase() throws {
        let fixture = try UnicodeClassFixture()
        try #require(fixture.lowercase.count > 1_000)
        var mismatches: [UInt32] = []
        for scalar in allScalars {
            let expected = fixture.lowercase[scalar.value] ?? [scalar.value]
            if Classes.lowercased(scalar).map(\.value) != expected { mismatches.append(scalar.value) }
        }
        let shown = mismatches.prefix(20).map { String($0, radix: 16, uppercase: true) }
        #expect(mismatches.isEmpty, "\(mismatches.count) scalars differ, first \(shown)")
    }
}
