/// A SentencePiece Unigram language model segmenting words into pieces, id-exact with Hugging
/// Face tokenizers' `Unigram` model.
///
/// Each piece has a log-probability score; a word is cut into the sequence of vocabulary pieces
/// whose scores sum highest (Viterbi over the UTF-8 bytes, one step per character). A character
/// that begins no single-character piece may instead be covered by the unknown piece, scored
/// `lowest score − 10`; consecutive unknown characters are fused into one unknown token. With
/// byte fallback, an out-of-vocabulary piece becomes its `<0xXX>` byte tokens instead.
///
/// Reference: Kudo, "Subword Regularization: Improving Neural Network Translation Models with
/// Multiple Subword Candidates" (https://arxiv.org/abs/1804.10959).
public struct Unigram: Sendable {
    /// Pieces with their scores, indexed by id.
    public let pieces: [(text: String, score: Double)]
    /// Id of the unknown piece, if the model has one.
    public let unknownID: Int?
    /// Whether out-of-vocabulary pieces become `<0xXX>` byte tokens.
    public let byteFallback: Bool

    /// Penalty below the lowest piece score given to an unknown character.
    static let unknownPenalty = 10.0

    private let idsByPiece: [[UInt8]: Int]
    private let trie: ByteTrie
    private let unknownScore: Double

    /// Builds the model from its vocabulary (piece text and score, in id order).
    ///
    /// - Throws: ``T5TokenizerError/invalidUnknownID(source:id:count:)`` when `unknownID` is
    ///   outside the vocabulary.
    public init(pieces: [(text: String, score: Double)], unknownID: Int?, byteFallback: Bool, source: String) throws {
        if let unknownID, !pieces.indices.contains(unknownID) {
            throw T5TokenizerError.invalidUnknownID(source: source, id: unknownID, count: pieces.count)
        }
        self.pieces = pieces
        self.unknownID = unknownID
        self.byteFallback = byteFallback
        var idsByPiece: [[UInt8]: Int] = [:]
        idsByPiece.reserveCapacity(pieces.count)
        var trie = ByteTrie()
        var lowest = Double.infinity
        for (id, piece) in pieces.enumerated() {
            let bytes = Array(piece.text.utf8)
            // A repeated piece text maps to its last id, as in tokenizers.
            idsByPiece[bytes] = id
            trie.insert(bytes, value: id)
            lowest = min(lowest, piece.score)
        }
        self.idsByPiece = idsByPiece
        self.trie = trie
        self.unknownScore = (pieces.isEmpty ? 0 : lowest) - Self.unknownPenalty
    }

    /// The id of a piece text, if it is in the vocabulary.
    public func id(of piece: String) -> Int? {
        idsByPiece[Array(piece.utf8)]
    }

    /// Token ids of one pre-tokenized word.
    public func ids(forWord word: String) -> [Int] {
        let bytes = Array(word.utf8)
        var ids: [Int] = []
        for segment in segments(of: bytes) {
            let text = Array(bytes[segment])
            if let id = idsByPiece[text] {
                ids.append(id)
            } else if byteFallback, let byteIDs = byteTokenIDs(of: text) {
                ids += byteIDs
            } else if let unknownID {
                ids.append(unknownID)
            }
        }
        return ids
    }

    /// The best segmentation of `bytes` as byte ranges, unknown runs fused.
    ///
    /// Forward pass: `best[end]` holds the highest total score of a segmentation of
    /// `bytes[0..<end]` and the start of its last piece; a candidate replaces it only when
    /// strictly better, so among ties the piece found first (earlier start, then shorter) wins.
    private func segments(of bytes: [UInt8]) -> [Range<Int>] {
        guard !bytes.isEmpty else { return [] }
        var bestScore = [Double](repeating: 0, count: bytes.count + 1)
        var bestStart = [Int](repeating: -1, count: bytes.count + 1)
        var bestID = [Int](repeating: -1, count: bytes.count + 1)
        var start = 0
        while start < bytes.count {
            let scoreSoFar = bestScore[start]
            let characterLength = Self.utf8Length(leadByte: bytes[start], available: bytes.count - start)
            var hasSingleCharacterPiece = false
            trie.forEachPrefix(of: bytes, from: start) { length, id in
                let end = start + length
                let candidate = pieces[id].score + scoreSoFar
                if bestStart[end] < 0 || candidate > bestScore[end] {
                    bestScore[end] = candidate
                    bestStart[end] = start
                    bestID[end] = id
                }
                if length == characterLength {
                    hasSingleCharacterPiece = true
                }
            }
            if !hasSingleCharacterPiece, let unknownID {
                let end = start + characterLength
                let candidate = unknownScore + scoreSoFar
                if bestStart[end] < 0 || candidate > bestScore[end] {
                    bestScore[end] = candidate
                    bestStart[end] = start
                    bestID[end] = unknownID
                }
            }
            start += characterLength
        }
        // Backward pass; without an unknown piece an uncovered character leaves no path.
        var segments: [Range<Int>] = []
        var unknownRunStart: Int?
        var unknownRunEnd = 0
        var end = bytes.count
        while end > 0 {
            let pieceStart = bestStart[end]
            guard pieceStart >= 0 else { return segments.reversed() }
            if let unknownID, bestID[end] == unknownID {
                if unknownRunStart == nil {
                    unknownRunEnd = end
                }
                unknownRunStart = pieceStart
            } else {
                if let runStart = unknownRunStart {
                    segments.append(runStart..<unknownRunEnd)
                    unknownRunStart = nil
                }
                segments.append(pieceStart..<end)
            }
            end = pieceStart
        }
        if let runStart = unknownRunStart {
            segments.append(runStart..<unknownRunEnd)
        }
        return segments.reversed()
    }

    /// `<0xXX>` token ids for each byte, or nil when any of them is missing.
    private func byteTokenIDs(of bytes: [UInt8]) -> [Int]? {
        var ids: [Int] = []
        for byte in bytes {
            let hex = String(byte, radix: 16, uppercase: true)
            let name = "<0x" + (hex.count == 1 ? "0" + hex : hex) + ">"
            guard let id = idsByPiece[Array(name.utf8)] else { return nil }
            ids.append(id)
        }
        return ids
    }

    /// Length of the UTF-8 character starting with `leadByte` (input is valid UTF-8).
    private static func utf8Length(leadByte: UInt8, available: Int) -> Int {
        let length: Int
        switch leadByte {
        case 0..<0x80: length = 1
        case 0xC0..<0xE0: length = 2
        case 0xE0..<0xF0: length = 3
        default: length = 4
        }
        return min(length, available)
    }
}

/// A byte trie from piece bytes to ids, for the prefix searches of segmentation.
struct ByteTrie: Sendable {
    /// Child node of (node, byte), keyed as `node << 8 | byte`.
    private var children: [Int: Int] = [:]
    /// The id stored at each node, -1 for none.
    private var values: [Int] = [-1]

    /// Stores `value` for `key`; an empty key is ignored (it matches no text).
    mutating func insert(_ key: [UInt8], value: Int) {
        guard !key.isEmpty else { return }
        var node = 0
        for byte in key {
            let edge = node << 8 | Int(byte)
            if let child = children[edge] {
                node = child
            } else {
                values.append(-1)
                children[edge] = values.count - 1
                node = values.count - 1
            }
        }
        values[node] = value
    }

    /// Calls `body(length, value)` for every stored key that is a prefix of `bytes[start...]`,
    /// shortest first.
    func forEachPrefix(of bytes: [UInt8], from start: Int, _ body: (Int, Int) -> Void) {
        var node = 0
        var index = start
        while index < bytes.count, let child = children[node << 8 | Int(bytes[index])] {
            node = child
            index += 1
            if values[node] >= 0 {
                body(index - start, values[node])
            }
        }
    }

    /// The longest stored key that is a prefix of `bytes[start...]`, as (length, value).
    func longestPrefix(of bytes: [UInt8], from start: Int) -> (length: Int, value: Int)? {
        var longest: (length: Int, value: Int)?
        forEachPrefix(of: bytes, from: start) { length, value in
            longest = (length, value)
        }
        return longest
    }
}
