import Foundation
import KilnGraph
import KilnModels
import KilnSampling

/// Class-conditional generation with a DiT (Peebles & Xie, https://arxiv.org/abs/2212.09748),
/// step for step as diffusers' `DiTPipeline` computes it, random draws included.
///
/// - Latents `[N, C, S, S]` are one `randn` (not scaled by the scheduler's init sigma: DiTPipeline
///   does not scale them), N = the number of class labels, S = the transformer's `sample_size`.
/// - Under guidance (scale > 1) the model batch is `[latents, latents]` with labels
///   `[labels, null × N]`; guidance mixes only the first C (noise) channels,
///   `uncond + scale (cond - uncond)`, and the scheduler steps the whole doubled batch, so a
///   stochastic sampler draws noise for 2N images, as diffusers does. The first half is kept.
/// - Each step starts from the scheduler-scaled input (`scale_model_input`), as DiTPipeline's
///   loop does, and the latents are not multiplied by the initial noise sigma.
/// - With learned sigma (`out_channels = 2C`) the variance channels are dropped before the step.
/// - The final latents are divided by the VAE's scaling factor and decoded.
/// - The null class is the class table's last row, `num_embeds_ada_norm`; DiTPipeline writes 1000,
///   which is the same row for every released DiT (1000 ImageNet classes).
///
/// ```swift
/// let pipeline = try DiTPipeline(url: ditFolder, backend: try VulkanBackend())
/// var request = GenerationRequest(prompt: "", width: 256, height: 256, steps: 50, guidanceScale: 4, seed: 33)
/// request.classLabels = [207, 360]
/// let result = try pipeline.generate(request, isCancelled: { false })   // images [2, 3, 256, 256]
/// ```
public final class DiTPipeline {
    public let checkpoint: DiTCheckpoint
    public let backend: Backend
    /// Storage type of weights and activations on the backend (the CPU backend computes in f32).
    public let dtype: DType
    /// The model's own scheduler configuration (`scheduler/scheduler_config.json`).
    public let schedulerConfiguration: SchedulerConfiguration

    /// The transformer prepared for the last model batch; a new batch replaces it.
    private var denoiser: DiTDenoiser?
    private lazy var autoencoder = TiledAutoencoder(
        model: checkpoint.vae.model, backend: backend, weights: checkpoint.vae.weights, dtype: dtype)

    /// Opens a diffusers DiT folder, or a single transformer `.safetensors` (diffusers or original
    /// facebookresearch names) with `configFolder` a DiT folder for its config, VAE and scheduler.
    public convenience init(url: URL, configFolder: URL? = nil, backend: Backend, dtype: DType = .float16) throws {
        let checkpoint = try DiTCheckpoint(url: url, configFolder: configFolder)
        let scheduler = try SchedulerConfiguration.load(from: checkpoint.schedulerConfigurationURL)
        try self.init(checkpoint: checkpoint, schedulerConfiguration: scheduler, backend: backend, dtype: dtype)
    }

    /// Throws `PipelineError.insufficientMemory` when the transformer and VAE cannot fit `backend`.
    public init(checkpoint: DiTCheckpoint, schedulerConfiguration: SchedulerConfiguration, backend: Backend, dtype: DType = .float16) throws {
        self.checkpoint = checkpoint
        self.schedulerConfiguration = schedulerConfiguration
        self.backend = backend
        self.dtype = dtype
        var footprint = WeightFootprint()
        footprint.add("transformer", checkpoint.transformer.weights, dtype: dtype)
        footprint.add("vae", checkpoint.vae.weights, dtype: dtype)
        try footprint.check(on: backend)
    }

    /// The VAE's pixel-to-latent factor.
    public var downscaleFactor: Int { checkpoint.vae.configuration.downscaleFactor }
    /// Image side in pixels: DiTPipeline always samples at the transformer's `sample_size`.
    public var imageSize: Int { checkpoint.transformer.configuration.sampleSize * downscaleFactor }
    /// Number of classes; labels are `0..<classCount`, `classCount` itself is the null class.
    public var classCount: Int { checkpoint.transformer.configuration.nullClass }

    /// Checks `request` against this model without running anything.
    public func check(_ request: GenerationRequest) throws {
        _ = try plan(request)
    }

    /// Runs `request`, reporting each step to `progress`; stops with `PipelineError.cancelled` at
    /// the next step boundary once the task is cancelled.
    public func generate(_ request: GenerationRequest, progress: (GenerationProgress) -> Void = { _ in }) async throws -> GenerationResult {
        try generate(request, progress: progress, isCancelled: { Task.isCancelled })
    }

    /// The synchronous form; `isCancelled` is polled between steps.
    public func generate(
        _ request: GenerationRequest, progress: (GenerationProgress) -> Void = { _ in }, isCancelled: () -> Bool
    ) throws -> GenerationResult {
        let (scheduler, labels) = try plan(request)
        let configuration = checkpoint.transformer.configuration
        let start = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        let count = labels.count, channels = configuration.inChannels, size = configuration.sampleSize
        let guided = request.guidanceScale > 1
        let timesteps = scheduler.timesteps

        let generator = TorchGenerator(seed: request.seed)
        let latents = generator.normal(shape: [count, channels, size, size])                      // [N, C, S, S]
        var modelInput = guided ? latents.repeated(2) : latents                                     // [M, C, S, S]
        let modelLabels = guided ? labels + Array(repeating: configuration.nullClass, count: count) : labels
        let denoiser = try preparedDenoiser(shape: modelInput.shape)
        var lastStep = elapsed()
        for (index, timestep) in timesteps.enumerated() {
            if isCancelled() { throw PipelineError.cancelled }
            if guided { modelInput = modelInput.rows(0..<count).repeated(2) }
            // DiTPipeline steps from the scaled input, not from the latents before scaling: for
            // samplers whose scaling is not the identity (Euler's 1/sqrt(sigma^2 + 1)) this is
            // what its images are made of, so it is kept.
            modelInput = try scheduler.scaleModelInput(modelInput, timestep: timestep)
            var prediction = try denoiser.predict(modelInput, timestep: timestep, classLabels: modelLabels)   // [M, C_out, S, S]
            if guided { prediction = Self.guided(prediction, channels: channels, scale: request.guidanceScale) }
            if configuration.resolvedOutChannels / 2 == channels {
                prediction = Self.firstChannels(prediction, channels)                                    // [M, C, S, S]
            }
            modelInput = try scheduler.step(modelOutput: prediction, timestep: timestep, sample: modelInput, noise: generator)
            try StableDiffusionPipeline.requireFinite(modelInput, "the latents after step \(index + 1) of \(timesteps.count)")
            let now = elapsed()
            progress(GenerationProgress(stage: .denoising, step: index + 1, stepCount: timesteps.count,
                                        lastSeconds: now - lastStep, elapsedSeconds: now))
            lastStep = now
        }
        let denoising = elapsed()
        if isCancelled() { throw PipelineError.cancelled }

        let final = guided ? modelInput.rows(0..<count) : modelInput                                   // [N, C, S, S]
        let scale = checkpoint.vae.configuration.scalingFactor
        let images = ShapedArray(try autoencoder.decode(final.map { $0 / scale }.hostTensor()))      // [N, 3, 8S, 8S]
        try StableDiffusionPipeline.requireFinite(images, "the decoded image")
        let total = elapsed()
        progress(GenerationProgress(stage: .decoding, step: timesteps.count, stepCount: timesteps.count,
                                    lastSeconds: total - denoising, elapsedSeconds: total))
        return GenerationResult(latents: final, images: images,
                                stageSeconds: [.denoising: denoising, .decoding: total - denoising], timesteps: timesteps)
    }

    // MARK: Steps

    /// The request checked against this model, its scheduler with timesteps set, and its labels.
    private func plan(_ request: GenerationRequest) throws -> (any Scheduler, [Int]) {
        func fail(_ message: String) throws -> Never { throw PipelineError.invalidRequest(message) }
        try request.validate(downscaleFactor: downscaleFactor)
        guard let labels = request.classLabels, !labels.isEmpty else {
            try fail("a DiT model is class-conditional: give one or more class labels in 0..<\(classCount)")
        }
        if let bad = labels.first(where: { !(0..<classCount).contains($0) }) {
            try fail("class label \(bad) is outside 0..<\(classCount) (the model's num_embeds_ada_norm)")
        }
        if !request.prompt.isEmpty || request.negativePrompt != nil {
            try fail("a DiT model takes class labels, not a prompt or negative prompt")
        }
        if request.mode != .textToImage { throw PipelineError.unsupported("\(request.mode.rawValue) with a DiT model (DiTPipeline generates from noise only)") }
        if request.batchCount != 1 { try fail("batch count \(request.batchCount): a DiT batch is one image per class label") }
        if request.guidanceRescale > 0 { try fail("guidance rescale is not part of DiTPipeline") }
        if request.width != imageSize || request.height != imageSize {
            try fail("size \(request.width)x\(request.height): this DiT samples at \(imageSize)x\(imageSize) (sample_size \(checkpoint.transformer.configuration.sampleSize) x \(downscaleFactor))")
        }
        if request.sampler == .flowEuler {
            throw PipelineError.unsupported("the flow_euler sampler needs a flow-matching model (SD3, FLUX); DiT predicts noise")
        }
        let scheduler = try GenerationPlan.scheduler(for: request, configuration: schedulerConfiguration)
        try scheduler.setTimesteps(request.steps)
        return (scheduler, labels)
    }

    private func preparedDenoiser(shape: [Int]) throws -> DiTDenoiser {
        if let denoiser, denoiser.sampleShape == shape { return denoiser }
        denoiser = nil
        let prepared = try DiTDenoiser(checkpoint: checkpoint, sampleShape: shape, backend: backend, dtype: dtype)
        denoiser = prepared
        return prepared
    }

    /// `[2N, C_out, S, S]` (conditional half first) -> the same with the first `channels` of both
    /// halves replaced by `uncond + scale (cond - uncond)`; the variance channels are kept.
    static func guided(_ prediction: ShapedArray, channels: Int, scale: Float) -> ShapedArray {
        let half = prediction.shape[0] / 2
        let perImage = prediction.scalars.count / prediction.shape[0]
        let noiseValues = channels * prediction.shape.dropFirst(2).reduce(1, *)
        var result = prediction
        for image in 0..<half {
            for offset in 0..<noiseValues {
                let conditional = prediction.scalars[image * perImage + offset]
                let unconditional = prediction.scalars[(half + image) * perImage + offset]
                let mixed = unconditional + scale * (conditional - unconditional)
                result.scalars[image * perImage + offset] = mixed
                result.scalars[(half + image) * perImage + offset] = mixed
            }
        }
        return result
    }

    /// The first `channels` channels of `[M, C', ...]`.
    static func firstChannels(_ values: ShapedArray, _ channels: Int) -> ShapedArray {
        let spatial = values.shape.dropFirst(2).reduce(1, *)
        let perImage = values.shape[1] * spatial
        var scalars = [Float]()
        scalars.reserveCapacity(values.shape[0] * channels * spatial)
        for image in 0..<values.shape[0] {
            scalars += values.scalars[(image * perImage)..<(image * perImage + channels * spatial)]
        }
        return ShapedArray(shape: [values.shape[0], channels] + values.shape.dropFirst(2), scalars: scalars)
    }
}
