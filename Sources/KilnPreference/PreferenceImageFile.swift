import Foundation
import Kiln

/// An image file of a preference pair, read as diffusers' Diffusion-DPO scripts read theirs:
/// `Image.open(...).convert("RGB")`, torchvision's `Resize(R, BILINEAR)` and `CenterCrop(R)`
/// (`ResizeAndCenterCrop`), `ToTensor()` and `Normalize([0.5], [0.5])`.
///
/// Kiln reads PNG. JPEG files (Pick-a-Pic's images are JPEG) are refused with a pointer to the
/// conversion: decoding them once with Pillow and saving PNG keeps exactly the pixels the
/// training script saw, where a second JPEG decoder could round differently.
public enum PreferenceImageFile {
    /// Checks that `url` exists and is a PNG whose header Kiln reads, without decoding it.
    public static func check(_ url: URL) throws {
        let path = url.path
        guard FileManager.default.fileExists(atPath: path) else { throw PNGError.notFound(path: path) }
        if let handle = FileHandle(forReadingAtPath: path) {
            let head = handle.readData(ofLength: 12)
            try? handle.close()
            if head.starts(with: [0xFF, 0xD8, 0xFF]) {
                throw PNGError.unsupported(path: path, detail: "a JPEG file: Kiln reads PNG images; convert it first (the README's Pick-a-Pic recipe writes PNG with Pillow)")
            }
            if head.count == 12, head.starts(with: Array("RIFF".utf8)), head.suffix(4).elementsEqual(Array("WEBP".utf8)) {
                throw PNGError.unsupported(path: path, detail: "a WebP file: Kiln reads PNG images; convert it first")
            }
        }
        _ = try PNGHeader(contentsOf: url)
    }

    /// The image at `url` as the scorer takes it: RGB, resized on its shorter side to
    /// `resolution` and center-cropped to `resolution` x `resolution`, in [-1, 1].
    public static func load(_ url: URL, resolution: Int) throws -> PreferenceImage {
        let image = try PNGImage(contentsOf: url).rgb()
        let outcome = try ResizeAndCenterCrop(resolution: resolution).apply(image)
        let tensor = try DiffusersImageProcessor.preprocess([outcome.image])
        return PreferenceImage(
            pixels: ShapedArray(shape: tensor.shape, scalars: tensor.values),
            originalSize: [outcome.originalHeight, outcome.originalWidth], cropTopLeft: [outcome.cropTop, outcome.cropLeft])
    }
}
