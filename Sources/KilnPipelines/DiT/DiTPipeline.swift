import Foundation
import KilnGraph
import KilnModels
import KilnSampling

/// Class-conditional generation with a DiT (Peebles & Xie, https://arxiv.org/abs/2212.09748),
/// step for step as diffusers' `DiTPipeline` computes it, random draws included:
///
/// - latents `[N, C, S, S]` are one `randn`, not scaled by the scheduler's init sigma (DiTPipeline
///   does not scale them); N = the class labels (each repeated `batchCount` times), S = the
///   transformer's `sample_size`;
/// - under guidance (scale > 1) the loop carries `[latents, latents]` with labels
///   `[labels, null × N]`; guidance mixes only the noise channels into both halves and the
///   scheduler steps the whole doubled batch from the scaled input (so a stochastic sampler draws
///   noise for 2N images, as diffusers does); learned-sigma variance channels are dropped before
///   the step; the first half is kept;
/// - the null class is the class table's last row, `num_embeds_ada_norm` (DiTPipeline writes 1000,
///   the same row for every released DiT).
public final class DiTPipeline: DiffusionPipeline, GenerationStages {
    public let checkpoint: DiTCheckpoint
    public let backend: Backend
    public let dtype: DType
    /// The model's own scheduler configuration (`scheduler/scheduler_config.json`).
    public let schedulerConfiguration: SchedulerConfiguration
    /// Guidance mixes channels the host picks, so the step stays on the host.
    public let fusesGuidedStep = false

    public var family: ModelFamily { .diT }
    public var modelURL: URL { checkpoint.url }
    public let defaults: GenerationDefaults
    public let weightBytes: Int

    let generationLock = NSLock()
    /// TAESD for previews and fast decodes (`Pipelines.Source.tinyAutoencoder`).
    public internal(set) var tinyAutoencoder: TinyAutoencoder?
    var autoencoder: LatentAutoencoder? { vae }
    private let vae: LatentAutoencoder
    var adapters: LoRAAdapters? { nil }
    var previewProjection: LatentRGBProjection? { .stableDiffusion }
    private let transformerResidency = ResidentWeights(label: "transformer")
    /// The sin-cos position table: computed on the host, resident like the weights.
    private let tableResidency = ResidentWeights(label: "position table")
    /// A few shapes stay prepared, their activations together within what one graph may take.
    private lazy var denoisers = PreparedGraphCache<String, any PreparedGraph>(capacity: 4, byteBudget: backend.activationBudgetBytes)

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
        vae = LatentAutoencoder(checkpoint.vae, backend: backend, dtype: dtype)
        var footprint = WeightFootprint()
        footprint.add("transformer", checkpoint.transformer.weights, dtype: dtype)
        footprint.add("vae", checkpoint.vae.weights, dtype: dtype)
        try footprint.check(on: backend)
        weightBytes = footprint.totalBytes
        let size = checkpoint.transformer.configuration.sampleSize * checkpoint.vae.configuration.downscaleFactor
        defaults = GenerationDefaults(
            width: size, height: size, steps: 50, guidanceScale: 4.0,
            sampler: SchedulerChoice.name(for: GenerationRequest(prompt: ""), configuration: schedulerConfiguration),
            imageToImageStrength: 0.8, inpaintingStrength: 1.0, takesClassLabels: true)
    }

    /// Image side in pixels: DiTPipeline always samples at the transformer's `sample_size`.
    public var imageSize: Int { defaults.width }
    /// Number of classes; labels are `0..<classCount`, `classCount` itself is the null class.
    public var classCount: Int { checkpoint.transformer.configuration.nullClass }

    // MARK: Stages

    /// The labels of every image, each repeated `batchCount` times.
    private func labels(_ request: GenerationRequest) -> [Int] {
        (request.classLabels ?? []).flatMap { Array(repeating: $0, count: request.batchCount) }
    }

    func plan(_ request: GenerationRequest) throws -> DenoisingPlan {
        func fail(_ message: String) throws -> Never { throw PipelineError.invalidRequest(message) }
        guard case .classLabels(let labels) = request.conditioning else {
            try fail("a DiT model is class-conditional: give class labels in 0..<\(classCount), not a prompt")
        }
        if let bad = labels.first(where: { !(0..<classCount).contains($0) }) {
            try fail("class label \(bad) is outside 0..<\(classCount) (the model's num_embeds_ada_norm)")
        }
        if request.mode != .textToImage { throw PipelineError.unsupported("\(request.mode.name) with a DiT model (DiTPipeline generates from noise only)") }
        if request.options.guidanceRescale > 0 { try fail("guidance rescale is not part of DiTPipeline") }
        if request.options.maxSequenceLength != nil || request.options.withoutT5 {
            throw PipelineError.unsupported("T5 options with a DiT model: it has no text encoder")
        }
        if [request.options.originalSize, request.options.cropTopLeft, request.options.targetSize].contains(where: { $0 != nil }) {
            throw PipelineError.unsupported("size micro-conditioning is SDXL's, not DiT's")
        }
        try request.validate(sizeMultiple: vae.downscaleFactor)
        if request.width != imageSize || request.height != imageSize {
            try fail("size \(request.width)x\(request.height): this DiT samples at \(imageSize)x\(imageSize) (sample_size \(checkpoint.transformer.configuration.sampleSize) x \(vae.downscaleFactor))")
        }
        try SchedulerChoice.checkSteps(request, configuration: schedulerConfiguration)
        let scheduler = try SchedulerChoice.make(for: request, configuration: schedulerConfiguration, flowMatching: false)
        try scheduler.setTimesteps(request.steps)
        let c = checkpoint.transformer.configuration
        var plan = DenoisingPlan(
            request: request, scheduler: scheduler, timesteps: scheduler.timesteps,
            latentShape: [labels.count * request.batchCount, c.inChannels, c.sampleSize, c.sampleSize],
            guidance: request.guidanceScale > 1 ? .classConditional(scale: request.guidanceScale, channels: c.inChannels) : .none)
        plan.stepsFromScaledInput = true
        plan.scalesInitialNoise = false
        plan.allowsDeviceStep = false
        return plan
    }

    func conditioning(for plan: DenoisingPlan) throws -> [String: HostTensor] {
        var labels = labels(plan.request)
        if case .classConditional = plan.guidance { labels += Array(repeating: checkpoint.transformer.configuration.nullClass, count: labels.count) }
        return ["class_labels": HostTensor(shape: [labels.count], integers: labels.map { Int32($0) })]
    }

    func denoiser(for plan: DenoisingPlan, conditioning: [String: HostTensor], deviceStep: DeviceStep?) throws -> PreparedDenoiser {
        let graph = try denoisers.graph(for: "\(sampleShape(plan))") {
            let built = try denoiserGraph(for: plan)
            return try backend.prepare(built.graph, outputs: [built.output.sample],
                                       constants: built.binder.constants().adding(built.output.hostConstants, residentIn: tableResidency))
        }
        return PreparedDenoiser(graph: graph, fixedInputs: conditioning)
    }

    func plannedDenoiser(for plan: DenoisingPlan) throws -> PlannedGraph? {
        let built = try denoiserGraph(for: plan)
        return PlannedGraph(graph: built.graph, outputs: [built.output.sample])
    }

    private func sampleShape(_ plan: DenoisingPlan) -> [Int] { [plan.modelBatch] + plan.latentShape.dropFirst() }

    private func denoiserGraph(for plan: DenoisingPlan) throws -> (graph: Graph, output: DiTTransformer2DModel.Output, binder: WeightBinder) {
        let sampleShape = sampleShape(plan)
        let graph = Graph()
        let binder = WeightBinder(graph: graph, source: checkpoint.transformer.weights, dtype: dtype, residency: transformerResidency)
        let batch = sampleShape[0]
        let output = try checkpoint.model(
            sample: graph.input("sample", Shape(sampleShape), dtype: dtype), timesteps: graph.input("timesteps", [batch], dtype: .float32),
            classLabels: graph.input("class_labels", [batch], dtype: .int32), weights: WeightScope(binder))
        return (graph, output, binder)
    }
}
