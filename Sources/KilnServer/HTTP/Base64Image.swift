import Foundation
import Kiln

/// Images sent in JSON bodies: raw base64 or `data:image/png;base64,` URLs, decoded as PNG with
/// their size checked before the pixels are decoded (no decompression bomb reaches memory).
enum Base64Image {
    /// The bytes of `text`, a base64 string or data URL; `field` names it in errors.
    static func bytes(_ text: String, field: String) throws -> Data {
        var payload = Substring(text.trimmingCharacters(in: .whitespacesAndNewlines))
        if payload.hasPrefix("data:") {
            guard let comma = payload.firstIndex(of: ",") else { throw APIError.invalid(field, "a data URL without ','") }
            let header = payload[..<comma]
            guard header.hasSuffix(";base64") else { throw APIError.invalid(field, "a data URL must be base64 (data:image/png;base64,...)") }
            payload = payload[payload.index(after: comma)...]
        } else if payload.hasPrefix("http://") || payload.hasPrefix("https://") {
            throw APIError.invalid(field, "Kiln does not fetch image URLs; send the image as base64")
        }
        // Line breaks (MIME-style base64) and missing padding are tolerated, as Python's b64decode
        // with validate=False tolerates them.
        var cleaned = payload.filter { !$0.isWhitespace }
        let remainder = cleaned.count % 4
        if remainder == 2 || remainder == 3 { cleaned += String(repeating: "=", count: 4 - remainder) }
        guard let data = Data(base64Encoded: String(cleaned)) else { throw APIError.invalid(field, "not valid base64") }
        return data
    }

    /// A PNG from `text`, at most `maximumSide` pixels on each side.
    static func png(_ text: String, field: String, maximumSide: Int) throws -> PNGImage {
        let data = try bytes(text, field: field)
        let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        guard data.count >= 24, Array(data.prefix(8)) == signature else {
            let kind = data.starts(with: [0xFF, 0xD8]) ? "a JPEG" : data.starts(with: Array("RIFF".utf8)) ? "a WebP or other RIFF file" : "not a PNG"
            throw APIError.invalid(field, "\(kind): Kiln takes PNG images")
        }
        let bytes = [UInt8](data.prefix(24))
        let width = bytes[16..<20].reduce(0) { $0 << 8 | Int($1) }
        let height = bytes[20..<24].reduce(0) { $0 << 8 | Int($1) }
        guard width > 0, height > 0, width <= maximumSide, height <= maximumSide else {
            throw APIError.invalid(field, "the image is \(width)x\(height); each side must be 1...\(maximumSide) pixels")
        }
        do {
            return try PNGImage(data: data, name: field, maximumBytes: maximumSide * maximumSide * 8)
        } catch {
            throw APIError.invalid(field, "the PNG does not decode: \(error)")
        }
    }
}
