import Foundation
import KilnGraph
import KilnSampling

/// The parts of a generation that differ between families. `GenerationRunner` runs them in
/// diffusers' order around the one denoising loop, so every family gets the same cancellation,
/// finiteness checks, progress, timing and errors.
protocol GenerationStages: DiffusionPipeline {
    /// The model's own scheduler configuration.
    var schedulerConfiguration: SchedulerConfiguration { get }
    /// Serialises generations on one pipeline (its caches and resident weights are shared).
    var generationLock: NSLock { get }
    /// Whether guidance and an affine scheduler step may run in the denoiser's graph.
    var fusesGuidedStep: Bool { get }
    /// The VAE; nil for a model folder without one, which can only denoise.
    var autoencoder: LatentAutoencoder? { get }
    /// The family's latent-to-RGB preview projection.
    var previewProjection: LatentRGBProjection? { get }
    /// The components LoRAs may change; nil for families without a LoRA format (DiT).
    var adapters: LoRAAdapters? { get }
    /// The tiny autoencoder (TAESD) for previews and fast decodes, when the pipeline was opened with one.
    var tinyAutoencoder: TinyAutoencoder? { get set }

    /// Checks `request` against the model and resolves it; throws before any work.
    func plan(_ request: GenerationRequest) throws -> DenoisingPlan
    /// The denoiser's inputs that stay fixed through the loop, from the text encoders (or the
    /// class labels), in the model batch's order.
    func conditioning(for plan: DenoisingPlan) throws -> [String: HostTensor]
    /// The denoiser for the plan's model batch, prepared or taken from the cache.
    func denoiser(for plan: DenoisingPlan, conditioning: [String: HostTensor], deviceStep: DeviceStep?) throws -> PreparedDenoiser
    /// The denoiser's graph for the plan, built but not prepared, so its memory can be checked
    /// before any work; nil where a family cannot tell its conditioning's shapes without
    /// encoding (its graph is then checked when it is prepared).
    func plannedDenoiser(for plan: DenoisingPlan) throws -> PlannedGraph?
}

/// A graph and its outputs, as a backend would prepare them.
struct PlannedGraph {
    let graph: Graph
    let outputs: [Tensor]
}

extension GenerationStages {
    /// Everything `plan` checks, and that the denoiser fits the device; families add what it
    /// cannot see.
    public func check(_ request: GenerationRequest) throws {
        let plan = try plan(request)
        try checkAdapters(request)
        try checkMemory(plan)
    }

    func plannedDenoiser(for plan: DenoisingPlan) throws -> PlannedGraph? { nil }

    /// The denoiser's activations at their peak must fit one arena (`activationBudgetBytes`)
    /// and, with the weights, the device's memory. The VAE and the text encoders tile or stay
    /// small, so the denoiser decides.
    func checkMemory(_ plan: DenoisingPlan) throws {
        guard let planned = try plannedDenoiser(for: plan) else { return }
        let arena = backend.plannedArenaBytes(planned.graph, outputs: planned.outputs)
        let size = "\(plan.request.width)x\(plan.request.height)" + (plan.request.batchCount > 1 ? " x \(plan.request.batchCount) images" : "")
        var limit: MemoryLimitError?
        if arena > backend.activationBudgetBytes {
            limit = MemoryLimitError(needed: arena, available: backend.activationBudgetBytes, limit: "largest activation arena of \(backend.name)",
                                     need: "the denoiser's activations at their peak")
        } else if backend.memoryCapacityBytes > 0, arena + weightBytes > backend.memoryCapacityBytes {
            limit = MemoryLimitError(needed: arena + weightBytes, available: backend.memoryCapacityBytes, limit: "memory of \(backend.name)",
                                     need: "the denoiser's activations (\(MemoryLimitError.format(arena))) and the model's weights (\(MemoryLimitError.format(weightBytes)))")
        }
        if let limit { throw PipelineError.insufficientMemory("size \(size): \(limit); use a smaller size or batch") }
    }

    /// The request's LoRAs open and map onto this model; a TAESD decode has a TAESD.
    func checkAdapters(_ request: GenerationRequest) throws {
        if request.options.decodesWithTinyAutoencoder && tinyAutoencoder == nil {
            throw PipelineError.invalidRequest("decoding with a tiny autoencoder needs the pipeline opened with one (TAESD, --taesd)")
        }
        guard !request.options.loras.isEmpty else { return }
        guard let adapters else { throw PipelineError.unsupported("LoRAs with \(family.displayName) models (there is no LoRA format for them)") }
        try adapters.check(request.options.loras)
    }

    public func samplerName(for request: GenerationRequest) -> String {
        SchedulerChoice.name(for: request, configuration: schedulerConfiguration)
    }

    public func generate(
        _ request: GenerationRequest, progress: (GenerationProgress) -> Void, isCancelled: () -> Bool
    ) throws -> GenerationResult {
        try check(request)
        return try GenerationRunner.generate(self, request, progress: progress, isCancelled: isCancelled)
    }
}

/// Runs one generation through a family's stages: conditioning, initial latents, the loop, the
/// VAE. Errors other than `PipelineError` become `.failed`, naming the stage.
enum GenerationRunner {
    static func generate(
        _ stages: some GenerationStages, _ request: GenerationRequest, progress: (GenerationProgress) -> Void, isCancelled: () -> Bool
    ) throws -> GenerationResult {
        stages.generationLock.lock()
        defer { stages.generationLock.unlock() }
        try requireWorkingDevice(stages.backend)
        return try run(stages, plan: stages.plan(request), progress: progress, isCancelled: isCancelled)
    }

    /// The final latents `[N, C, h, w]` of `request` from conditioning computed elsewhere (a
    /// caller's own text states), without decoding.
    static func latents(
        _ stages: some GenerationStages, _ request: GenerationRequest, conditioning: [String: HostTensor],
        progress: (GenerationProgress) -> Void = { _ in }, isCancelled: () -> Bool = { false }
    ) throws -> ShapedArray {
        stages.generationLock.lock()
        defer { stages.generationLock.unlock() }
        try requireWorkingDevice(stages.backend)
        return try run(stages, plan: stages.plan(request), conditioning: conditioning, decodes: false, progress: progress,
                       isCancelled: isCancelled).latents
    }

    private static func run(
        _ stages: some GenerationStages, plan: DenoisingPlan, conditioning given: [String: HostTensor]? = nil, decodes: Bool = true,
        progress: (GenerationProgress) -> Void, isCancelled: () -> Bool
    ) throws -> GenerationResult {
        let request = plan.request
        let clock = StageClock()
        var seconds: [GenerationProgress.Stage: Double] = [:]
        var stage = GenerationProgress.Stage.encodingText
        func finish(_ finished: GenerationProgress.Stage, step: Int = 0) {
            seconds[finished] = clock.lap()
            progress(GenerationProgress(stage: finished, step: step, stepCount: plan.timesteps.count,
                                        lastSeconds: seconds[finished] ?? 0, elapsedSeconds: clock.elapsed))
        }
        do {
            let loras = try stages.adapters?.apply(request.options.loras) ?? []
            let conditioning = try given ?? stages.conditioning(for: plan)
            try Finiteness.require(conditioning, stage: .encodingText, "the text encoders' outputs")
            finish(.encodingText)
            if isCancelled() { throw PipelineError.cancelled }

            stage = .encodingImage
            let generator = TorchGenerator(seed: request.seed)
            let initial = try InitialState(plan: plan, generator: generator) { image, generator in
                guard let autoencoder = stages.autoencoder else { throw PipelineError.invalidModel("the model has no VAE to encode the init image") }
                return try autoencoder.encode(image, generator: generator)
            }
            try Finiteness.require(initial.latents, stage: .encodingImage, "the initial latents")
            if request.mode != .textToImage { finish(.encodingImage) }

            stage = .denoising
            let device = DeviceStep.chosen(
                for: plan.scheduler, latentShape: plan.stateShape, enabled: stages.fusesGuidedStep && plan.allowsDeviceStep)
            let denoiser = try stages.denoiser(for: plan, conditioning: conditioning, deviceStep: device?.step)
            let loop = DenoisingLoop(
                plan: plan, denoiser: denoiser, deviceScheduler: device?.scheduler, inpaintingChannels: initial.inpaintingChannels,
                blend: initial.blend?.arranged(plan.layout), projection: stages.previewProjection, tinyDecoder: stages.tinyAutoencoder,
                scale: stages.autoencoder?.downscaleFactor ?? 8)
            let loopStart = clock.elapsed
            let state = try loop.run(from: plan.guidance.state(from: plan.layout.arranged(initial.latents)), generator: generator,
                                     clock: clock, progress: progress, isCancelled: isCancelled)
            seconds[.denoising] = clock.elapsed - loopStart
            if isCancelled() { throw PipelineError.cancelled }

            stage = .decoding
            _ = clock.lap()
            let latents = plan.layout.spatial(plan.guidance.latents(from: state))
            var images = ShapedArray(shape: [0], scalars: [])
            var decodedBy: String?
            if decodes {
                if request.options.decodesWithTinyAutoencoder, let tiny = stages.tinyAutoencoder {
                    images = try tiny.decode(latents)
                    decodedBy = tiny.url.lastPathComponent
                    try Finiteness.require(images, stage: .decoding, "the decoded images")
                } else {
                    guard let autoencoder = stages.autoencoder else { throw PipelineError.invalidModel("the model has no VAE to decode the latents") }
                    images = try autoencoder.decode(latents)
                }
                finish(.decoding, step: plan.timesteps.count)
            }
            return GenerationResult(
                request: request, latents: latents, images: images, seeds: Array(repeating: request.seed, count: latents.shape[0]),
                timesteps: plan.timesteps, stageSeconds: seconds, loras: loras, tinyAutoencoder: decodedBy)
        } catch PipelineError.cancelled {
            throw PipelineError.cancelled
        } catch let error as MemoryLimitError {
            throw PipelineError.insufficientMemory("while \(stage.activity) on \(stages.backend.name): \(error)")
        } catch {
            // Whatever a component made of the failure, a lost device is what the caller must act on.
            if let failure = stages.backend.deviceFailure { throw PipelineError.deviceLost("\(failure) while \(stage.activity)") }
            if let error = error as? PipelineError { throw error }
            throw PipelineError.failed("while \(stage.activity) on \(stages.backend.name): \(error)")
        }
    }

    /// A lost device is refused before any work, not found out halfway.
    private static func requireWorkingDevice(_ backend: Backend) throws {
        if let failure = backend.deviceFailure { throw PipelineError.deviceLost("\(failure); open the device and the model again") }
    }
}
