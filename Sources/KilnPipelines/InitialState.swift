import KilnSampling

/// The latents a generation starts from, and what inpainting carries through the loop, drawn
/// from the generator in diffusers' order: VAE posterior samples and noise, one `randn` each.
struct InitialState {
    var latents: ShapedArray
    /// 9-channel inpainting: mask `[M, 1, h, w]` and masked-image latents `[M, 4, h, w]` joined
    /// on channels, appended to every model input.
    var inpaintingChannels: ShapedArray?
    /// 4-channel inpainting: the known region re-noised to each step's level and pasted back.
    var blend: LatentBlend?
}

/// diffusers' inpainting with an ordinary U-Net: after each step the kept region (mask 0) is
/// replaced by the init image's latents noised to the next timestep's level.
struct LatentBlend {
    /// `[N, 4, h, w]`.
    let imageLatents: ShapedArray
    /// The initial noise `[N, 4, h, w]`, reused for every re-noising as diffusers does.
    let noise: ShapedArray
    /// `[N, 1, h, w]`, 1 = repaint.
    let mask: ShapedArray

    func apply(to latents: ShapedArray, nextTimestep: Double?, scheduler: any Scheduler) throws -> ShapedArray {
        var known = imageLatents
        if let nextTimestep { known = try scheduler.addNoise(to: imageLatents, noise: noise, timestep: nextTimestep) }
        let spatial = mask.shape[2] * mask.shape[3]
        let channels = latents.shape[1]
        var result = latents
        for index in result.scalars.indices {
            let item = index / (channels * spatial)
            let weight = mask.scalars[item * spatial + index % spatial]
            result.scalars[index] = (1 - weight) * known.scalars[index] + weight * latents.scalars[index]
        }
        return result
    }
}

extension StableDiffusionPipeline {
    func initialState(_ request: GenerationRequest, plan: GenerationPlan, generator: NoiseGenerator) throws -> InitialState {
        let scheduler = plan.scheduler
        switch request.mode {
        case .textToImage:
            let sigma = scheduler.initNoiseSigma
            return InitialState(latents: generator.normal(shape: plan.latentShape).map { $0 * sigma })

        case .imageToImage:
            let image = try encode(request.initImage!, generator: generator).repeated(request.batchCount)
            let noise = generator.normal(shape: plan.latentShape)
            return InitialState(latents: try scheduler.addNoise(to: image, noise: noise, timestep: plan.timesteps[0]))

        case .inpainting:
            let initImage = request.initImage!, mask = request.mask!
            let fromNoiseOnly = request.strength == 1
            var imageLatents: ShapedArray?
            if !plan.usesInpaintingUNet || !fromNoiseOnly {
                imageLatents = try encode(initImage, generator: generator).repeated(request.batchCount)
            }
            let noise = generator.normal(shape: plan.latentShape)
            let sigma = scheduler.initNoiseSigma
            let latents = fromNoiseOnly
                ? noise.map { $0 * sigma }
                : try scheduler.addNoise(to: imageLatents!, noise: noise, timestep: plan.timesteps[0])
            // The masked image keeps only the pixels the mask leaves (mask < 0.5).
            let spatial = mask.scalars.count
            var masked = initImage
            for index in masked.scalars.indices where mask.scalars[index % spatial] >= 0.5 { masked.scalars[index] = 0 }
            let maskedLatents = try encode(masked, generator: generator).repeated(request.batchCount)
            let latentMask = Self.nearestDownsampled(mask, height: plan.latentShape[2], width: plan.latentShape[3]).repeated(request.batchCount)
            if plan.usesInpaintingUNet {
                let copies = plan.usesGuidance ? 2 : 1
                let extra = ShapedArray.concatenatedChannels([latentMask.repeated(copies), maskedLatents.repeated(copies)])
                return InitialState(latents: latents, inpaintingChannels: extra)
            }
            return InitialState(latents: latents, blend: LatentBlend(imageLatents: imageLatents!, noise: noise, mask: latentMask))
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
