import Foundation
import KilnGraph
import KilnModels
import KilnSampling

/// Text-to-image with Stable Diffusion 3 / 3.5 on any backend, step for step as diffusers'
/// `StableDiffusion3Pipeline` computes it: CLIP-L + CLIP-G + T5 prompt encoding (T5's states
/// zeros without a T5 encoder, as diffusers' `text_encoder_3=None`), unit Gaussian latents
/// `[N, 16, H/8, W/8]` from the seed, classifier-free guidance batched `[uncond; cond]`,
/// FlowMatchEuler with the scheduler config's shift, then the 16-channel VAE after
/// `latents / scaling_factor + shift_factor`.
///
/// ```swift
/// let pipeline = try StableDiffusion3Pipeline(url: sd3Folder, backend: try VulkanBackend())
/// let result = try await pipeline.generate(GenerationRequest(prompt: "a lighthouse", width: 1024, height: 1024, steps: 28, guidanceScale: 7))
/// ```
public final class StableDiffusion3Pipeline {
    public let folder: StableDiffusion3Folder
    public let backend: Backend
    /// Storage type of weights and activations on the backend (the CPU backend computes in f32).
    public let dtype: DType
    public let schedulerConfiguration: SchedulerConfiguration
    /// Whether guidance and the flow-matching Euler step run in the backend's pass after the
    /// transformer (`Graph.guidedStep`); false keeps them on the host. The two agree up to f32 rounding.
    public var fusesGuidedStep = true
    /// diffusers' default `max_sequence_length`: the T5 part of the context.
    public static let defaultMaxSequenceLength = 256

    private let promptEncoder: SD3PromptEncoder
    private var denoiser: (key: String, value: SD3Denoiser)?
    private lazy var autoencoder = TiledAutoencoder(
        model: AutoencoderKL(configuration: folder.vae.configuration), backend: backend, weights: folder.vae.weights, dtype: dtype)

    /// Opens a diffusers SD3 folder. Its T5 encoder runs unless `withoutT5` is set; then, as
    /// for folders without one, T5's states are zeros (diffusers' `text_encoder_3=None`).
    ///
    /// `url` may also be Stability's single file; `configFolder` (a diffusers SD3 folder) then
    /// supplies the configs, tokenizers, scheduler and whatever components the file lacks.
    public init(url: URL, configFolder: URL? = nil, backend: Backend, dtype: DType = .float16, withoutT5: Bool = false) throws {
        if StableDiffusionPipeline.isFolder(url) {
            folder = try StableDiffusion3Folder(url: url, loadingT5: !withoutT5)
        } else {
            guard let configFolder else {
                throw PipelineError.unsupported(
                    "\(url.path) is a single file without tokenizers or scheduler: pass a diffusers SD3 folder as its config folder")
            }
            folder = try StableDiffusion3Folder(singleFile: url, configFolder: configFolder, loadingT5: !withoutT5)
        }
        self.backend = backend
        self.dtype = dtype
        schedulerConfiguration = try SchedulerConfiguration.load(from: folder.schedulerConfigurationURL)
        promptEncoder = try SD3PromptEncoder(folder: folder, backend: backend, dtype: dtype)
        var footprint = WeightFootprint()
        footprint.add("text_encoder", folder.textEncoder.weights, dtype: dtype)
        footprint.add("text_encoder_2", folder.textEncoder2.weights, dtype: dtype)
        if let t5 = folder.textEncoder3 { footprint.add("text_encoder_3", t5.weights, dtype: dtype) }
        footprint.add("transformer", folder.transformer.weights, dtype: dtype)
        footprint.add("vae", folder.vae.weights, dtype: dtype)
        try footprint.check(on: backend)
    }

    /// Pixels per latent pixel (8 for SD3's VAE).
    public var downscaleFactor: Int { folder.vae.configuration.downscaleFactor }

    /// Checks `request` against this model without running anything.
    public func check(_ request: GenerationRequest, maxSequenceLength: Int = defaultMaxSequenceLength) throws {
        // Sizes must split into whole patches of whole latent pixels, as diffusers' check_inputs asks.
        try request.validate(downscaleFactor: downscaleFactor * folder.transformer.configuration.patchSize)
        guard request.mode == .textToImage else {
            throw PipelineError.unsupported("\(request.mode.rawValue) with SD3 models (text-to-image only so far)")
        }
        if let sampler = request.sampler, sampler != .flowEuler {
            throw PipelineError.unsupported("the \(sampler.rawValue) sampler with SD3: it predicts a flow velocity, use flow_euler (the default)")
        }
        if request.sigmaSpacing != nil {
            throw PipelineError.unsupported("--scheduler with SD3: the sigma spacing comes from the model's scheduler config")
        }
        if request.guidanceRescale > 0 {
            throw PipelineError.invalidRequest("guidance rescale is not part of diffusers' StableDiffusion3Pipeline")
        }
        guard maxSequenceLength > 0 else {
            throw PipelineError.invalidRequest("max sequence length \(maxSequenceLength): must be at least 1")
        }
        if let grid = folder.transformer.configuration.positionEmbeddingMaxSize {
            let patch = downscaleFactor * folder.transformer.configuration.patchSize
            if request.width / patch > grid || request.height / patch > grid {
                throw PipelineError.invalidRequest(
                    "size \(request.width)x\(request.height) exceeds the transformer's position grid of \(grid)x\(grid) patches (\(grid * patch) pixels)")
            }
        }
    }

    /// Runs `request`, reporting each stage and step to `progress`; stops with
    /// `PipelineError.cancelled` at the next step boundary once the task is cancelled.
    /// `maxSequenceLength` is diffusers' `max_sequence_length` (T5 tokens).
    public func generate(
        _ request: GenerationRequest, maxSequenceLength: Int = defaultMaxSequenceLength,
        progress: (GenerationProgress) -> Void = { _ in }
    ) async throws -> GenerationResult {
        try generate(request, maxSequenceLength: maxSequenceLength, progress: progress, isCancelled: { Task.isCancelled })
    }

    /// The synchronous form; `isCancelled` is polled between steps.
    public func generate(
        _ request: GenerationRequest, maxSequenceLength: Int = defaultMaxSequenceLength,
        progress: (GenerationProgress) -> Void = { _ in }, isCancelled: () -> Bool
    ) throws -> GenerationResult {
        try check(request, maxSequenceLength: maxSequenceLength)
        let start = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        var stageSeconds: [GenerationProgress.Stage: Double] = [:]

        // Text: [uncond x N; cond x N] under guidance, as diffusers batches it.
        let usesGuidance = request.guidanceScale > 1
        let count = request.batchCount
        let prompts = usesGuidance ? [request.negativePrompt ?? "", request.prompt] : [request.prompt]
        let encoded = try promptEncoder.encode(prompts, maxSequenceLength: maxSequenceLength)
        guard let pooledRows = encoded.pooled else { throw PipelineError.unsupported("SD3 prompt encoding gave no pooled embedding") }
        let context = ShapedArray.concatenated((0..<prompts.count).map { encoded.context.rows($0..<($0 + 1)).repeated(count) })
        let pooled = ShapedArray.concatenated((0..<prompts.count).map { pooledRows.rows($0..<($0 + 1)).repeated(count) })
        stageSeconds[.encodingText] = elapsed()

        // Scheduler: the config's shift, or the resolution-dependent one where the config asks for it.
        let scheduler = try FlowMatchEulerDiscreteScheduler(configuration: schedulerConfiguration)
        let latentShape = [count, folder.vae.configuration.latentChannels, request.height / downscaleFactor, request.width / downscaleFactor]
        let patch = folder.transformer.configuration.patchSize
        let mu = (schedulerConfiguration.useDynamicShifting ?? false)
            ? schedulerConfiguration.dynamicShift(imageSequenceLength: (latentShape[2] / patch) * (latentShape[3] / patch)) : nil
        try scheduler.setTimesteps(request.steps, mu: mu)
        progress(GenerationProgress(stage: .encodingText, step: 0, stepCount: scheduler.timesteps.count,
                                    lastSeconds: stageSeconds[.encodingText] ?? 0, elapsedSeconds: elapsed()))

        let generator = TorchGenerator(seed: request.seed)
        var latents = generator.normal(shape: latentShape)                                              // [N, 16, h, w]
        var modelShape = latentShape
        modelShape[0] *= usesGuidance ? 2 : 1
        let device = DeviceStep.chosen(for: scheduler, latentShape: latentShape, enabled: fusesGuidedStep)
        let denoiser = try preparedDenoiser(sampleShape: modelShape, contextShape: context.shape, pooledWidth: pooled.shape[1], deviceStep: device?.step)
        var last = elapsed()
        for (index, timestep) in scheduler.timesteps.enumerated() {
            if isCancelled() { throw PipelineError.cancelled }
            let input = usesGuidance ? latents.repeated(2) : latents
            if let affine = device?.scheduler {
                let step = try affine.affineStep(timestep: timestep, count: latents.scalars.count, noise: generator)
                latents = try denoiser.step(input, sample: latents, timestep: timestep, step: step, guidanceScale: request.guidanceScale,
                                            context: context, pooled: pooled)
            } else {
                var velocity = try denoiser.predict(input, timestep: timestep, context: context, pooled: pooled)
                if usesGuidance { velocity = ClassifierFreeGuidance.combine(velocity, scale: request.guidanceScale, rescale: 0) }
                latents = try scheduler.step(modelOutput: velocity, timestep: timestep, sample: latents, noise: generator)
            }
            try StableDiffusionPipeline.requireFinite(latents, "the latents after step \(index + 1) of \(scheduler.timesteps.count)")
            let now = elapsed()
            progress(GenerationProgress(stage: .denoising, step: index + 1, stepCount: scheduler.timesteps.count,
                                        lastSeconds: now - last, elapsedSeconds: now))
            last = now
        }
        stageSeconds[.denoising] = elapsed() - (stageSeconds[.encodingText] ?? 0)
        if isCancelled() { throw PipelineError.cancelled }

        let images = try decode(latents)
        stageSeconds[.decoding] = elapsed() - last
        progress(GenerationProgress(stage: .decoding, step: scheduler.timesteps.count, stepCount: scheduler.timesteps.count,
                                    lastSeconds: stageSeconds[.decoding] ?? 0, elapsedSeconds: elapsed()))
        return GenerationResult(latents: latents, images: images, stageSeconds: stageSeconds, timesteps: scheduler.timesteps)
    }

    /// Latents `[N, 16, h, w]` -> images `[N, 3, H, W]`, nominally in [-1, 1].
    func decode(_ latents: ShapedArray) throws -> ShapedArray {
        let configuration = folder.vae.configuration
        let unscaled = latents.map { $0 / configuration.scalingFactor + (configuration.shiftFactor ?? 0) }
        let decoded = ShapedArray(try autoencoder.decode(unscaled.hostTensor()))
        try StableDiffusionPipeline.requireFinite(decoded, "the decoded image")
        return decoded
    }

    private func preparedDenoiser(sampleShape: [Int], contextShape: [Int], pooledWidth: Int, deviceStep: DeviceStep?) throws -> SD3Denoiser {
        let key = "\(sampleShape)-\(contextShape)-\(deviceStep?.description ?? "prediction")"
        if let denoiser, denoiser.key == key { return denoiser.value }
        denoiser = nil
        let prepared = try SD3Denoiser(
            transformer: folder.transformer, sampleShape: sampleShape, contextShape: contextShape, pooledWidth: pooledWidth,
            backend: backend, dtype: dtype, deviceStep: deviceStep)
        denoiser = (key, prepared)
        return prepared
    }
}
