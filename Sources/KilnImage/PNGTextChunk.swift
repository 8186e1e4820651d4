/// One PNG text chunk: a keyword (1–79 Latin-1 characters) and its text.
///
/// tEXt and zTXt store Latin-1, iTXt stores UTF-8; `storage` says which chunk type was read or will
/// be written. A1111-style generation settings live in a `parameters` chunk; Kiln's own settings in
/// a `kiln` iTXt chunk holding JSON.
public struct PNGTextChunk: Sendable, Hashable {
    /// The chunk type and whether its text is zlib-compressed.
    public enum Storage: String, Sendable, Codable, CaseIterable {
        /// tEXt: Latin-1, uncompressed.
        case latin1 = "tEXt"
        /// zTXt: Latin-1, compressed.
        case compressedLatin1 = "zTXt"
        /// iTXt: UTF-8, uncompressed (no language tag, no translated keyword).
        case utf8 = "iTXt"
        /// iTXt: UTF-8, compressed.
        case compressedUTF8 = "iTXt (compressed)"
    }

    public var keyword: String
    public var text: String
    public var storage: Storage

    public init(keyword: String, text: String, storage: Storage) {
        self.keyword = keyword
        self.text = text
        self.storage = storage
    }

    /// tEXt when the text is Latin-1 encodable, else uncompressed iTXt: the choice Pillow's
    /// `PngInfo.add_text(key, value)` makes by default, so tools reading either way agree.
    public init(keyword: String, text: String) {
        self.init(keyword: keyword, text: text, storage: Latin1.canEncode(text) ? .latin1 : .utf8)
    }

    /// An iTXt chunk (UTF-8), compressed when asked: what Kiln uses for its `kiln` JSON chunk.
    public static func international(keyword: String, text: String, compressed: Bool = false) -> PNGTextChunk {
        PNGTextChunk(keyword: keyword, text: text, storage: compressed ? .compressedUTF8 : .utf8)
    }

    /// The checks a writer makes before handing the chunk to libpng, which would otherwise silently
    /// rewrite a bad keyword (collapsing spaces, replacing characters) or cut the text at a NUL.
    func validated() throws -> (keyword: [UInt8], text: [UInt8]) {
        guard let keywordBytes = Latin1.encode(keyword) else {
            throw PNGError.invalidText(keyword: keyword, detail: "a keyword must be Latin-1")
        }
        guard (1...79).contains(keywordBytes.count) else {
            throw PNGError.invalidText(keyword: keyword, detail: "a keyword must be 1 to 79 characters, got \(keywordBytes.count)")
        }
        if let bad = keywordBytes.first(where: { !((32...126).contains($0) || (161...255).contains($0)) }) {
            throw PNGError.invalidText(keyword: keyword, detail: "character 0x\(String(bad, radix: 16)) is not allowed in a keyword")
        }
        if keywordBytes.first == 32 || keywordBytes.last == 32 || zip(keywordBytes, keywordBytes.dropFirst()).contains(where: { $0 == 32 && $1 == 32 }) {
            throw PNGError.invalidText(keyword: keyword, detail: "a keyword has no leading, trailing or repeated spaces")
        }
        let textBytes: [UInt8]
        switch storage {
        case .latin1, .compressedLatin1:
            guard let bytes = Latin1.encode(text) else {
                throw PNGError.invalidText(keyword: keyword, detail: "\(storage.rawValue) holds Latin-1 only; store this text as iTXt")
            }
            textBytes = bytes
        case .utf8, .compressedUTF8:
            textBytes = Array(text.utf8)
        }
        if textBytes.contains(0) {
            throw PNGError.invalidText(keyword: keyword, detail: "text chunks cannot hold a NUL character")
        }
        return (keywordBytes, textBytes)
    }
}

/// ISO 8859-1: the first 256 Unicode scalars, one byte each.
enum Latin1 {
    static func canEncode(_ string: String) -> Bool {
        string.unicodeScalars.allSatisfy { $0.value <= 0xFF }
    }

    static func encode(_ string: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(string.unicodeScalars.count)
        for scalar in string.unicodeScalars {
            guard scalar.value <= 0xFF else { return nil }
            bytes.append(UInt8(scalar.value))
        }
        return bytes
    }

    static func decode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var scalars = String.UnicodeScalarView()
        for byte in bytes { scalars.append(Unicode.Scalar(byte)) }
        return String(scalars)
    }
}
