/// Images to and from the float tensors of diffusers' `VaeImageProcessor`, with its float32
/// roundings reproduced bit for bit (diffusers/image_processor.py: `pil_to_numpy`, `normalize`,
/// `binarize`, `denormalize`, `numpy_to_pil`). Resizing is not done here: diffusers resizes inputs
/// whose sides are not multiples of the VAE scale factor, so callers pass images of valid sizes.
public enum DiffusersImageProcessor {
    /// `VaeImageProcessor().preprocess(images)` for RGB images: `[B, 3, H, W]` float32 in [-1, 1].
    /// Gray images are first repeated to RGB (what `load_image`'s `convert("RGB")` gives); alpha is dropped.
    public static func preprocess(_ images: [PNGImage]) throws -> ImageTensor {
        try tensor(images.map { $0.rgb() }, channels: 3, value: normalized)
    }

    /// The inpainting mask processor's `preprocess` (do_normalize=False, do_binarize=True,
    /// do_convert_grayscale=True): `[B, 1, H, W]` float32, 1 where `convert("L")` gives >= 128
    /// (i.e. pixel / 255 >= 0.5), else 0.
    public static func preprocessMasks(_ masks: [PNGImage]) throws -> ImageTensor {
        try tensor(masks.map { $0.grayscale() }, channels: 1, value: binarized)
    }

    /// `postprocess(decoded, output_type="pil")`: `[B, C, H, W]` float32 in [-1, 1] to B images;
    /// C = 1, 2, 3 or 4 gives gray, gray+alpha, RGB or RGBA, as `numpy_to_pil` picks PIL modes.
    public static func postprocess(_ decoded: ImageTensor) throws -> [PNGImage] {
        guard let layout = PNGImage.ChannelLayout(channels: decoded.channels) else {
            throw ImageTensorError.invalidShape(shape: decoded.shape, detail: "images have 1 to 4 channels")
        }
        let channels = decoded.channels, height = decoded.height, width = decoded.width
        let plane = height * width
        return decoded.values.withUnsafeBufferPointer { values in
            (0..<decoded.batch).map { image in
                var pixels = [UInt8](repeating: 0, count: plane * channels)
                let base = image * channels * plane
                for channel in 0..<channels {
                    for index in 0..<plane {
                        pixels[index * channels + channel] = pixel(fromDecoded: values[base + channel * plane + index])
                    }
                }
                return PNGImage(checkedWidth: width, height: height, layout: layout, pixels: pixels, text: [])
            }
        }
    }

    /// `2 * (pixel / 255) - 1`, each step rounded to float32 as numpy and torch do.
    @inline(__always)
    public static func normalized(_ pixel: UInt8) -> Float {
        let unit = Float(pixel) / 255
        return 2 * unit - 1
    }

    /// `binarize` after `pil_to_numpy`: `pixel / 255` in float32, then 0 below 0.5 and 1 from 0.5 on.
    @inline(__always)
    public static func binarized(_ pixel: UInt8) -> Float {
        Float(pixel) / 255 < 0.5 ? 0 : 1
    }

    /// One decoded value to 8 bits: `(x * 0.5 + 0.5).clamp(0, 1)` in torch, `* 255` and `.round()`
    /// (half to even) in numpy float32, then the uint8 cast. NaN, which the cast leaves undefined, gives 0.
    @inline(__always)
    public static func pixel(fromDecoded value: Float) -> UInt8 {
        let unit = value * 0.5 + 0.5
        if unit.isNaN { return 0 }
        let clamped = min(max(unit, 0), 1)
        let scaled = clamped * 255
        return UInt8(scaled.rounded(.toNearestOrEven))
    }

    private static func tensor(_ images: [PNGImage], channels: Int, value: (UInt8) -> Float) throws -> ImageTensor {
        guard let first = images.first else { throw ImageTensorError.empty }
        for (index, image) in images.enumerated() where image.width != first.width || image.height != first.height {
            throw ImageTensorError.sizeMismatch(index: index, width: image.width, height: image.height,
                                                expectedWidth: first.width, expectedHeight: first.height)
        }
        let plane = first.width * first.height
        var values = [Float](repeating: 0, count: images.count * channels * plane)
        values.withUnsafeMutableBufferPointer { target in
            for (imageIndex, image) in images.enumerated() {
                let base = imageIndex * channels * plane
                image.pixels.withUnsafeBufferPointer { pixels in
                    for index in 0..<plane {
                        for channel in 0..<channels {
                            target[base + channel * plane + index] = value(pixels[index * channels + channel])
                        }
                    }
                }
            }
        }
        return ImageTensor(checkedShape: [images.count, channels, first.height, first.width], values: values)
    }
}
