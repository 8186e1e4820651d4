import Foundation
import KilnGraph
import KilnModels
import KilnSampling

/// Text-to-image, image-to-image and inpainting with a Stable Diffusion 1.x/2.x/SDXL model on
/// any backend, step for step as diffusers' `StableDiffusionPipeline`,
/// `StableDiffusionImg2ImgPipeline`, `StableDiffusionInpaintPipeline` and
/// `StableDiffusionXLPipeline` (txt2img) compute it, random draws included: with the same seed
/// and sampler the final latents equal diffusers' up to float rounding.
///
/// ```swift
/// let pipeline = try StableDiffusionPipeline(url: modelFolder, backend: try VulkanBackend())
/// var request = GenerationRequest(prompt: "a lighthouse at dusk", width: 512, height: 512, steps: 25, seed: 42)
/// request.sampler = .eulerAncestral
/// let result = try await pipeline.generate(request) { progress in print(progress.step, progress.stepCount) }
/// ```
///
/// Graphs are built and prepared on first use per shape (text encoders per prompt count, the
/// U-Net per batch and latent size, the VAE per image size) and reused by later generations.
public final class StableDiffusionPipeline {
    public let checkpoint: StableDiffusionCheckpoint
    public let backend: Backend
    /// Storage type of weights and activations on the backend (the CPU backend computes in f32).
    public let dtype: DType
    /// The model's own scheduler configuration (`scheduler/scheduler_config.json`).
    public let schedulerConfiguration: SchedulerConfiguration
    /// SDXL's `force_zeros_for_empty_prompt`: without a negative prompt the unconditional
    /// embeddings are zeros rather than the encoding of "".
    public let zeroEmptyNegativePrompt: Bool
    /// The U-Net used for inpainting when the checkpoint's own U-Net has 4 input channels and a
    /// 9-channel inpainting U-Net was supplied separately; nil uses `checkpoint.unet`.
    public let inpaintingUNet: StableDiffusionCheckpoint.Component<UNetConfiguration>?
    /// Whether guidance and the scheduler step run in the backend's pass after the U-Net
    /// (`Graph.guidedStep`) where the scheduler's steps are affine (Euler, Euler ancestral, DDIM
    /// without clipping) and no guidance rescale is asked for; false keeps them on the host. The
    /// two agree up to f32 rounding.
    public var fusesGuidedStep = true

    private let promptEncoder: PromptEncoder
    /// The U-Net prepared for the last shape used; a new shape replaces it, so the device never
    /// holds two copies of the U-Net's weights.
    private var denoiser: (key: String, value: Denoiser)?
    private lazy var autoencoder = TiledAutoencoder(
        model: checkpoint.vae.model, backend: backend, weights: checkpoint.vae.weights, dtype: vaeDType)

    /// Opens a diffusers folder (or a single file with a diffusers `configFolder` for its configs,
    /// tokenizers and scheduler).
    public convenience init(
        url: URL, configFolder: URL? = nil, vae: URL? = nil, inpaintingUNet: URL? = nil,
        backend: Backend, dtype: DType = .float16
    ) throws {
        let checkpoint = try StableDiffusionCheckpoint(url: url, configFolder: configFolder, vae: vae)
        guard let folder = configFolder ?? (Self.isFolder(url) ? url : nil) else {
            throw PipelineError.unsupported(
                "\(url.path) is a single file without tokenizer or scheduler: pass a diffusers folder of the same family as its config folder")
        }
        let tokenizers = try ["tokenizer", "tokenizer_2"].prefix(checkpoint.family == .sdxl ? 2 : 1).map { name in
            try CLIPTokenizer.load(folder: folder.appendingPathComponent(name))
        }
        let scheduler = try SchedulerConfiguration.load(from: folder.appendingPathComponent("scheduler/scheduler_config.json"))
        let index = try? JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("model_index.json"))) as? [String: Any]
        let zeros = checkpoint.family == .sdxl && (index?["force_zeros_for_empty_prompt"] as? Bool ?? true)
        let inpainting = try inpaintingUNet.map { unetFolder in
            StableDiffusionCheckpoint.Component(
                configuration: try UNetConfiguration.load(unetFolder.appendingPathComponent("config.json")),
                weights: try SafeTensorsSource.component(folder: unetFolder, baseName: "diffusion_pytorch_model") as TensorSource)
        }
        try self.init(
            checkpoint: checkpoint, tokenizers: tokenizers, schedulerConfiguration: scheduler,
            zeroEmptyNegativePrompt: zeros, inpaintingUNet: inpainting, backend: backend, dtype: dtype)
    }

    public init(
        checkpoint: StableDiffusionCheckpoint, tokenizers: [CLIPTokenizer], schedulerConfiguration: SchedulerConfiguration,
        zeroEmptyNegativePrompt: Bool = false, inpaintingUNet: StableDiffusionCheckpoint.Component<UNetConfiguration>? = nil,
        backend: Backend, dtype: DType = .float16
    ) throws {
        self.checkpoint = checkpoint
        self.schedulerConfiguration = schedulerConfiguration
        self.zeroEmptyNegativePrompt = zeroEmptyNegativePrompt
        self.inpaintingUNet = inpaintingUNet
        self.backend = backend
        self.dtype = dtype
        var encoders = [PromptEncoder.Encoder]()
        let sdxl = checkpoint.family == .sdxl
        guard tokenizers.count == (sdxl ? 2 : 1) else {
            throw PipelineError.unsupported("\(checkpoint.family.rawValue) needs \(sdxl ? 2 : 1) tokenizer(s), got \(tokenizers.count)")
        }
        encoders.append(.init(tokenizer: tokenizers[0], component: checkpoint.textEncoder, usesPenultimateState: sdxl, suppliesPooled: false))
        if let second = checkpoint.textEncoder2 {
            encoders.append(.init(tokenizer: tokenizers[1], component: second, usesPenultimateState: true, suppliesPooled: true))
        }
        promptEncoder = PromptEncoder(encoders: encoders, backend: backend, dtype: dtype)
        try weightFootprint.check(on: backend)
    }

    /// Every weight the pipeline uploads, as the device stores it.
    var weightFootprint: WeightFootprint {
        var footprint = WeightFootprint()
        footprint.add("text_encoder", checkpoint.textEncoder.weights, dtype: dtype)
        if let second = checkpoint.textEncoder2 { footprint.add("text_encoder_2", second.weights, dtype: dtype) }
        // One U-Net is resident at a time (the denoiser replaces it), so the larger one counts.
        let unets = [checkpoint.unet.weights] + (inpaintingUNet.map { [$0.weights] } ?? [])
        footprint.components.append(("unet", unets.map { WeightFootprint.bytes(of: $0, dtype: dtype) }.max() ?? 0))
        footprint.add("vae", checkpoint.vae.weights, dtype: vaeDType)
        return footprint
    }

    /// SDXL's VAE overflows f16 (diffusers upcasts it, `force_upcast`); the others keep `dtype`.
    private var vaeDType: DType { checkpoint.family == .sdxl ? .float32 : dtype }

    /// The VAE's pixel-to-latent factor (8 for every Stable Diffusion VAE).
    public var downscaleFactor: Int { checkpoint.vae.configuration.downscaleFactor }

    // MARK: Generating

    /// Runs `request`, reporting each stage and step to `progress`; stops with
    /// `PipelineError.cancelled` at the next step boundary once the task is cancelled.
    public func generate(
        _ request: GenerationRequest, progress: (GenerationProgress) -> Void = { _ in }
    ) async throws -> GenerationResult {
        try generate(request, progress: progress, isCancelled: { Task.isCancelled })
    }

    /// The synchronous form; `isCancelled` is polled between steps.
    public func generate(
        _ request: GenerationRequest, progress: (GenerationProgress) -> Void = { _ in }, isCancelled: () -> Bool
    ) throws -> GenerationResult {
        let plan = try GenerationPlan(request: request, pipeline: self)
        let clock = StageClock()
        var stageSeconds: [GenerationProgress.Stage: Double] = [:]

        let conditioning = try textConditioning(request, plan: plan)
        stageSeconds[.encodingText] = clock.lap()
        progress(GenerationProgress(stage: .encodingText, step: 0, stepCount: plan.timesteps.count,
                                    lastSeconds: stageSeconds[.encodingText]!, elapsedSeconds: clock.elapsed))

        let generator = TorchGenerator(seed: request.seed)
        var state = try initialState(request, plan: plan, generator: generator)
        let device = DeviceStep.chosen(for: plan.scheduler, latentShape: state.latents.shape, enabled: fusesGuidedStep && request.guidanceRescale <= 0)
        let denoiser = try preparedDenoiser(plan: plan, conditioning: conditioning, deviceStep: device?.step)
        for (index, timestep) in plan.timesteps.enumerated() {
            if isCancelled() { throw PipelineError.cancelled }
            var input = plan.usesGuidance ? state.latents.repeated(2) : state.latents
            input = try plan.scheduler.scaleModelInput(input, timestep: timestep)
            if let extra = state.inpaintingChannels {
                input = ShapedArray.concatenatedChannels([input, extra])
            }
            if let affine = device?.scheduler {
                let step = try affine.affineStep(timestep: timestep, count: state.latents.scalars.count, noise: generator)
                state.latents = try denoiser.step(input, latents: state.latents, timestep: timestep, step: step,
                                                  guidanceScale: request.guidanceScale, conditioning: conditioning)
            } else {
                var prediction = try denoiser.predict(input, timestep: timestep, conditioning: conditioning)
                if plan.usesGuidance {
                    prediction = ClassifierFreeGuidance.combine(prediction, scale: request.guidanceScale, rescale: request.guidanceRescale)
                }
                state.latents = try plan.scheduler.step(modelOutput: prediction, timestep: timestep, sample: state.latents, noise: generator)
            }
            if let blend = state.blend {
                state.latents = try blend.apply(to: state.latents, nextTimestep: plan.timesteps.dropFirst(index + 1).first, scheduler: plan.scheduler)
            }
            try Self.requireFinite(state.latents, "the latents after step \(index + 1) of \(plan.timesteps.count)")
            progress(GenerationProgress(stage: .denoising, step: index + 1, stepCount: plan.timesteps.count,
                                        lastSeconds: clock.lap(), elapsedSeconds: clock.elapsed))
        }
        stageSeconds[.denoising] = clock.elapsed - stageSeconds[.encodingText]!
        if isCancelled() { throw PipelineError.cancelled }

        let images = try decode(state.latents)
        stageSeconds[.decoding] = clock.lap()
        progress(GenerationProgress(stage: .decoding, step: plan.timesteps.count, stepCount: plan.timesteps.count,
                                    lastSeconds: stageSeconds[.decoding]!, elapsedSeconds: clock.elapsed))
        return GenerationResult(latents: state.latents, images: images, stageSeconds: stageSeconds, timesteps: plan.timesteps)
    }

    /// The U-Net conditioning for the whole batch: `[uncond × N, cond × N]` under guidance.
    private func textConditioning(_ request: GenerationRequest, plan: GenerationPlan) throws -> Denoiser.Conditioning {
        let count = request.batchCount
        var positive: PromptEncoder.Embeddings
        var negative: PromptEncoder.Embeddings?
        if plan.usesGuidance {
            if request.negativePrompt == nil && zeroEmptyNegativePrompt {
                positive = try promptEncoder.encode([request.prompt])
                negative = promptEncoder.zeros(count: 1, like: positive)
            } else {
                let both = try promptEncoder.encode([request.negativePrompt ?? "", request.prompt])
                negative = PromptEncoder.Embeddings(context: both.context.rows(0..<1), pooled: both.pooled?.rows(0..<1))
                positive = PromptEncoder.Embeddings(context: both.context.rows(1..<2), pooled: both.pooled?.rows(1..<2))
            }
        } else {
            positive = try promptEncoder.encode([request.prompt])
        }
        let halves = [negative, positive].compactMap { $0 }
        let context = ShapedArray.concatenated(halves.map { $0.context.repeated(count) })
        let pooled = positive.pooled.map { _ in ShapedArray.concatenated(halves.map { $0.pooled!.repeated(count) }) }
        var timeIDs: ShapedArray?
        if pooled != nil {
            let original = request.originalSize ?? [request.height, request.width]
            let crop = request.cropTopLeft ?? [0, 0]
            let target = request.targetSize ?? [request.height, request.width]
            let row = ShapedArray(shape: [1, 6], scalars: (original + crop + target).map(Float.init))
            timeIDs = row.repeated(context.shape[0])
        }
        let guidanceEmbedding = plan.unet.configuration.timestepConditionDimension.map {
            ClassifierFreeGuidance.scaleEmbedding(scale: request.guidanceScale, width: $0, count: context.shape[0])
        }
        return Denoiser.Conditioning(context: context, pooled: pooled, timeIDs: timeIDs, timestepCondition: guidanceEmbedding)
    }

    private func preparedDenoiser(plan: GenerationPlan, conditioning: Denoiser.Conditioning, deviceStep: DeviceStep?) throws -> Denoiser {
        let unet = plan.unet
        let key = "\(plan.usesInpaintingUNet)-\(plan.modelInputShape)-\(conditioning.context.shape)-\(deviceStep?.description ?? "prediction")"
        if let denoiser, denoiser.key == key { return denoiser.value }
        denoiser = nil
        let prepared = try Denoiser(
            unet: unet, sampleShape: plan.modelInputShape, contextShape: conditioning.context.shape,
            pooledWidth: conditioning.pooled?.shape[1], backend: backend, dtype: dtype, deviceStep: deviceStep)
        denoiser = (key, prepared)
        return prepared
    }

    // MARK: VAE

    /// Latents `[N, 4, h, w]` -> the VAE's images `[N, 3, H, W]`, nominally in [-1, 1].
    private func decode(_ latents: ShapedArray) throws -> ShapedArray {
        let configuration = checkpoint.vae.configuration
        let unscaled = latents.map { $0 / configuration.scalingFactor + (configuration.shiftFactor ?? 0) }
        let decoded = ShapedArray(try autoencoder.decode(unscaled.hostTensor()))
        try Self.requireFinite(decoded, "the decoded image")
        return decoded
    }

    /// Image `[1, 3, H, W]` in [-1, 1] -> scaled latents sampled from the VAE's posterior with a
    /// draw from `generator` (diffusers' `retrieve_latents(vae.encode(x), generator)`).
    func encode(_ image: ShapedArray, generator: NoiseGenerator) throws -> ShapedArray {
        let (mean, logVariance) = try autoencoder.encode(image.hostTensor())
        let noise = generator.normal(count: mean.scalars.count)
        let scale = checkpoint.vae.configuration.scalingFactor
        var scalars = mean.scalars
        for index in scalars.indices {
            let deviation = Foundation.exp(0.5 * logVariance.scalars[index])
            scalars[index] = (scalars[index] + deviation * noise[index]) * scale
        }
        return ShapedArray(shape: mean.shape.dimensions, scalars: scalars)
    }

    // MARK: Helpers

    /// A non-finite value would decode to a gray or black image: stop and say where instead.
    static func requireFinite(_ values: ShapedArray, _ what: String) throws {
        if let bad = values.scalars.firstIndex(where: { !$0.isFinite }) {
            throw PipelineError.numericalFailure("\(what) holds \(values.scalars[bad]) at element \(bad) of \(values.shape)")
        }
    }

    static func isFolder(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
    }
}

/// Wall-clock laps for progress reports.
private final class StageClock {
    private let start = DispatchTime.now().uptimeNanoseconds
    private var last = DispatchTime.now().uptimeNanoseconds

    var elapsed: Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }

    func lap() -> Double {
        let now = DispatchTime.now().uptimeNanoseconds
        defer { last = now }
        return Double(now - last) / 1e9
    }
}

extension StableDiffusionPipeline {
    /// Checks `request` against this model (sizes, modes, sampler, strength) without running
    /// anything: what a caller does before committing to work.
    public func check(_ request: GenerationRequest) throws {
        _ = try GenerationPlan(request: request, pipeline: self)
    }
}
