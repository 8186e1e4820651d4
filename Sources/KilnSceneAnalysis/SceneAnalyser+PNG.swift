import Foundation
import KilnImage

extension SceneAnalyser {
    /// Any PNG layout: gray is repeated into the three channels, alpha dropped (`PNGImage.rgb()`).
    public func analyse(_ image: PNGImage) -> SceneAnalysis {
        let rgb = image.rgb()
        return analyse(rgb: rgb.pixels, width: rgb.width, height: rgb.height)
    }

    public func analyse(contentsOf url: URL) throws -> SceneAnalysis {
        analyse(try PNGImage(contentsOf: url))
    }
}
