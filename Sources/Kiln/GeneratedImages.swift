import Foundation
import KilnImage
import KilnPipelines
import KilnSampling

/// The images of a generation as every front end writes them (`kiln generate`, the render
/// farm, the server, the C API): 8-bit PNGs as diffusers' image processor makes them, carrying
/// an A1111 `parameters` chunk and a `kiln` JSON chunk, so the same settings give the same bytes
/// whichever front end made them.
public enum GeneratedImages {
    /// Image `index` of `result` as a PNG with `metadata`.
    public static func png(_ result: GenerationResult, index: Int, metadata: GenerationMetadata) throws -> PNGImage {
        let images = result.images
        let size = images.scalars.count / max(images.shape[0], 1)
        let one = try ImageTensor(shape: [1] + images.shape.dropFirst(), values: Array(images.scalars[(index * size)..<((index + 1) * size)]))
        var image = try DiffusersImageProcessor.postprocess(one)[0]
        image.text = [
            PNGTextChunk(keyword: "parameters", text: metadata.a1111Parameters),
            .international(keyword: "kiln", text: try metadata.json()),
        ]
        return image
    }

    /// The PNG file's bytes for image `index`.
    public static func pngData(_ result: GenerationResult, index: Int, metadata: GenerationMetadata) throws -> Data {
        try png(result, index: index, metadata: metadata).pngData()
    }

    /// Writes image `index` to `url` atomically (a temporary file, fsynced, then renamed).
    public static func write(_ result: GenerationResult, index: Int, metadata: GenerationMetadata, to url: URL) throws {
        try png(result, index: index, metadata: metadata).write(to: url)
    }
}

extension GeneratedImages {
    /// A progress preview as an 8-bit RGB PNG (no metadata), `scale` times its size.
    public static func pngData(_ preview: PreviewImage, scale: Int = 1) throws -> Data {
        let enlarged = preview.enlarged(by: scale)
        return try PNGImage(width: enlarged.width, height: enlarged.height, layout: .rgb, pixels: enlarged.pixels).pngData()
    }
}

/// Images read as inputs of a request, as diffusers' processors prepare them.
public enum InputImages {
    /// An init image `[1, 3, H, W]` in [-1, 1] (Pillow's `convert("RGB")`, then `x / 127.5 - 1`).
    public static func initImage(_ image: PNGImage) throws -> ShapedArray {
        let tensor = try DiffusersImageProcessor.preprocess([image])
        return ShapedArray(shape: tensor.shape, scalars: tensor.values)
    }

    /// A mask `[1, 1, H, W]` of 0 and 1 (white, >= 0.5, is repainted).
    public static func mask(_ image: PNGImage) throws -> ShapedArray {
        let tensor = try DiffusersImageProcessor.preprocessMasks([image])
        return ShapedArray(shape: tensor.shape, scalars: tensor.values)
    }
}
