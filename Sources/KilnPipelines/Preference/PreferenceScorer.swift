import Foundation
import KilnGraph
import KilnModels
import KilnSampling

/// A preference-tuned U-Net and its frozen reference, resident together on one device, scored
/// on images as Diffusion-DPO's training objective sees them (Wallace et al., "Diffusion Model
/// Alignment Using Direct Preference Optimization", https://arxiv.org/abs/2311.12908; diffusers'
/// `examples/research_projects/diffusion_dpo/train_diffusion_dpo.py` and `_sdxl.py`).
///
/// For a prompt, images and draws (`PreferenceDraw`): every image is encoded by the reference's
/// VAE (the posterior mean times `scaling_factor`), noised at each draw's timestep with its noise
/// (DDPM's `add_noise` on the model's schedule), and both U-Nets predict on it under the prompt's
/// conditioning (no classifier-free guidance; SDXL's pooled text embedding and size ids as the
/// SDXL script builds them). The losses are the mean squared errors against the noise, or against
/// v for v-prediction models. Draws and images are batched through each U-Net as memory allows.
///
/// The text encoders, VAE and noise schedule are the reference's, as in training, where only the
/// U-Net is tuned.
public final class PreferenceScorer {
    /// The reference model; its text encoders, VAE and scheduler serve both U-Nets.
    public let reference: StableDiffusionPipeline
    /// `epsilon` or `v_prediction`, from the reference's scheduler config.
    public let predictionType: String
    /// Bytes the reference model and the tuned U-Net take on the device together.
    public let weightBytes: Int
    /// The most images one U-Net call takes (nil: as many as a pair's draws give, within the
    /// backend's activation budget).
    public let maximumBatch: Int?
    private let tunedUNet: ResidentUNet
    private let referenceUNet: ResidentUNet
    private let noiseScheduler: DDPMScheduler
    private var batchChoices: [String: Int] = [:]

    /// Opens the reference (a diffusers folder, or a single file with `reference.configFolder`)
    /// and the tuned U-Net (see `TunedUNetSource`) on `backend`. Refuses, before reading any
    /// weight, a family other than Stable Diffusion 1.x/2.x/XL, a tuned U-Net that does not fit
    /// the reference's conditioning, and models that cannot be resident together.
    /// With `tunedLoRA`, the tuned U-Net is `tuned`'s with that LoRA merged (a DPO LoRA on its
    /// base); a LoRA that also changes the text encoders is refused, since both models share them.
    public init(
        reference source: Pipelines.Source, tuned: URL, tunedLoRA: LoRARequest? = nil, backend: Backend, dtype: DType = .float16,
        maximumBatch: Int? = nil
    ) throws {
        let family = try Pipelines.family(of: source)
        guard [.stableDiffusion1, .stableDiffusion2, .stableDiffusionXL].contains(family) else {
            throw PipelineError.unsupported("preference scoring runs Stable Diffusion 1.x, 2.x and XL models; the reference is \(family.displayName)")
        }
        if let maximumBatch, maximumBatch < 1 { throw PipelineError.invalidRequest("batch size \(maximumBatch): must be at least 1") }
        do {
            reference = try StableDiffusionPipeline(url: source.url, configFolder: source.configFolder, vae: source.vae, backend: backend, dtype: dtype)
        } catch let error as PipelineError {
            throw error
        } catch {
            throw PipelineError.invalidModel("\(source.url.path): \(error)")
        }
        var tunedComponent = try TunedUNetSource.load(tuned, configFolder: source.configFolder ?? (source.url.isExistingFolder ? source.url : nil))
        let tunedResidency = ResidentWeights(label: "tuned unet")
        if let tunedLoRA {
            let weights = AdaptedWeights(label: "unet", base: tunedComponent.weights, residency: tunedResidency)
            _ = try LoRAAdapters(slots: [.init(names: .unet(tunedComponent), weights: weights)], backend: backend).apply([tunedLoRA])
            tunedComponent = ModelComponent(configuration: tunedComponent.configuration, weights: weights.current)
        }
        do {
            noiseScheduler = try DDPMScheduler(configuration: reference.schedulerConfiguration)
        } catch {
            throw PipelineError.unsupported("the reference's scheduler config as DDPMScheduler: \(error)")
        }
        predictionType = reference.schedulerConfiguration.predictionType ?? "epsilon"
        guard predictionType == "epsilon" || predictionType == "v_prediction" else {
            throw PipelineError.unsupported("prediction_type \(predictionType): the Diffusion-DPO loss is defined for epsilon and v_prediction models")
        }
        try Self.checkCompatible(tuned: tunedComponent.configuration, tunedURL: tuned, reference: reference)

        var footprint = WeightFootprint()
        reference.promptEncoder.addWeights(to: &footprint)
        footprint.add("reference unet", reference.checkpoint.unet.weights, dtype: reference.dtype)
        footprint.add("tuned unet", tunedComponent.weights, dtype: reference.dtype)
        // The pipeline keeps SDXL's VAE in f32 (it overflows f16), as the SDXL training script does.
        footprint.add("vae", reference.checkpoint.vae.weights, dtype: family == .stableDiffusionXL ? .float32 : reference.dtype)
        do {
            try footprint.check(on: backend)
        } catch PipelineError.insufficientMemory(let message) {
            throw PipelineError.insufficientMemory("the tuned and the reference model must be resident together: \(message)")
        }
        weightBytes = footprint.totalBytes
        referenceUNet = ResidentUNet(reference.checkpoint.unet, residency: reference.unetWeights.residency, backend: backend, dtype: reference.dtype)
        tunedUNet = ResidentUNet(tunedComponent, residency: tunedResidency, backend: backend, dtype: reference.dtype)
        self.maximumBatch = maximumBatch
    }

    public var family: ModelFamily { reference.family }
    public var backend: Backend { reference.backend }
    public var dtype: DType { reference.dtype }
    /// The model's native size in pixels, the default scoring resolution.
    public var nativeResolution: Int { reference.defaults.width }
    /// The pixel multiple a resolution must be (the VAE's downscale factor).
    public var resolutionMultiple: Int { reference.vae.downscaleFactor }
    /// Training timesteps a draw's timestep is taken from (`num_train_timesteps`).
    public var trainTimestepCount: Int { noiseScheduler.trainTimestepCount }

    /// One image's latent shape `[1, C, R/f, R/f]` at resolution `resolution`.
    public func latentShape(resolution: Int) -> [Int] {
        [1, reference.vae.latentChannels, resolution / resolutionMultiple, resolution / resolutionMultiple]
    }

    /// Checks a scoring resolution: positive, a multiple of the VAE's factor, within the side limit.
    public func checkResolution(_ resolution: Int) throws {
        if resolution <= 0 || resolution % resolutionMultiple != 0 || resolution > GenerationRequest.Limits.side {
            throw PipelineError.invalidRequest(
                "resolution \(resolution): must be a positive multiple of \(resolutionMultiple), at most \(GenerationRequest.Limits.side)")
        }
    }

    /// The latents Diffusion-DPO noises: every image `[1, 3, R, R]` through the reference's VAE,
    /// the posterior mean times `scaling_factor`, `[N, C, R/f, R/f]`.
    public func posteriorMeans(_ images: [PreferenceImage]) throws -> ShapedArray {
        reference.generationLock.lock()
        defer { reference.generationLock.unlock() }
        do {
            return try reference.vae.encodeMean(ShapedArray.concatenated(images.map(\.pixels)))
        } catch let error as PipelineError {
            throw error
        } catch {
            throw PipelineError.failed("while encoding the images: \(error)")
        }
    }

    /// The tuned and reference losses of every image under every draw, `[draw][image]`. Every
    /// image must be `[1, 3, R, R]` at one R and every draw's noise `latentShape(resolution: R)`.
    public func losses(prompt: String, images: [PreferenceImage], draws: [PreferenceDraw]) throws -> [[PreferenceLosses]] {
        guard let resolution = images.first?.resolution else { return draws.map { _ in [] } }
        try checkResolution(resolution)
        for image in images where image.pixels.shape != [1, 3, resolution, resolution] {
            throw PipelineError.invalidRequest("an image is \(image.pixels.shape), the others [1, 3, \(resolution), \(resolution)]")
        }
        let latentShape = latentShape(resolution: resolution)
        for draw in draws where draw.noise.shape != latentShape {
            throw PipelineError.invalidRequest("a draw's noise is \(draw.noise.shape), the latents \(latentShape)")
        }
        reference.generationLock.lock()
        defer { reference.generationLock.unlock() }
        var stage = GenerationProgress.Stage.encodingText
        do {
            let embeddings = try reference.promptEncoder.encode([prompt])
            try Finiteness.require(embeddings.context, stage: .encodingText, "the text encoders' outputs")
            stage = .encodingImage
            let latents = try reference.vae.encodeMean(ShapedArray.concatenated(images.map(\.pixels)))
            stage = .denoising
            return try denoisingLosses(
                latents: latents, images: images, draws: draws, embeddings: embeddings, resolution: resolution)
        } catch let error as PipelineError {
            throw error
        } catch {
            throw PipelineError.failed("while \(stage.activity): \(error)")
        }
    }

    /// One entry per (draw, image), draw-major: noised latents, target, conditioning, losses.
    private func denoisingLosses(
        latents: ShapedArray, images: [PreferenceImage], draws: [PreferenceDraw], embeddings: PromptEncoder.Embeddings, resolution: Int
    ) throws -> [[PreferenceLosses]] {
        struct Entry {
            let sample: ShapedArray
            let target: ShapedArray
            let timestep: Float
            let timeIDs: [Float]
        }
        var entries: [Entry] = []
        for draw in draws {
            let timestep = Double(draw.timestep)
            for (index, image) in images.enumerated() {
                let clean = latents.rows(index..<(index + 1))
                let noisy = try noiseScheduler.addNoise(to: clean, noise: draw.noise, timestep: timestep)
                let target = predictionType == "epsilon"
                    ? draw.noise : try noiseScheduler.velocity(sample: clean, noise: draw.noise, timestep: timestep)
                let timeIDs = (image.originalSize + image.cropTopLeft + [resolution, resolution]).map(Float.init)
                entries.append(Entry(sample: noisy, target: target, timestep: Float(draw.timestep), timeIDs: timeIDs))
            }
        }
        var losses: [PreferenceLosses] = []
        let batch = try batchSize(entryCount: entries.count, sampleShape: latents.shape, embeddings: embeddings)
        var start = 0
        while start < entries.count {
            let chunk = Array(entries[start..<min(start + batch, entries.count)])
            let sample = ShapedArray.concatenated(chunk.map(\.sample))
            let conditioning = conditioning(embeddings, count: chunk.count, timeIDs: chunk.map(\.timeIDs))
            let timesteps = chunk.map(\.timestep)
            let tuned = try tunedUNet.predict(sample: sample, timesteps: timesteps, conditioning: conditioning)
            let referenced = try referenceUNet.predict(sample: sample, timesteps: timesteps, conditioning: conditioning)
            for (offset, entry) in chunk.enumerated() {
                let loss = PreferenceLosses(
                    model: Self.meanSquaredError(tuned, row: offset, target: entry.target),
                    reference: Self.meanSquaredError(referenced, row: offset, target: entry.target))
                guard loss.model.isFinite, loss.reference.isFinite else {
                    throw PipelineError.nonFinite(
                        stage: .denoising, step: nil,
                        detail: "the \(loss.model.isFinite ? "reference" : "tuned") U-Net's loss is \(loss.model.isFinite ? loss.reference : loss.model) at timestep \(Int(entry.timestep))")
                }
                losses.append(loss)
            }
            start += chunk.count
        }
        return draws.indices.map { Array(losses[($0 * images.count)..<(($0 + 1) * images.count)]) }
    }

    /// The U-Net inputs besides sample and timesteps for `count` entries: the prompt's context,
    /// and for SDXL its pooled embedding and each entry's six size ids.
    private func conditioning(_ embeddings: PromptEncoder.Embeddings, count: Int, timeIDs: [[Float]]) -> [String: HostTensor] {
        var inputs = ["context": embeddings.context.repeated(count).hostTensor()]
        if reference.checkpoint.unet.configuration.additionEmbedType == "text_time", let pooled = embeddings.pooled {
            inputs["text_embeds"] = pooled.repeated(count).hostTensor()
            inputs["time_ids"] = HostTensor(shape: [count, 6], scalars: timeIDs.flatMap { $0 })
        }
        return inputs
    }

    /// Images per U-Net call: all entries, at most `maximumBatch`, halved while one call's planned
    /// activations exceed the backend's activation budget (down to one image).
    private func batchSize(entryCount: Int, sampleShape: [Int], embeddings: PromptEncoder.Embeddings) throws -> Int {
        var batch = min(entryCount, maximumBatch ?? entryCount)
        let key = "\(batch)-\(sampleShape)"
        if let chosen = batchChoices[key] { return chosen }
        let budget = backend.activationBudgetBytes
        while true {
            let shapes = conditioning(embeddings, count: batch, timeIDs: Array(repeating: [Float](repeating: 0, count: 6), count: batch))
                .mapValues { $0.shape.dimensions }
            let bytes = try referenceUNet.plannedArenaBytes(sampleShape: [batch] + sampleShape.dropFirst(), conditioning: shapes)
            if bytes <= budget { break }
            guard batch > 1 else {
                throw PipelineError.insufficientMemory(
                    "one U-Net forward at \(sampleShape[2] * resolutionMultiple) pixels needs \(MemoryLimitError.format(bytes)) of activations, more than \(backend.name)'s \(MemoryLimitError.format(budget)) budget")
            }
            batch = (batch + 1) / 2
        }
        batchChoices[key] = batch
        return batch
    }

    /// The mean over one batch row of `(prediction - target)^2`, accumulated in float64.
    static func meanSquaredError(_ prediction: ShapedArray, row: Int, target: ShapedArray) -> Double {
        let size = target.scalars.count
        let base = row * size
        var sum = 0.0
        for index in 0..<size {
            let difference = Double(prediction.scalars[base + index] - target.scalars[index])
            sum += difference * difference
        }
        return sum / Double(max(size, 1))
    }

    /// The tuned U-Net must take the reference's latents and conditioning.
    private static func checkCompatible(tuned: UNetConfiguration, tunedURL: URL, reference: StableDiffusionPipeline) throws {
        let base = reference.checkpoint.unet.configuration
        func refuse(_ what: String) throws -> Never {
            throw PipelineError.invalidModel("\(tunedURL.path): the tuned U-Net \(what); it cannot be scored against the reference \(reference.modelURL.path)")
        }
        if tuned.inChannels != base.inChannels || tuned.outChannels != base.outChannels {
            try refuse("has \(tuned.inChannels) input and \(tuned.outChannels) output channels, the reference's \(base.inChannels) and \(base.outChannels)")
        }
        if tuned.inChannels != reference.vae.latentChannels { try refuse("takes \(tuned.inChannels) channels, the VAE gives \(reference.vae.latentChannels)") }
        if tuned.crossAttentionDimension.first != reference.promptEncoder.contextWidth {
            try refuse("attends to \(tuned.crossAttentionDimension.first ?? 0)-wide text states, the reference's text encoders give \(reference.promptEncoder.contextWidth)")
        }
        if tuned.additionEmbedType != base.additionEmbedType
            || tuned.projectionClassEmbeddingsInputDimension != base.projectionClassEmbeddingsInputDimension {
            try refuse("has added conditioning \(tuned.additionEmbedType ?? "none") (\(tuned.projectionClassEmbeddingsInputDimension ?? 0) inputs), the reference \(base.additionEmbedType ?? "none") (\(base.projectionClassEmbeddingsInputDimension ?? 0))")
        }
        for (name, configuration) in [("tuned", tuned), ("reference", base)] where configuration.timestepConditionDimension != nil {
            throw PipelineError.unsupported("the \(name) U-Net is LCM-distilled (time_cond_proj_dim): Diffusion-DPO scores U-Nets without a guidance embedding")
        }
    }
}
