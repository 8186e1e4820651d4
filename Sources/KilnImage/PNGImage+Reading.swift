import CKilnPNG
import Foundation

extension PNGImage {
    /// The default cap on decoding memory: 1 GiB, enough for an 8-bit RGB image of 18900 x 18900
    /// pixels or a 16-bit RGBA one of 11500 x 11500, and far beyond what diffusion models produce.
    public static let defaultMaximumBytes = 1 << 30

    /// Reads a PNG file. Every flavour (palette, gray at 1–16 bits, gray+alpha, RGB(A) at 8/16 bits,
    /// interlaced, tRNS) becomes 8-bit `.grayscale` or `.rgb` exactly as Pillow's `Image.open`
    /// followed by `convert("RGB")` sees it: alpha and tRNS are dropped, not composited; 16-bit
    /// samples keep their high byte, except 16-bit gray, which Pillow clamps to 255.
    /// `maximumBytes` caps the decoding buffer (checked from the header before allocating).
    public init(contentsOf url: URL, maximumBytes: Int = PNGImage.defaultMaximumBytes) throws {
        // Errors name the file as the caller spelled it (relative paths stay relative).
        let name = url.relativePath
        let data = try FileBytes.contents(ofPath: url.path, name: name, maximumBytes: Self.maximumFileBytes(forPixelBytes: maximumBytes))
        try self.init(data: data, name: name, maximumBytes: maximumBytes)
    }

    /// Decodes PNG bytes as `init(contentsOf:)` does; `name` stands for the data in error messages.
    public init(data: Data, name: String = "<memory>", maximumBytes: Int = PNGImage.defaultMaximumBytes) throws {
        self = try PNGDecoder.decode(data, name: name) { decoder in
            let header = try decoder.readHeader()
            let decodedBytes = try Self.checkedDecodedBytes(header, name: name, maximumBytes: maximumBytes)
            var decoded = [UInt8](repeating: 0, count: decodedBytes)
            try decoded.withUnsafeMutableBufferPointer { buffer in
                guard let base = buffer.baseAddress else { throw PNGError.outOfMemory(path: name) }
                try decoder.readPixels(into: base)
            }
            let (layout, pixels) = Self.eightBitPixels(decoded, header)
            return PNGImage(checkedWidth: Int(header.width), height: Int(header.height), layout: layout, pixels: pixels,
                            text: decoder.textChunks())
        }
    }

    /// A PNG file can exceed its pixels (incompressible data, large text chunks) but not by much.
    static func maximumFileBytes(forPixelBytes maximumBytes: Int) -> Int {
        let (sum, overflow) = maximumBytes.addingReportingOverflow(64 << 20)
        return overflow ? Int.max : sum
    }

    /// The decoded buffer size, after checking it and the 8-bit result against the limit.
    private static func checkedDecodedBytes(_ header: KilnPNGHeader, name: String, maximumBytes: Int) throws -> Int {
        guard header.decoded_bit_depth == 8 || header.decoded_bit_depth == 16,
              (1...4).contains(header.decoded_channels) else {
            throw PNGError.unsupported(
                path: name,
                detail: "libpng produced \(header.decoded_channels) channels at \(header.decoded_bit_depth) bits")
        }
        let width = Int(header.width), height = Int(header.height), channels = Int(header.decoded_channels)
        let (decoded, overflow) = height.multipliedReportingOverflow(by: header.decoded_row_bytes)
        guard !overflow, decoded <= maximumBytes else {
            throw PNGError.tooLarge(
                path: name,
                detail: "\(width) x \(height) pixels, \(channels) channel(s) of \(header.decoded_bit_depth) bits, need "
                    + "\(overflow ? "more than \(Int.max)" : "\(decoded)") bytes to decode, more than the \(maximumBytes)-byte limit")
        }
        return decoded
    }

    /// Narrows libpng's rows to 8-bit gray or RGB the way Pillow does (see `init(contentsOf:)`).
    private static func eightBitPixels(_ decoded: [UInt8], _ header: KilnPNGHeader) -> (ChannelLayout, [UInt8]) {
        let width = Int(header.width), height = Int(header.height)
        let inputChannels = Int(header.decoded_channels)
        let layout: ChannelLayout = inputChannels <= 2 ? .grayscale : .rgb
        let outputChannels = layout.channels
        let rowBytes = header.decoded_row_bytes
        let sixteenBit = header.decoded_bit_depth == 16
        // Pillow opens 16-bit gray as mode I;16, whose conversion to 8 bits saturates instead of
        // shifting; 16-bit gray+alpha and RGB(A) go through unpackers that keep the high byte.
        let saturate = sixteenBit && header.color_type == 0
        var output = [UInt8](repeating: 0, count: width * height * outputChannels)
        decoded.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target in
                var written = 0
                for y in 0..<height {
                    let row = y * rowBytes
                    for x in 0..<width {
                        for channel in 0..<outputChannels {
                            let sample = x * inputChannels + channel
                            if !sixteenBit {
                                target[written] = source[row + sample]
                            } else {
                                let high = source[row + 2 * sample], low = source[row + 2 * sample + 1]
                                target[written] = saturate ? (high != 0 ? 255 : low) : high
                            }
                            written += 1
                        }
                    }
                }
            }
        }
        return (layout, output)
    }
}
