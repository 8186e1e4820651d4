import Foundation
import KilnGraph
import KilnModels
import KilnSampling

/// Text-to-image with Stable Diffusion 3 / 3.5, step for step as diffusers'
/// `StableDiffusion3Pipeline` computes it: CLIP-L + CLIP-G + T5 prompt encoding, unit Gaussian
/// latents `[N, 16, H/8, W/8]` from the seed, classifier-free guidance batched `[uncond; cond]`,
/// FlowMatchEuler with the scheduler config's shift (or the resolution's, with dynamic
/// shifting), then the 16-channel VAE after `latents / scaling_factor + shift_factor`.
///
/// Opens a diffusers SD3 folder, or Stability's single file with a diffusers SD3 folder as its
/// config folder (configs, tokenizers, scheduler, and whatever the file lacks).
public final class StableDiffusion3Pipeline: DiffusionPipeline, GenerationStages {
    public let folder: StableDiffusion3Folder
    public let modelURL: URL
    public let backend: Backend
    public let dtype: DType
    public let schedulerConfiguration: SchedulerConfiguration
    /// Whether guidance and the flow-matching Euler step run in the backend's pass after the
    /// transformer (`Graph.guidedStep`); false keeps them on the host. The two agree up to f32 rounding.
    public var fusesGuidedStep = true
    /// diffusers' default `max_sequence_length`: the T5 part of the context.
    public static let defaultMaxSequenceLength = 256

    public var family: ModelFamily { .stableDiffusion3 }
    public let defaults: GenerationDefaults
    public let weightBytes: Int

    let generationLock = NSLock()
    /// TAESD for previews and fast decodes (`Pipelines.Source.tinyAutoencoder`).
    public internal(set) var tinyAutoencoder: TinyAutoencoder?
    var autoencoder: LatentAutoencoder? { vae }
    private let vae: LatentAutoencoder
    var previewProjection: LatentRGBProjection? { .stableDiffusion3 }
    private let promptEncoder: SD3PromptEncoder
    /// Whether the T5 encoder fits the device beside everything else.
    private let t5Fits: Bool
    /// Why the T5 encoder the model names could not be opened, if it could not.
    private let t5Problem: String?
    private let transformerWeights: AdaptedWeights
    let adapters: LoRAAdapters?
    /// A few shapes stay prepared, their activations together within what one graph may take.
    private lazy var denoisers = PreparedGraphCache<String, any PreparedGraph>(capacity: 4, byteBudget: backend.activationBudgetBytes)

    public init(url: URL, configFolder: URL? = nil, backend: Backend, dtype: DType = .float16) throws {
        // A T5 the folder names but cannot provide leaves the model usable without T5.
        func open(loadingT5: Bool) throws -> StableDiffusion3Folder {
            if url.isExistingFolder { return try StableDiffusion3Folder(url: url, loadingT5: loadingT5) }
            guard let configFolder else {
                throw PipelineError.invalidModel(
                    "\(url.path) is a single file without tokenizers or scheduler: pass a diffusers SD3 folder as its config folder")
            }
            return try StableDiffusion3Folder(singleFile: url, configFolder: configFolder, loadingT5: loadingT5)
        }
        do {
            folder = try open(loadingT5: true)
            t5Problem = nil
        } catch let error as PipelineError {
            throw error
        } catch {
            folder = try open(loadingT5: false)
            t5Problem = "\(error)"
        }
        modelURL = url
        self.backend = backend
        self.dtype = dtype
        schedulerConfiguration = try SchedulerConfiguration.load(from: folder.schedulerConfigurationURL)
        promptEncoder = try SD3PromptEncoder(folder: folder, backend: backend, dtype: dtype)
        vae = LatentAutoencoder(folder.vae, backend: backend, dtype: dtype)
        transformerWeights = AdaptedWeights(label: "transformer", base: folder.transformer.weights)
        adapters = LoRAAdapters(
            slots: [.init(names: .sd3Transformer(weights: folder.transformer.weights), weights: transformerWeights)] + promptEncoder.loraSlots,
            backend: backend)
        var footprint = WeightFootprint()
        promptEncoder.addCLIPWeights(to: &footprint)
        footprint.add("transformer", folder.transformer.weights, dtype: dtype)
        footprint.add("vae", folder.vae.weights, dtype: dtype)
        try footprint.check(on: backend)
        // T5 is optional: a model that fits only without it still opens, and refuses requests
        // that would run it.
        if let t5 = promptEncoder.t5 { footprint.add(t5.residency.label, t5.component.weights, dtype: t5.dtype) }
        t5Fits = (try? footprint.check(on: backend)) != nil
        weightBytes = footprint.totalBytes
        // diffusers' default size: the transformer's sample_size latent pixels.
        let nativeSize = folder.transformer.configuration.sampleSize * folder.vae.configuration.downscaleFactor
        defaults = GenerationDefaults(
            width: nativeSize, height: nativeSize, steps: 28, guidanceScale: 7.0, sampler: SamplerName.flowEuler.rawValue,
            imageToImageStrength: 0.6, inpaintingStrength: 0.6, maxSequenceLength: Self.defaultMaxSequenceLength)
    }

    // MARK: Stages

    private var patchSize: Int { folder.transformer.configuration.patchSize }

    func plan(_ request: GenerationRequest) throws -> DenoisingPlan {
        func fail(_ message: String) throws -> Never { throw PipelineError.invalidRequest(message) }
        // Sizes must split into whole patches of whole latent pixels, as diffusers' check_inputs asks.
        let factor = vae.downscaleFactor
        guard case .prompt = request.conditioning else { try fail("class labels are for class-conditional models (DiT); SD3 takes a prompt") }
        guard request.mode == .textToImage else {
            throw PipelineError.unsupported("\(request.mode.name) with SD3 models (text-to-image only so far)")
        }
        if request.sigmaSpacing != nil {
            throw PipelineError.unsupported("a sigma spacing (--scheduler) with SD3: it comes from the model's scheduler config")
        }
        if request.options.guidanceRescale > 0 { try fail("guidance rescale is not part of diffusers' StableDiffusion3Pipeline") }
        if let t5Problem, !request.options.withoutT5 {
            throw PipelineError.invalidModel("the model's T5 encoder (text_encoder_3) cannot be opened: \(t5Problem); ask for the request without T5")
        }
        if !t5Fits && promptEncoder.t5 != nil && !request.options.withoutT5 {
            throw PipelineError.insufficientMemory("the T5 encoder does not fit \(backend.name) beside the rest of the model: ask for the request without T5")
        }
        if [request.options.originalSize, request.options.cropTopLeft, request.options.targetSize].contains(where: { $0 != nil }) {
            throw PipelineError.unsupported("size micro-conditioning is SDXL's, not SD3's")
        }
        try request.validate(sizeMultiple: factor * patchSize)
        if let grid = folder.transformer.configuration.positionEmbeddingMaxSize {
            let patch = factor * patchSize
            if request.width / patch > grid || request.height / patch > grid {
                try fail("size \(request.width)x\(request.height) exceeds the transformer's position grid of \(grid)x\(grid) patches (\(grid * patch) pixels)")
            }
        }
        let scheduler = try SchedulerChoice.make(for: request, configuration: schedulerConfiguration, flowMatching: true)
        let latentShape = [request.batchCount, vae.latentChannels, request.height / factor, request.width / factor]
        // The resolution-dependent shift, where the config asks for it.
        let tokens = (latentShape[2] / patchSize) * (latentShape[3] / patchSize)
        let mu = (schedulerConfiguration.useDynamicShifting ?? false) ? schedulerConfiguration.dynamicShift(imageSequenceLength: tokens) : nil
        try scheduler.setTimesteps(request.steps, mu: mu)
        var plan = DenoisingPlan(
            request: request, scheduler: scheduler, timesteps: scheduler.timesteps, latentShape: latentShape,
            guidance: request.guidanceScale > 1 ? .classifierFree(scale: request.guidanceScale, rescale: 0) : .none)
        plan.scalesModelInput = false
        return plan
    }

    /// `[uncond × N; cond × N]` under guidance, as diffusers batches it.
    func conditioning(for plan: DenoisingPlan) throws -> [String: HostTensor] {
        let request = plan.request
        var prompts = plan.guidance == .none ? [request.prompt ?? ""] : [request.negativePrompt ?? "", request.prompt ?? ""]
        // T5 has no per-token weighting: A1111's syntax is taken out, its text kept.
        if request.options.promptSyntax == .a1111 { prompts = prompts.map(A1111Prompt.plainText) }
        let encoded = try promptEncoder.encode(
            prompts, maxSequenceLength: request.options.maxSequenceLength ?? Self.defaultMaxSequenceLength, withoutT5: request.options.withoutT5)
        guard let pooled = encoded.pooled else { throw PipelineError.failed("SD3 prompt encoding gave no pooled embedding") }
        let count = request.batchCount
        return [
            "context": ShapedArray.concatenated(prompts.indices.map { encoded.context.rows($0..<($0 + 1)).repeated(count) }).hostTensor(),
            "pooled": ShapedArray.concatenated(prompts.indices.map { pooled.rows($0..<($0 + 1)).repeated(count) }).hostTensor(),
        ]
    }

    func denoiser(for plan: DenoisingPlan, conditioning: [String: HostTensor], deviceStep: DeviceStep?) throws -> PreparedDenoiser {
        guard let context = conditioning["context"], let pooled = conditioning["pooled"] else {
            throw PipelineError.failed("the transformer's conditioning is incomplete")
        }
        let sampleShape = [plan.modelBatch] + plan.latentShape.dropFirst()
        let key = "\(sampleShape)-\(context.shape)-\(pooled.shape)-\(deviceStep?.description ?? "prediction")"
        let graph = try denoisers.graph(for: key) {
            let graph = Graph()
            let binder = WeightBinder(graph: graph, source: transformerWeights.current, dtype: dtype, residency: transformerWeights.residency)
            let model = SD3Transformer2DModel(configuration: folder.transformer.configuration)
            var result = try model(
                hiddenStates: graph.input("sample", Shape(sampleShape), dtype: dtype),
                encoderHiddenStates: graph.input("context", context.shape, dtype: dtype),
                pooledProjections: graph.input("pooled", pooled.shape, dtype: dtype),
                timesteps: graph.input("timesteps", [sampleShape[0]], dtype: .float32), weights: WeightScope(binder))
            if let deviceStep { result = try deviceStep.appended(to: graph, prediction: result) }
            return try backend.prepare(graph, outputs: [result], constants: binder.constants())
        }
        return PreparedDenoiser(graph: graph, fixedInputs: conditioning)
    }
}
