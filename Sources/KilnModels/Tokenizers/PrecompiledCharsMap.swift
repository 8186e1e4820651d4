import Foundation

/// SentencePiece's precompiled normalization map (`precompiled_charsmap`), applied the way
/// Hugging Face tokenizers' `Precompiled` normalizer applies it.
///
/// The blob is a little-endian `UInt32` byte count of a darts-clone double-array trie, the trie's
/// `UInt32` units, then a pool of NUL-terminated replacement strings. The trie maps a UTF-8 key
/// (for `nmt_nfkc`, a character or short sequence whose NFKC form differs, plus SentencePiece's
/// extra whitespace and control-character rules) to the pool offset of its replacement.
///
/// Normalization walks the text by extended grapheme cluster: a cluster shorter than 6 UTF-8
/// bytes whose *shortest* key prefix is in the trie is replaced whole by that prefix's
/// replacement (so a mapped first character swallows the marks that follow it, as in
/// tokenizers); any other cluster is mapped character by character, unmapped characters kept.
public struct PrecompiledCharsMap: Sendable {
    private let units: [UInt32]
    private let pool: [UInt8]

    /// Parses a `precompiled_charsmap` blob.
    ///
    /// - Throws: ``T5TokenizerError/malformedCharsMap(source:reason:)`` when the blob is shorter
    ///   than its header says, or its trie is empty or not a whole number of units.
    public init(blob: [UInt8], source: String) throws {
        guard blob.count >= 4 else {
            throw T5TokenizerError.malformedCharsMap(source: source, reason: "\(blob.count) bytes, fewer than the 4-byte header")
        }
        let trieByteCount = Int(blob[0]) | Int(blob[1]) << 8 | Int(blob[2]) << 16 | Int(blob[3]) << 24
        guard trieByteCount > 0, trieByteCount % 4 == 0, 4 + trieByteCount <= blob.count else {
            throw T5TokenizerError.malformedCharsMap(
                source: source,
                reason: "trie size \(trieByteCount) bytes does not fit a \(blob.count)-byte blob in whole 4-byte units")
        }
        var units = [UInt32](repeating: 0, count: trieByteCount / 4)
        for index in units.indices {
            let base = 4 + index * 4
            units[index] = UInt32(blob[base]) | UInt32(blob[base + 1]) << 8
                | UInt32(blob[base + 2]) << 16 | UInt32(blob[base + 3]) << 24
        }
        self.units = units
        self.pool = Array(blob[(4 + trieByteCount)...])
    }

    /// The text with every grapheme cluster mapped (see the type's description).
    public func normalize(_ text: String) -> String {
        guard let changes = transformations(of: Array(text.unicodeScalars)) else { return text }
        return String(String.UnicodeScalarView(changes.map(\.scalar)))
    }

    /// The mapped text as tokenizers' `transform` changes (see ``AlignedText/transform(_:initialOffset:)``),
    /// or nil when nothing is mapped.
    ///
    /// A replacement's scalars each take the place of one scalar it replaces; extra ones are
    /// insertions, and a shorter replacement makes the entry before it absorb the difference, as
    /// tokenizers lists them. (A first cluster mapped to nothing has no entry before it, so in
    /// tokenizers the next scalar inherits its alignment.)
    func transformations(of scalars: [Unicode.Scalar]) -> [(scalar: Unicode.Scalar, change: Int)]? {
        var changes: [(scalar: Unicode.Scalar, change: Int)] = []
        changes.reserveCapacity(scalars.count)
        var modified = false
        func replace(_ originalCount: Int, by replacement: ArraySlice<UInt8>) {
            let newScalars = Array(String(decoding: replacement, as: UTF8.self).unicodeScalars)
            changes += newScalars.map { ($0, 0) }
            let difference = newScalars.count - originalCount
            if difference > 0 {
                for index in (changes.count - difference)..<changes.count {
                    changes[index].change = 1
                }
            } else if difference < 0, !changes.isEmpty {
                changes[changes.count - 1].change += difference
            }
            modified = true
        }
        for cluster in String(String.UnicodeScalarView(scalars)) {
            let bytes = Array(cluster.utf8)
            if bytes.count < 6, let replacement = replacement(for: bytes[...]) {
                replace(cluster.unicodeScalars.count, by: replacement)
                continue
            }
            for scalar in cluster.unicodeScalars {
                let scalarBytes = Array(String(scalar).utf8)
                if let replacement = replacement(for: scalarBytes[...]) {
                    replace(1, by: replacement)
                } else {
                    changes.append((scalar, 0))
                }
            }
        }
        return modified ? changes : nil
    }

    /// The replacement of the shortest prefix of `key` that the trie holds, if any.
    func replacement(for key: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        guard let offset = shortestPrefixValue(of: key), offset >= 0, offset <= pool.count else {
            return nil
        }
        let end = pool[offset...].firstIndex(of: 0) ?? pool.count
        return pool[offset..<end]
    }

    /// darts-clone's common-prefix search, stopped at the first (shortest) match.
    private func shortestPrefixValue(of key: ArraySlice<UInt8>) -> Int? {
        var position = 0
        guard let root = unit(at: position) else { return nil }
        position ^= Self.offset(root)
        for byte in key {
            if byte == 0 { return nil }
            position ^= Int(byte)
            guard let next = unit(at: position), Self.label(next) == UInt32(byte) else { return nil }
            position ^= Self.offset(next)
            if Self.hasLeaf(next) {
                guard let leaf = unit(at: position) else { return nil }
                return Int(Self.value(leaf))
            }
        }
        return nil
    }

    private func unit(at position: Int) -> UInt32? {
        position >= 0 && position < units.count ? units[position] : nil
    }

    // darts-clone packs a unit as: bits 0-7 label, bit 8 has-leaf, bit 9 offset shift flag,
    // bits 10-31 offset; a leaf unit holds a 31-bit value and sets bit 31 so no label matches it.
    private static func hasLeaf(_ unit: UInt32) -> Bool { (unit >> 8) & 1 == 1 }
    private static func value(_ unit: UInt32) -> UInt32 { unit & ((1 << 31) - 1) }
    private static func label(_ unit: UInt32) -> UInt32 { unit & ((1 << 31) | 0xFF) }
    private static func offset(_ unit: UInt32) -> Int { Int((unit >> 10) << ((unit & (1 << 9)) >> 6)) }
}
