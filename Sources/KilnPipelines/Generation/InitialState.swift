import KilnSampling

/// The latents a generation starts from, and what inpainting carries through the loop, drawn
/// from the generator in diffusers' order: the init image's posterior sample, the noise, then
/// the masked image's posterior sample, one `randn` each.
struct InitialState {
    /// `[N, C, h, w]`.
    var latents: ShapedArray
    /// 9-channel inpainting U-Nets: the mask `[M, 1, h, w]` and masked image's latents
    /// `[M, C, h, w]` joined on channels, appended to every model input (M = the model batch).
    var inpaintingChannels: ShapedArray?
    /// Inpainting with any other denoiser: the kept region pasted back after every step.
    var blend: LatentBlend?

    /// `encode` turns an image `[1, 3, H, W]` into scaled latents `[1, C, h, w]` with one draw from
    /// the generator (the VAE's posterior sample).
    init(plan: DenoisingPlan, generator: NoiseGenerator, encode: (ShapedArray, NoiseGenerator) throws -> ShapedArray) throws {
        let scheduler = plan.scheduler
        let count = plan.latentShape[0]
        let noiseScale = plan.scalesInitialNoise ? scheduler.initNoiseSigma : 1
        switch plan.request.mode {
        case .textToImage:
            latents = generator.normal(shape: plan.latentShape).map { $0 * noiseScale }

        case .imageToImage(let image, _):
            let imageLatents = try encode(image, generator).repeated(count)
            let noise = generator.normal(shape: plan.latentShape)
            latents = try scheduler.addNoise(to: imageLatents, noise: noise, timestep: plan.timesteps[0])

        case .inpainting(let image, let mask, let strength):
            // diffusers encodes the image unless a 9-channel U-Net starts from pure noise.
            let fromNoiseOnly = strength == 1
            let imageLatents = !plan.appendsInpaintingChannels || !fromNoiseOnly ? try encode(image, generator).repeated(count) : nil
            let noise = generator.normal(shape: plan.latentShape)
            if let imageLatents, !fromNoiseOnly {
                latents = try scheduler.addNoise(to: imageLatents, noise: noise, timestep: plan.timesteps[0])
            } else {
                latents = noise.map { $0 * noiseScale }
            }
            // The masked image keeps only the pixels the mask leaves (mask < 0.5).
            let plane = mask.scalars.count
            var masked = image
            for index in masked.scalars.indices where mask.scalars[index % plane] >= 0.5 { masked.scalars[index] = 0 }
            let maskedLatents = try encode(masked, generator).repeated(count)
            let latentMask = Self.nearestDownsampled(mask, height: plan.latentShape[2], width: plan.latentShape[3]).repeated(count)
            if plan.appendsInpaintingChannels {
                let copies = plan.guidance.batchMultiplier
                inpaintingChannels = ShapedArray.concatenatedChannels([latentMask.repeated(copies), maskedLatents.repeated(copies)])
            } else if let imageLatents {
                let channels = plan.latentShape[1]
                blend = LatentBlend(image: imageLatents, noise: noise,
                                    mask: ShapedArray.concatenatedChannels(Array(repeating: latentMask, count: channels)))
            }
        }
    }

    /// torch's `interpolate(mode="nearest")` from `[1, 1, H, W]`: source index floor(i * H / h).
    static func nearestDownsampled(_ mask: ShapedArray, height: Int, width: Int) -> ShapedArray {
        let sourceHeight = mask.shape[2], sourceWidth = mask.shape[3]
        let rowScale = Float(sourceHeight) / Float(height), columnScale = Float(sourceWidth) / Float(width)
        var scalars = [Float]()
        scalars.reserveCapacity(height * width)
        for row in 0..<height {
            let sourceRow = min(Int((Float(row) * rowScale).rounded(.down)), sourceHeight - 1)
            for column in 0..<width {
                let sourceColumn = min(Int((Float(column) * columnScale).rounded(.down)), sourceWidth - 1)
                scalars.append(mask.scalars[sourceRow * sourceWidth + sourceColumn])
            }
        }
        return ShapedArray(shape: [1, 1, height, width], scalars: scalars)
    }
}

/// Inpainting without inpainting channels, as diffusers does it with an ordinary U-Net and in
/// FluxInpaintPipeline: after each step the kept region (mask 0) is replaced by the init image's
/// latents noised to the next timestep's level with the initial noise (clean after the last).
/// All three tensors have the loop's latent shape, in its layout.
struct LatentBlend {
    let image: ShapedArray
    let noise: ShapedArray
    /// 1 = repaint, broadcast over channels.
    let mask: ShapedArray

    /// The same blend in `layout`.
    func arranged(_ layout: LatentLayout) -> LatentBlend {
        LatentBlend(image: layout.arranged(image), noise: layout.arranged(noise), mask: layout.arranged(mask))
    }

    /// `(1 - mask) * image noised to nextTimestep + mask * latents`.
    func apply(to latents: ShapedArray, nextTimestep: Double?, scheduler: any Scheduler) throws -> ShapedArray {
        var known = image
        if let nextTimestep { known = try scheduler.addNoise(to: image, noise: noise, timestep: nextTimestep) }
        var result = latents
        for index in result.scalars.indices {
            let weight = mask.scalars[index]
            result.scalars[index] = (1 - weight) * known.scalars[index] + weight * latents.scalars[index]
        }
        return result
    }
}
