import Foundation
import Kiln
@testable import KilnServer

/// PNG bytes as an init image or a mask arrives: the header alone, then the whole decode with
/// its text chunks, the A1111 infotext in a `parameters` chunk (what `/sdapi/v1/png-info` answers),
/// the channel conversions img2img makes, and the image written back as Kiln writes results.
enum PNGTarget {
    /// Small enough that libFuzzer's memory limit is never what stops a decode, large enough for
    /// every seed: a larger image must be refused with an error, never decoded.
    static let maximumBytes = 1 << 24

    static func run(_ data: Data) {
        _ = try? PNGHeader(data: data, name: "fuzz.png")
        guard let image = try? PNGImage(data: data, name: "fuzz.png", maximumBytes: maximumBytes) else { return }
        for chunk in image.text { _ = chunk.keyword.count + chunk.text.count }
        if let parameters = image.text(forKeyword: "parameters") { _ = InfotextParser.parse(parameters) }
        _ = image.rgb()
        _ = image.grayscale()
        _ = try? image.pngData(compressionLevel: 1)
    }
}
