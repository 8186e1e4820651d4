import KilnSampling

/// How the denoising loop holds latents. Most denoisers take the VAE's `[N, C, h, w]`; FLUX cuts
/// them into 2x2 patches, one token of `4C` channels each, ordered channel-major within the
/// patch (diffusers' FluxPipeline `_pack_latents` / `_unpack_latents`):
/// `[N, C, h, w] <-> [N, (h/2)(w/2), 4C]`, token `(row, column)` at `row * (w/2) + column`,
/// channel `c * 4 + dy * 2 + dx`.
enum LatentLayout: Sendable, Equatable {
    case spatial
    /// 2x2 patches of latents `height x width` (both even).
    case packed(height: Int, width: Int)

    /// `[N, C, h, w]` in this layout.
    func arranged(_ latents: ShapedArray) -> ShapedArray {
        guard case .packed = self else { return latents }
        let (batch, channels, height, width) = (latents.shape[0], latents.shape[1], latents.shape[2], latents.shape[3])
        var packed = [Float](repeating: 0, count: latents.scalars.count)
        Self.forEachPosition(batch: batch, channels: channels, height: height, width: width) { spatial, token in
            packed[token] = latents.scalars[spatial]
        }
        return ShapedArray(shape: [batch, (height / 2) * (width / 2), channels * 4], scalars: packed)
    }

    /// Latents in this layout back as `[N, C, h, w]`.
    func spatial(_ values: ShapedArray) -> ShapedArray {
        guard case .packed(let height, let width) = self else { return values }
        let (batch, channels) = (values.shape[0], values.shape[2] / 4)
        var latents = [Float](repeating: 0, count: values.scalars.count)
        Self.forEachPosition(batch: batch, channels: channels, height: height, width: width) { spatial, token in
            latents[spatial] = values.scalars[token]
        }
        return ShapedArray(shape: [batch, channels, height, width], scalars: latents)
    }

    /// Calls `body(spatial index, packed index)` for every element.
    private static func forEachPosition(batch: Int, channels: Int, height: Int, width: Int, _ body: (Int, Int) -> Void) {
        let (rows, columns) = (height / 2, width / 2)
        for b in 0..<batch { for c in 0..<channels { for y in 0..<height { for x in 0..<width {
            let token = b * rows * columns + (y / 2) * columns + x / 2
            body(((b * channels + c) * height + y) * width + x, token * channels * 4 + c * 4 + (y % 2) * 2 + x % 2)
        } } } }
    }
}
