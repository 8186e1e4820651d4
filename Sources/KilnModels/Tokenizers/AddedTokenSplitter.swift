/// A token matched as a whole in the input text before normalization and segmentation, as in
/// Hugging Face tokenizers' added vocabulary (T5's `<pad>`, `</s>`, `<unk>` and
/// `<extra_id_N>`).
public struct AddedToken: Sendable, Equatable {
    /// The literal text.
    public var content: String
    /// Its id.
    public var id: Int
    /// Matches only where it is not inside a word (no word character directly before or after).
    public var singleWord: Bool
    /// The match also takes the whitespace directly before it.
    public var leftStrip: Bool
    /// The match also takes the whitespace directly after it.
    public var rightStrip: Bool
    /// Matched in the normalized text rather than in the raw input.
    public var normalized: Bool

    /// Creates an added token; the defaults are those of T5's special tokens.
    public init(
        content: String, id: Int, singleWord: Bool = false, leftStrip: Bool = false,
        rightStrip: Bool = false, normalized: Bool = false
    ) {
        self.content = content
        self.id = id
        self.singleWord = singleWord
        self.leftStrip = leftStrip
        self.rightStrip = rightStrip
        self.normalized = normalized
    }
}

/// Cuts text at added tokens: leftmost match first, the longest token at that position, then
/// on after it (tokenizers' leftmost-longest Aho–Corasick search), on UTF-8 bytes.
struct AddedTokenSplitter: Sendable {
    /// A stretch of the text: either an added token's id or plain text.
    enum Segment: Equatable {
        case token(Int)
        case text(String, startsInput: Bool)
    }

    private let tokens: [AddedToken]
    private let trie: ByteTrie

    init(tokens: [AddedToken]) {
        self.tokens = tokens
        var trie = ByteTrie()
        for (index, token) in tokens.enumerated() {
            trie.insert(Array(token.content.utf8), value: index)
        }
        self.trie = trie
    }

    var isEmpty: Bool { tokens.isEmpty }

    /// The segments of `text`, in order; empty text segments are dropped. `startsInput` tells
    /// whether `text` itself begins the input, and is passed on to a first text segment.
    func split(_ text: String, startsInput: Bool) -> [Segment] {
        guard !tokens.isEmpty else { return text.isEmpty ? [] : [.text(text, startsInput: startsInput)] }
        let bytes = Array(text.utf8)
        var segments: [Segment] = []
        var textStart = 0
        var position = 0
        func appendText(upTo end: Int) {
            if textStart < end {
                let piece = String(decoding: bytes[textStart..<end], as: UTF8.self)
                segments.append(.text(piece, startsInput: startsInput && textStart == 0))
            }
        }
        while position < bytes.count {
            guard let match = trie.longestPrefix(of: bytes, from: position) else {
                position += 1
                continue
            }
            let token = tokens[match.value]
            var start = position
            var end = position + match.length
            if token.singleWord,
               Self.endsWithWordCharacter(bytes[..<start]) || Self.startsWithWordCharacter(bytes[end...]) {
                // The search goes on after the rejected match, as tokenizers' match iterator does.
                position = end
                continue
            }
            if token.leftStrip {
                // Whitespace already consumed by the previous match stays with it.
                start = max(Self.startOfTrailingWhitespace(bytes[textStart..<start]), textStart)
            }
            if token.rightStrip {
                end = Self.endOfLeadingWhitespace(bytes[end...])
            }
            appendText(upTo: start)
            segments.append(.token(token.id))
            textStart = end
            position = end
        }
        appendText(upTo: bytes.count)
        return segments
    }

    private static func scalars(_ bytes: ArraySlice<UInt8>) -> String.UnicodeScalarView {
        String(decoding: bytes, as: UTF8.self).unicodeScalars
    }

    private static func endsWithWordCharacter(_ bytes: ArraySlice<UInt8>) -> Bool {
        scalars(bytes).last.map(TokenizerCharacterClass.isWordCharacter) ?? false
    }

    private static func startsWithWordCharacter(_ bytes: ArraySlice<UInt8>) -> Bool {
        scalars(bytes).first.map(TokenizerCharacterClass.isWordCharacter) ?? false
    }

    /// Byte index where the whitespace at the end of `bytes` begins.
    private static func startOfTrailingWhitespace(_ bytes: ArraySlice<UInt8>) -> Int {
        var index = bytes.endIndex
        for scalar in scalars(bytes).reversed() {
            guard scalar.properties.isWhitespace else { break }
            index -= String(scalar).utf8.count
        }
        return index
    }

    /// Byte index just past the whitespace at the start of `bytes`.
    private static func endOfLeadingWhitespace(_ bytes: ArraySlice<UInt8>) -> Int {
        var index = bytes.startIndex
        for scalar in scalars(bytes) {
            guard scalar.properties.isWhitespace else { break }
            index += String(scalar).utf8.count
        }
        return index
    }
}
