import Foundation

/// Byte-level byte-pair encoding as used by CLIP (and GPT-2): every UTF-8 byte of a word is first
/// replaced by a printable stand-in character, then adjacent symbols are merged by merge rank.
///
/// Reference: Sennrich et al., "Neural Machine Translation of Rare Words with Subword Units"
/// (https://arxiv.org/abs/1508.07909); Radford et al., "Learning Transferable Visual Models From
/// Natural Language Supervision" (https://arxiv.org/abs/2103.00020).
struct ByteLevelBPE: Sendable {
    /// Marker appended to the last symbol of every word, so "a" at a word end and "a" inside a
    /// word are different vocabulary entries.
    static let endOfWordSuffix = "</w>"

    /// The 256 stand-in symbols, indexed by byte value.
    ///
    /// Printable Latin-1 bytes stand for themselves; the 68 others (controls, space, NBSP, soft
    /// hyphen) are shifted to U+0100 onwards, because BPE vocabularies must not contain
    /// whitespace or control characters.
    static let byteSymbols: [Unicode.Scalar] = {
        var symbols = [Unicode.Scalar](repeating: " ", count: 256)
        var shifted: UInt32 = 0
        for byte in 0..<256 {
            if isPrintableLatin1(byte) {
                symbols[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                // 256 + shifted stays below U+0144, so the fallback is never taken.
                symbols[byte] = Unicode.Scalar(256 + shifted) ?? "?"
                shifted += 1
            }
        }
        return symbols
    }()

    /// The byte values in the order CLIP lists their symbols at the start of its vocabulary:
    /// printable bytes first, then the shifted ones.
    static let vocabularyByteOrder: [Int] =
        (0..<256).filter { isPrintableLatin1($0) } + (0..<256).filter { !isPrintableLatin1($0) }

    private static func isPrintableLatin1(_ byte: Int) -> Bool {
        (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
    }

    /// Rank of each merge: lower ranks merge first.
    private let ranks: [SymbolPair: Int]

    init(merges: [(String, String)]) {
        var ranks = [SymbolPair: Int](minimumCapacity: merges.count)
        for (rank, merge) in merges.enumerated() {
            // A repeated pair takes its later rank, as transformers' rank table does.
            ranks[SymbolPair(merge.0, merge.1)] = rank
        }
        self.ranks = ranks
    }

    /// Maps the UTF-8 bytes of `text` to their stand-in symbols.
    static func byteEncoded(_ text: String) -> String {
        var scalars = String.UnicodeScalarView()
        for byte in text.utf8 {
            scalars.append(byteSymbols[Int(byte)])
        }
        return String(scalars)
    }

    /// Splits one byte-encoded word into BPE symbols; the last symbol carries `</w>`.
    func symbols(forWord word: String) -> [String] {
        var symbols = word.unicodeScalars.map { String($0) }
        guard let last = symbols.last else { return [] }
        symbols[symbols.count - 1] = last + Self.endOfWordSuffix
        while symbols.count > 1 {
            var best: (rank: Int, pair: SymbolPair)?
            for index in 0..<(symbols.count - 1) {
                let pair = SymbolPair(symbols[index], symbols[index + 1])
                if let rank = ranks[pair], rank < best?.rank ?? Int.max {
                    best = (rank, pair)
                }
            }
            guard let pair = best?.pair else { break }
            // Merge every non-overlapping occurrence of the best pair, scanning left to right.
            var merged: [String] = []
            merged.reserveCapacity(symbols.count)
            var index = 0
            while index < symbols.count {
                if index + 1 < symbols.count, symbols[index] == pair.first, symbols[index + 1] == pair.second {
                    merged.append(pair.first + pair.second)
                    index += 2
                } else {
                    merged.append(symbols[index])
                    index += 1
                }
            }
            symbols = merged
        }
        return symbols
    }
}

/// Two adjacent BPE symbols.
struct SymbolPair: Hashable, Sendable {
    let first: String
    let second: String

    init(_ first: String, _ second: String) {
        self.first = first
        self.second = second
    }
}

/// A thread-safe memo of word → token ids.
///
/// Prompts repeat the same words constantly and BPE is quadratic in word length, so encoding
/// memoizes per word. The memo is bounded so a long-running server cannot grow it without limit.
final class TokenCache: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [String: [Int]] = [:]
    private let capacity: Int

    init(capacity: Int = 50_000) {
        self.capacity = capacity
    }

    func ids(for word: String) -> [Int]? {
        lock.withLock { entries[word] }
    }

    func store(_ ids: [Int], for word: String) {
        lock.withLock {
            if entries.count >= capacity {
                entries.removeAll(keepingCapacity: true)
            }
            entries[word] = ids
        }
    }
}
