import CKilnPNG
import Foundation

/// What a PNG file says about its pixels before decoding them: size, stored bit depth and colour
/// type, interlacing and whether a tRNS chunk is present. Reads only up to the first IDAT chunk.
public struct PNGHeader: Sendable, Equatable, CustomStringConvertible {
    /// The IHDR colour type.
    public enum ColorType: Int, Sendable, Codable {
        case grayscale = 0
        case rgb = 2
        case palette = 3
        case grayscaleAlpha = 4
        case rgba = 6

        var name: String {
            switch self {
            case .grayscale: "grayscale"
            case .rgb: "RGB"
            case .palette: "palette"
            case .grayscaleAlpha: "grayscale+alpha"
            case .rgba: "RGBA"
            }
        }
    }

    public let width: Int
    public let height: Int
    /// Bits per sample as stored (per palette index for `.palette`): 1, 2, 4, 8 or 16.
    public let bitDepth: Int
    public let colorType: ColorType
    public let interlaced: Bool
    public let hasTransparencyChunk: Bool

    public init(contentsOf url: URL) throws {
        let name = url.relativePath
        let data = try FileBytes.contents(
            ofPath: url.path, name: name, maximumBytes: PNGImage.maximumFileBytes(forPixelBytes: PNGImage.defaultMaximumBytes))
        try self.init(data: data, name: name)
    }

    /// `name` stands for the data in error messages.
    public init(data: Data, name: String = "<memory>") throws {
        let header = try PNGDecoder.decode(data, name: name) { try $0.readHeader() }
        try self.init(header, name: name)
    }

    init(_ header: KilnPNGHeader, name: String) throws {
        guard let colorType = ColorType(rawValue: Int(header.color_type)) else {
            throw PNGError.unsupported(path: name, detail: "colour type \(header.color_type)")
        }
        width = Int(header.width)
        height = Int(header.height)
        bitDepth = Int(header.bit_depth)
        self.colorType = colorType
        interlaced = header.interlaced != 0
        hasTransparencyChunk = header.has_transparency != 0
    }

    /// For example `16-bit RGBA, interlaced`.
    public var description: String {
        var parts = ["\(bitDepth)-bit \(colorType.name)"]
        if interlaced { parts.append("interlaced") }
        if hasTransparencyChunk { parts.append("tRNS") }
        return parts.joined(separator: ", ")
    }
}
