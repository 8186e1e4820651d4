/// An 8-bit image with the text chunks it carries: what KilnImage reads from and writes to PNG files.
///
/// Pixels are row-major and interleaved, shape `[height, width, channels]`: the sample of channel `c`
/// at column `x`, row `y` is `pixels[(y * width + x) * channels + c]`, as in `np.array(pil_image)`.
/// Reading gives `.grayscale` or `.rgb` (alpha and tRNS are dropped the way Pillow's
/// `convert("RGB")` drops them); all four layouts can be written.
public struct PNGImage: Sendable, Equatable {
    /// The channels of each pixel, in storage order. Alpha is straight (not premultiplied).
    public enum ChannelLayout: String, Sendable, CaseIterable, Codable {
        /// One channel: luma.
        case grayscale
        /// Two channels: luma, alpha.
        case grayscaleAlpha
        /// Three channels: red, green, blue.
        case rgb
        /// Four channels: red, green, blue, alpha.
        case rgba

        public var channels: Int {
            switch self {
            case .grayscale: 1
            case .grayscaleAlpha: 2
            case .rgb: 3
            case .rgba: 4
            }
        }

        /// The layout with `channels` channels, the inverse of `channels`.
        public init?(channels: Int) {
            guard let layout = Self.allCases.first(where: { $0.channels == channels }) else { return nil }
            self = layout
        }

        public var hasAlpha: Bool { self == .grayscaleAlpha || self == .rgba }
    }

    public let width: Int
    public let height: Int
    public let layout: ChannelLayout
    /// `height * width * layout.channels` samples, shape `[H, W, C]`.
    public let pixels: [UInt8]
    /// Text chunks in file order; a keyword may repeat. Written before the image data.
    public var text: [PNGTextChunk]

    /// Fails when the pixel count does not match `height * width * layout.channels`, or a side is not positive.
    public init(width: Int, height: Int, layout: ChannelLayout, pixels: [UInt8], text: [PNGTextChunk] = []) throws {
        guard width > 0, height > 0 else {
            throw PNGError.invalidImage(detail: "size \(width) x \(height) must be positive")
        }
        let (area, areaOverflow) = width.multipliedReportingOverflow(by: height)
        let (expected, overflow) = area.multipliedReportingOverflow(by: layout.channels)
        guard !areaOverflow, !overflow, expected == pixels.count else {
            throw PNGError.invalidImage(
                detail: "\(width) x \(height) \(layout.rawValue) needs \(areaOverflow || overflow ? "more than Int.max" : "\(expected)") samples, got \(pixels.count)")
        }
        self.width = width
        self.height = height
        self.layout = layout
        self.pixels = pixels
        self.text = text
    }

    /// For code in this module that has already established the invariant.
    init(checkedWidth width: Int, height: Int, layout: ChannelLayout, pixels: [UInt8], text: [PNGTextChunk]) {
        self.width = width
        self.height = height
        self.layout = layout
        self.pixels = pixels
        self.text = text
    }

    /// The text of the last chunk with this keyword (the last one wins, as in Pillow's `Image.text`).
    public func text(forKeyword keyword: String) -> String? {
        text.last(where: { $0.keyword == keyword })?.text
    }
}
