import KilnSampling

/// A cheap preview of latents: each latent pixel's channels mapped to RGB by one linear
/// projection, as web UIs show while sampling ("Approx cheap" in AUTOMATIC1111). The factors
/// were fitted by others from each VAE's decoder; they apply to the sampler's latents (scaled,
/// before the VAE) and give RGB in about [-1, 1].
///
/// Shapes: latents `[N, C, h, w]` -> one `h x w` RGB image per batch entry.
public struct LatentRGBProjection: Sendable, Equatable {
    /// `C` rows of (red, green, blue) weights.
    public let factors: [[Float]]
    /// Added to each colour after the projection.
    public let bias: [Float]

    public init(factors: [[Float]], bias: [Float] = [0, 0, 0]) {
        self.factors = factors
        self.bias = bias
    }

    public var channels: Int { factors.count }

    /// Stable Diffusion 1.x/2.x (and DiT, which uses their VAE): ComfyUI's `comfy/latent_formats.py`
    /// `SD15.latent_rgb_factors`, the table stable-diffusion.cpp's `latent-preview.h` uses too.
    public static let stableDiffusion = LatentRGBProjection(factors: [
        [0.3512, 0.2297, 0.3227],
        [0.3250, 0.4974, 0.2350],
        [-0.2829, 0.1762, 0.2721],
        [-0.2120, -0.2616, -0.7177],
    ])

    /// SDXL's VAE: ComfyUI's `SDXL.latent_rgb_factors` and bias, as in stable-diffusion.cpp.
    public static let stableDiffusionXL = LatentRGBProjection(factors: [
        [0.3651, 0.4232, 0.4341],
        [-0.2533, -0.0042, 0.1068],
        [0.1076, 0.1111, -0.0362],
        [-0.3165, -0.2492, -0.2188],
    ], bias: [0.1084, -0.0175, -0.0011])

    /// SD3/3.5's 16-channel VAE: Stability AI's `sd3.5/sd3_impls.py` (via stable-diffusion.cpp).
    public static let stableDiffusion3 = LatentRGBProjection(factors: [
        [-0.0645, 0.0177, 0.1052], [0.0028, 0.0312, 0.0650], [0.1848, 0.0762, 0.0360], [0.0944, 0.0360, 0.0889],
        [0.0897, 0.0506, -0.0364], [-0.0020, 0.1203, 0.0284], [0.0855, 0.0118, 0.0283], [-0.0539, 0.0658, 0.1047],
        [-0.0057, 0.0116, 0.0700], [-0.0412, 0.0281, -0.0039], [0.1106, 0.1171, 0.1220], [-0.0248, 0.0682, -0.0481],
        [0.0815, 0.0846, 0.1207], [-0.0120, -0.0055, -0.0867], [-0.0749, -0.0634, -0.0456], [-0.1418, -0.1457, -0.1259],
    ])

    /// FLUX.1's 16-channel VAE: ComfyUI's `Flux.latent_rgb_factors` and bias (via stable-diffusion.cpp).
    public static let flux = LatentRGBProjection(factors: [
        [-0.0346, 0.0244, 0.0681], [0.0034, 0.0210, 0.0687], [0.0275, -0.0668, -0.0433], [-0.0174, 0.0160, 0.0617],
        [0.0859, 0.0721, 0.0329], [0.0004, 0.0383, 0.0115], [0.0405, 0.0861, 0.0915], [-0.0236, -0.0185, -0.0259],
        [-0.0245, 0.0250, 0.1180], [0.1008, 0.0755, -0.0421], [-0.0515, 0.0201, 0.0011], [0.0428, -0.0012, -0.0036],
        [0.0817, 0.0765, 0.0749], [-0.1264, -0.0522, -0.1103], [-0.0280, -0.0881, -0.0499], [-0.1262, -0.0982, -0.0778],
    ], bias: [-0.0329, -0.0718, -0.0851])

    /// Image `index` of `latents` `[N, C, h, w]` as 8-bit RGB, `(x + 1) / 2` clamped to [0, 1];
    /// nil when the channel count is not this projection's. NaN shows as black.
    public func preview(of latents: ShapedArray, index: Int = 0) -> PreviewImage? {
        guard latents.shape.count == 4, latents.shape[1] == channels, (0..<latents.shape[0]).contains(index) else { return nil }
        let (height, width) = (latents.shape[2], latents.shape[3])
        let plane = height * width
        let base = index * channels * plane
        var pixels = [UInt8](repeating: 0, count: plane * 3)
        for position in 0..<plane {
            for colour in 0..<3 {
                var value = bias[colour]
                for channel in 0..<channels { value += latents.scalars[base + channel * plane + position] * factors[channel][colour] }
                let unit = value * 0.5 + 0.5
                pixels[position * 3 + colour] = unit.isNaN ? 0 : UInt8((min(max(unit, 0), 1) * 255).rounded(.down))
            }
        }
        return PreviewImage(width: width, height: height, pixels: pixels)
    }
}

/// An 8-bit RGB image, rows top to bottom, three bytes a pixel.
public struct PreviewImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// Each pixel repeated `factor` times across and down (a latent preview at image size is `factor` 8).
    public func enlarged(by factor: Int) -> PreviewImage {
        guard factor > 1 else { return self }
        var scaled = [UInt8](repeating: 0, count: width * factor * height * factor * 3)
        for row in 0..<(height * factor) {
            for column in 0..<(width * factor) {
                let source = ((row / factor) * width + column / factor) * 3
                let target = (row * width * factor + column) * 3
                scaled[target] = pixels[source]
                scaled[target + 1] = pixels[source + 1]
                scaled[target + 2] = pixels[source + 2]
            }
        }
        return PreviewImage(width: width * factor, height: height * factor, pixels: scaled)
    }
}
