import Foundation
import Kiln

/// The PNG side of `kiln generate`: init images and masks read as diffusers' processors prepare
/// them, results written with their metadata. Read failures are bad input (exit code 2).
enum ImageFiles {
    /// `[1, 3, H, W]` in [-1, 1].
    static func readInitImage(_ url: URL, option: String) throws -> ShapedArray {
        let tensor = try read(url, option: option) { try DiffusersImageProcessor.preprocess([$0]) }
        return ShapedArray(shape: tensor.shape, scalars: tensor.values)
    }

    /// `[1, 1, H, W]` of 0 and 1 (white, >= 0.5, is repainted).
    static func readMask(_ url: URL, option: String) throws -> ShapedArray {
        let tensor = try read(url, option: option) { try DiffusersImageProcessor.preprocessMasks([$0]) }
        return ShapedArray(shape: tensor.shape, scalars: tensor.values)
    }

    /// Image `index` of decoded `[N, 3, H, W]` (the VAE's [-1, 1] output) as an 8-bit PNG with an
    /// A1111 `parameters` chunk and a `kiln` JSON chunk, written atomically.
    static func writeImage(_ images: ShapedArray, index: Int, to url: URL, metadata: GenerationMetadata) throws {
        let size = images.scalars.count / images.shape[0]
        let one = try ImageTensor(shape: [1] + images.shape.dropFirst(), values: Array(images.scalars[(index * size)..<((index + 1) * size)]))
        var image = try DiffusersImageProcessor.postprocess(one)[0]
        image.text = [
            PNGTextChunk(keyword: "parameters", text: metadata.a1111Parameters),
            .international(keyword: "kiln", text: try metadata.json()),
        ]
        try image.write(to: url)
    }

    private static func read(_ url: URL, option: String, convert: (PNGImage) throws -> ImageTensor) throws -> ImageTensor {
        do {
            return try convert(try PNGImage(contentsOf: url))
        } catch {
            throw CommandFailure.badInput("\(option) \(url.path): \(error)")
        }
    }
}
