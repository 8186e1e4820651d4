import KilnSampling

/// FLUX's latent geometry: the size of the latents for an image, and the position ids of the
/// packed image tokens and of the text tokens (FluxPipeline's `_prepare_latent_image_ids`).
public enum FluxLatents {
    /// The latent size FluxPipeline uses for an image: `2 * (pixels / (vaeFactor * 2))` per side,
    /// so both sides are even for the 2x2 packing.
    public static func latentSize(width: Int, height: Int, vaeScaleFactor: Int = 8) -> (height: Int, width: Int) {
        (2 * (height / (vaeScaleFactor * 2)), 2 * (width / (vaeScaleFactor * 2)))
    }

    /// `[N, C, h, w] -> [N, (h/2)(w/2), 4C]` (`_pack_latents`); h and w must be even.
    public static func pack(_ latents: ShapedArray) throws -> ShapedArray {
        guard latents.shape.count == 4, latents.shape[2] % 2 == 0, latents.shape[3] % 2 == 0 else {
            throw PipelineError.invalidRequest("packing needs [N, C, h, w] with even h and w, got \(latents.shape)")
        }
        return LatentLayout.packed(height: latents.shape[2], width: latents.shape[3]).arranged(latents)
    }

    /// `[N, (h/2)(w/2), 4C] -> [N, C, h, w]` (`_unpack_latents`) for latents of `height x width`.
    public static func unpack(_ packed: ShapedArray, height: Int, width: Int) throws -> ShapedArray {
        guard packed.shape.count == 3, height % 2 == 0, width % 2 == 0, packed.shape[1] == (height / 2) * (width / 2), packed.shape[2] % 4 == 0 else {
            throw PipelineError.invalidRequest("packed latents \(packed.shape) do not hold \(height)x\(width) latents in 2x2 patches")
        }
        return LatentLayout.packed(height: height, width: width).spatial(packed)
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
