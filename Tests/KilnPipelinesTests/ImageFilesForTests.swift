import Foundation
import Kiln

/// Small PNGs the command tests need beyond the recorded fixtures.
enum ImageFilesForTests {
    /// A mid-gray image of the given size.
    static func writeGray(width: Int, height: Int, to url: URL) throws {
        try PNGImage(width: width, height: height, layout: .grayscale, pixels: [UInt8](repeating: 128, count: width * height)).write(to: url)
    }
}
