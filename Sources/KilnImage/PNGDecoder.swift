import CKilnPNG
import Foundation

/// Owns one libpng read session over bytes that stay pinned for its whole life (`decode` runs the
/// body inside `withUnsafeBytes`), and turns the C statuses into `PNGError`s naming `name`.
struct PNGDecoder: ~Copyable {
    private let handle: OpaquePointer
    let name: String

    private init(handle: OpaquePointer, name: String) {
        self.handle = handle
        self.name = name
    }

    deinit { kiln_png_decoder_destroy(handle) }

    /// Runs `body` with a decoder over `data`; the bytes are only valid inside.
    static func decode<Result>(_ data: Data, name: String, _ body: (borrowing PNGDecoder) throws -> Result) throws -> Result {
        try data.withUnsafeBytes { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            guard let handle = kiln_png_decoder_create(bytes.baseAddress, bytes.count) else {
                throw PNGError.outOfMemory(path: name)
            }
            let decoder = PNGDecoder(handle: handle, name: name)
            return try body(decoder)
        }
    }

    func readHeader() throws -> KilnPNGHeader {
        var header = KilnPNGHeader()
        try check(kiln_png_decoder_read_header(handle, &header))
        return header
    }

    /// `pixels` must hold `height * decoded_row_bytes` bytes.
    func readPixels(into pixels: UnsafeMutablePointer<UInt8>) throws {
        try check(kiln_png_decoder_read_pixels(handle, pixels))
    }

    /// Every text chunk, in file order; tEXt/zTXt decoded as Latin-1, iTXt as UTF-8 (invalid UTF-8
    /// becomes U+FFFD rather than losing the chunk).
    func textChunks() -> [PNGTextChunk] {
        (0..<kiln_png_decoder_text_count(handle)).map { index in
            let raw = kiln_png_decoder_text(handle, index)
            let keyword = raw.keyword.map { Latin1.decode(UnsafeBufferPointer(start: UnsafeRawPointer($0).assumingMemoryBound(to: UInt8.self), count: strlen($0))) } ?? ""
            let bytes = raw.text.map { UnsafeBufferPointer(start: UnsafeRawPointer($0).assumingMemoryBound(to: UInt8.self), count: raw.text_length) }
                ?? UnsafeBufferPointer(start: nil, count: 0)
            let storage: PNGTextChunk.Storage
            switch raw.kind {
            case KILN_PNG_TEXT_PLAIN: storage = .latin1
            case KILN_PNG_TEXT_COMPRESSED: storage = .compressedLatin1
            case KILN_PNG_TEXT_INTERNATIONAL: storage = .utf8
            default: storage = .compressedUTF8
            }
            let text = storage == .latin1 || storage == .compressedLatin1 ? Latin1.decode(bytes) : String(decoding: bytes, as: UTF8.self)
            return PNGTextChunk(keyword: keyword, text: text, storage: storage)
        }
    }

    private func check(_ status: KilnPNGStatus) throws {
        if status == KILN_PNG_OK { return }
        let message = String(cString: kiln_png_decoder_message(handle))
        switch status {
        case KILN_PNG_NOT_PNG: throw PNGError.notPNG(path: name)
        case KILN_PNG_TRUNCATED: throw PNGError.truncated(path: name, detail: message)
        case KILN_PNG_OUT_OF_MEMORY: throw PNGError.outOfMemory(path: name)
        case KILN_PNG_CORRUPT: throw PNGError.corrupt(path: name, detail: message)
        default: throw PNGError.corrupt(path: name, detail: "decoder used after an earlier failure (\(message))")
        }
    }
}
