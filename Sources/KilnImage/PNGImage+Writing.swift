import CKilnPNG
import Foundation
import KilnGraph

extension PNGImage {
    /// The PNG encoding of this image and its text chunks: 8 bits per sample, the colour type
    /// matching `layout`, not interlaced, text before the image data, no time chunk. Equal images
    /// with equal text give equal bytes. `compressionLevel` is zlib's, 0 (none) to 9 (smallest).
    public func pngData(compressionLevel: Int = 6) throws -> Data {
        try encoded(name: "<memory>", compressionLevel: compressionLevel)
    }

    /// Writes `pngData()` to `url` atomically: the bytes go to a temporary file in the same directory,
    /// are flushed to disk, and then renamed over the destination. On any failure the temporary file
    /// is removed and whatever was at `url` before is untouched.
    public func write(to url: URL, compressionLevel: Int = 6) throws {
        let name = url.relativePath
        let data = try encoded(name: name, compressionLevel: compressionLevel)
        do {
            try AtomicFile.write(data, toPath: url.path, name: name)
        } catch let error as AtomicFile.WriteError {
            throw PNGError.writeFailed(path: error.path, detail: error.detail)
        }
    }

    private func encoded(name: String, compressionLevel: Int) throws -> Data {
        guard (0...9).contains(compressionLevel) else {
            throw PNGError.unsupported(path: name, detail: "compression level \(compressionLevel) is outside 0...9")
        }
        guard width <= Int(Int32.max), height <= Int(Int32.max) else {
            throw PNGError.unsupported(path: name, detail: "\(width) x \(height) exceeds PNG's 2147483647-pixel side")
        }
        let chunks = try text.map { chunk in (try chunk.validated(), chunk.storage) }

        // libpng keeps pointers to NUL-terminated strings only until png_set_text copies them, but
        // Swift arrays give no pointer that outlives a closure, so the strings get their own memory.
        var strings: [UnsafeMutablePointer<CChar>] = []
        defer { strings.forEach { $0.deallocate() } }
        func cString(_ bytes: [UInt8]) -> UnsafePointer<CChar> {
            let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
            bytes.withUnsafeBytes { raw in
                if let base = raw.baseAddress { UnsafeMutableRawPointer(pointer).copyMemory(from: base, byteCount: raw.count) }
            }
            pointer[bytes.count] = 0
            strings.append(pointer)
            return UnsafePointer(pointer)
        }
        let texts = chunks.map { validated, storage in
            KilnPNGText(keyword: cString(validated.keyword), text: cString(validated.text),
                        text_length: validated.text.count, kind: Self.textKind(storage))
        }

        var bytes: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = pixels.withUnsafeBufferPointer { pixelBuffer in
            texts.withUnsafeBufferPointer { textBuffer in
                kiln_png_encode(pixelBuffer.baseAddress, UInt32(width), UInt32(height), Int32(layout.channels),
                                textBuffer.baseAddress, textBuffer.count, Int32(compressionLevel),
                                &bytes, &size, &message, message.count)
            }
        }
        defer { kiln_png_free(bytes) }
        let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        switch status {
        case KILN_PNG_OK:
            guard let bytes else { throw PNGError.outOfMemory(path: name) }
            return Data(bytes: bytes, count: size)
        case KILN_PNG_OUT_OF_MEMORY:
            throw PNGError.outOfMemory(path: name)
        default:
            throw PNGError.writeFailed(path: name, detail: "libpng: \(reason)")
        }
    }

    private static func textKind(_ storage: PNGTextChunk.Storage) -> KilnPNGTextKind {
        switch storage {
        case .latin1: KILN_PNG_TEXT_PLAIN
        case .compressedLatin1: KILN_PNG_TEXT_COMPRESSED
        case .utf8: KILN_PNG_TEXT_INTERNATIONAL
        case .compressedUTF8: KILN_PNG_TEXT_INTERNATIONAL_COMPRESSED
        }
    }
}
