import KilnSampling

/// FLUX's latent layout: the VAE's `[B, C, h, w]` latents (C = 16) are cut into 2x2 patches and
/// each patch becomes one token of `C * 4` channels, ordered channel-major within the patch
/// (diffusers' FluxPipeline `_pack_latents` / `_unpack_latents`).
///
/// `[B, C, h, w] <-> [B, (h/2)(w/2), 4C]`, token `(row, column)` at index `row * (w/2) + column`,
/// channel `c * 4 + dy * 2 + dx`.
public enum FluxLatents {
    /// The latent size FluxPipeline uses for an image: `2 * (pixels / (vaeFactor * 2))` per side,
    /// so both sides are even for the packing.
    public static func latentSize(width: Int, height: Int, vaeScaleFactor: Int = 8) -> (height: Int, width: Int) {
        (2 * (height / (vaeScaleFactor * 2)), 2 * (width / (vaeScaleFactor * 2)))
    }

    /// `[B, C, h, w] -> [B, (h/2)(w/2), 4C]`.
    public static func pack(_ latents: ShapedArray) throws -> ShapedArray {
        guard latents.shape.count == 4, latents.shape[2] % 2 == 0, latents.shape[3] % 2 == 0 else {
            throw FluxPipelineError.invalidLatents("packing needs [B, C, h, w] with even h and w, got \(latents.shape)")
        }
        let (batch, channels, height, width) = (latents.shape[0], latents.shape[1], latents.shape[2], latents.shape[3])
        let (rows, columns) = (height / 2, width / 2)
        var packed = [Float](repeating: 0, count: latents.scalars.count)
        for b in 0..<batch { for c in 0..<channels { for y in 0..<height { for x in 0..<width {
            let token = (y / 2) * columns + x / 2
            let channel = c * 4 + (y % 2) * 2 + x % 2
            packed[(b * rows * columns + token) * channels * 4 + channel] = latents.scalars[((b * channels + c) * height + y) * width + x]
        } } } }
        return ShapedArray(shape: [batch, rows * columns, channels * 4], scalars: packed)
    }

    /// `[B, (h/2)(w/2), 4C] -> [B, C, h, w]` for latents of `height x width`.
    public static func unpack(_ packed: ShapedArray, height: Int, width: Int) throws -> ShapedArray {
        guard packed.shape.count == 3, height % 2 == 0, width % 2 == 0, packed.shape[1] == (height / 2) * (width / 2),
              packed.shape[2] % 4 == 0 else {
            throw FluxPipelineError.invalidLatents("packed latents \(packed.shape) do not hold \(height)x\(width) latents in 2x2 patches")
        }
        let (batch, channels, columns) = (packed.shape[0], packed.shape[2] / 4, width / 2)
        var latents = [Float](repeating: 0, count: packed.scalars.count)
        for b in 0..<batch { for c in 0..<channels { for y in 0..<height { for x in 0..<width {
            let token = (y / 2) * columns + x / 2
            let channel = c * 4 + (y % 2) * 2 + x % 2
            latents[((b * channels + c) * height + y) * width + x] = packed.scalars[(b * packed.shape[1] + token) * channels * 4 + channel]
        } } } }
        return ShapedArray(shape: [batch, channels, height, width], scalars: latents)
    }

    /// Position ids of the packed tokens `[(h/2)(w/2), 3]`: `(0, row, column)` per patch.
    public static func imageIDs(patchRows: Int, patchColumns: Int) -> ShapedArray {
        var ids = [Float]()
        ids.reserveCapacity(patchRows * patchColumns * 3)
        for row in 0..<patchRows { for column in 0..<patchColumns { ids += [0, Float(row), Float(column)] } }
        return ShapedArray(shape: [patchRows * patchColumns, 3], scalars: ids)
    }

    /// Position ids of the text tokens `[L, 3]`: all zero, as FluxPipeline sets them.
    public static func textIDs(length: Int) -> ShapedArray {
        ShapedArray(repeating: 0, shape: [length, 3])
    }
}

/// A FLUX generation that cannot run, naming what was wrong.
public enum FluxPipelineError: Error, CustomStringConvertible, Equatable {
    case invalidLatents(String)
    case invalidRequest(String)
    case invalidModel(String)

    public var description: String {
        switch self {
        case .invalidLatents(let message): "FLUX latents: \(message)"
        case .invalidRequest(let message): "FLUX request: \(message)"
        case .invalidModel(let message): "FLUX model: \(message)"
        }
    }
}
