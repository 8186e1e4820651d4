import Foundation
import KilnGraph
import KilnModels
import KilnSampling

/// Text-to-image, image-to-image and inpainting with a Stable Diffusion 1.x/2.x/XL model, step
/// for step as diffusers' `StableDiffusionPipeline`, `StableDiffusionImg2ImgPipeline`,
/// `StableDiffusionInpaintPipeline`, `StableDiffusionXLPipeline` and
/// `StableDiffusionXLImg2ImgPipeline` compute it, random draws included: with the same seed and
/// sampler the final latents equal diffusers' up to float rounding.
///
/// Guidance batches `[uncond × N; cond × N]` through one U-Net call; LCM-distilled U-Nets take
/// the scale as an embedding instead. Inpainting uses a 9-channel U-Net when the model is one
/// (or one is supplied), else latent blending as diffusers does with an ordinary U-Net.
public final class StableDiffusionPipeline: DiffusionPipeline, GenerationStages {
    public let checkpoint: StableDiffusionCheckpoint
    public let backend: Backend
    public let dtype: DType
    /// The model's own scheduler configuration (`scheduler/scheduler_config.json`).
    public let schedulerConfiguration: SchedulerConfiguration
    /// SDXL's `force_zeros_for_empty_prompt`: without a negative prompt the unconditional
    /// embeddings are zeros rather than the encoding of "".
    public let zeroEmptyNegativePrompt: Bool
    /// The U-Net used for inpainting when the checkpoint's own U-Net has 4 input channels and a
    /// 9-channel inpainting U-Net was supplied separately.
    public let inpaintingUNet: ModelComponent<UNetConfiguration>?
    /// Whether guidance and the scheduler step run in the backend's pass after the U-Net
    /// (`Graph.guidedStep`) where the scheduler's steps are affine (Euler, Euler ancestral, DDIM
    /// without clipping) and no guidance rescale is asked for; false keeps them on the host. The
    /// two agree up to f32 rounding.
    public var fusesGuidedStep = true

    public var family: ModelFamily { ModelFamily(checkpoint.family) }
    public var modelURL: URL { checkpoint.url }
    public let defaults: GenerationDefaults
    public let weightBytes: Int

    let generationLock = NSLock()
    /// TAESD for previews and fast decodes (`Pipelines.Source.tinyAutoencoder`).
    public internal(set) var tinyAutoencoder: TinyAutoencoder?
    var autoencoder: LatentAutoencoder? { vae }
    let vae: LatentAutoencoder
    var previewProjection: LatentRGBProjection? {
        checkpoint.family == .sdxl ? .stableDiffusionXL : .stableDiffusion
    }
    let promptEncoder: PromptEncoder
    let unetWeights: AdaptedWeights
    let adapters: LoRAAdapters?
    private let inpaintingResidency = ResidentWeights(label: "inpainting unet")
    /// A few shapes stay prepared, their activations together within what one graph may take.
    private lazy var denoisers = PreparedGraphCache<String, any PreparedGraph>(capacity: 4, byteBudget: backend.activationBudgetBytes)

    /// Opens a diffusers folder (or a single file with a diffusers `configFolder` for its configs,
    /// tokenizers and scheduler).
    public convenience init(
        url: URL, configFolder: URL? = nil, vae: URL? = nil, inpaintingUNet: URL? = nil, backend: Backend, dtype: DType = .float16
    ) throws {
        let checkpoint = try StableDiffusionCheckpoint(url: url, configFolder: configFolder, vae: vae)
        guard let folder = configFolder ?? (url.isExistingFolder ? url : nil) else {
            throw PipelineError.invalidModel(
                "\(url.path) is a single file without tokenizer or scheduler: pass a diffusers folder of the same family as its config folder")
        }
        let tokenizers = try ["tokenizer", "tokenizer_2"].prefix(checkpoint.family == .sdxl ? 2 : 1).map { name in
            try CLIPTokenizer.load(folder: folder.appendingPathComponent(name))
        }
        let scheduler = try SchedulerConfiguration.load(from: folder.appendingPathComponent("scheduler/scheduler_config.json"))
        let index = try ModelIndex.load(folder: folder)
        let zeros = checkpoint.family == .sdxl && (index?.flags["force_zeros_for_empty_prompt"] ?? true)
        let inpainting = try inpaintingUNet.map { unetFolder in
            ModelComponent(
                configuration: try UNetConfiguration.load(unetFolder.appendingPathComponent("config.json")),
                weights: try SafeTensorsSource.component(folder: unetFolder, baseName: "diffusion_pytorch_model") as TensorSource)
        }
        try self.init(
            checkpoint: checkpoint, tokenizers: tokenizers, schedulerConfiguration: scheduler,
            zeroEmptyNegativePrompt: zeros, inpaintingUNet: inpainting, backend: backend, dtype: dtype)
    }

    public init(
        checkpoint: StableDiffusionCheckpoint, tokenizers: [CLIPTokenizer], schedulerConfiguration: SchedulerConfiguration,
        zeroEmptyNegativePrompt: Bool = false, inpaintingUNet: ModelComponent<UNetConfiguration>? = nil,
        backend: Backend, dtype: DType = .float16
    ) throws {
        let sdxl = checkpoint.family == .sdxl
        guard tokenizers.count == (sdxl ? 2 : 1) else {
            throw PipelineError.invalidModel("\(checkpoint.family.rawValue) needs \(sdxl ? 2 : 1) tokenizer(s), got \(tokenizers.count)")
        }
        self.checkpoint = checkpoint
        self.schedulerConfiguration = schedulerConfiguration
        self.zeroEmptyNegativePrompt = zeroEmptyNegativePrompt
        self.inpaintingUNet = inpaintingUNet
        self.backend = backend
        self.dtype = dtype
        var encoders: [(label: String, tokenizer: CLIPTokenizer, component: ModelComponent<CLIPTextConfiguration>, penultimate: Bool,
                        pooled: PromptEncoder.Pooled)] = [("text_encoder", tokenizers[0], checkpoint.textEncoder, sdxl, .none)]
        if let second = checkpoint.textEncoder2 { encoders.append(("text_encoder_2", tokenizers[1], second, true, .projected)) }
        promptEncoder = PromptEncoder(encoders, backend: backend, dtype: dtype)
        unetWeights = AdaptedWeights(label: "unet", base: checkpoint.unet.weights)
        // kohya: SD1/SD2's one encoder is lora_te_ (lora_te1_ from some trainers); SDXL's lora_te1_ and lora_te2_.
        adapters = LoRAAdapters(
            slots: [.init(names: .unet(checkpoint.unet), weights: unetWeights)]
                + promptEncoder.loraSlots(kohyaPrefixes: sdxl ? [["lora_te1_"], ["lora_te2_"]] : [["lora_te_", "lora_te1_"]]),
            backend: backend)
        // SDXL's VAE overflows f16 (diffusers upcasts it, `force_upcast`); the others keep `dtype`.
        let vaeDType: DType = sdxl ? .float32 : dtype
        vae = LatentAutoencoder(checkpoint.vae, backend: backend, dtype: vaeDType)

        var footprint = WeightFootprint()
        promptEncoder.addWeights(to: &footprint)
        // One U-Net runs at a time, but both stay resident once used: both count.
        footprint.add("unet", checkpoint.unet.weights, dtype: dtype)
        if let inpaintingUNet { footprint.add("inpainting unet", inpaintingUNet.weights, dtype: dtype) }
        footprint.add("vae", checkpoint.vae.weights, dtype: vaeDType)
        try footprint.check(on: backend)
        weightBytes = footprint.totalBytes

        // diffusers' default size: the U-Net's sample_size in pixels.
        let familySize = [StableDiffusionFamily.sd1: 512, .sd2: 768, .sdxl: 1024][checkpoint.family] ?? 512
        let nativeSize = checkpoint.unet.configuration.sampleSize.map { $0 * checkpoint.vae.configuration.downscaleFactor } ?? familySize
        defaults = try GenerationDefaults(
            width: nativeSize, height: nativeSize, steps: 50, guidanceScale: sdxl ? 5.0 : 7.5,
            sampler: SchedulerChoice.name(for: GenerationRequest(prompt: ""), configuration: schedulerConfiguration),
            imageToImageStrength: sdxl ? 0.3 : 0.8, inpaintingStrength: 1.0
        ).recommended(by: checkpoint.url)
    }

    /// The text encoders' output for `prompts` read with `syntax`: context `[N, 77·C, D]` (C = 1
    /// for literal prompts) and SDXL's pooled embedding `[N, 1280]`, as the U-Net receives them.
    public func promptEmbeddings(_ prompts: [String], syntax: PromptSyntax = .literal) throws -> (context: ShapedArray, pooled: ShapedArray?) {
        try generationLock.withLock {
            let embeddings = syntax == .a1111 ? try promptEncoder.encodeA1111(prompts) : try promptEncoder.encode(prompts)
            return (embeddings.context, embeddings.pooled)
        }
    }

    // MARK: Stages

    /// The U-Net a request runs: the supplied inpainting U-Net for inpainting, else the model's.
    private func unet(for request: GenerationRequest) -> (component: ModelComponent<UNetConfiguration>, weights: TensorSource, residency: ResidentWeights) {
        if case .inpainting = request.mode, let inpaintingUNet { return (inpaintingUNet, inpaintingUNet.weights, inpaintingResidency) }
        return (checkpoint.unet, unetWeights.current, unetWeights.residency)
    }

    func plan(_ request: GenerationRequest) throws -> DenoisingPlan {
        func fail(_ message: String) throws -> Never { throw PipelineError.invalidRequest(message) }
        let name = checkpoint.family.rawValue
        guard case .prompt = request.conditioning else {
            try fail("class labels are for class-conditional models (DiT); this \(name) model takes a prompt")
        }
        if request.options.maxSequenceLength != nil { throw PipelineError.unsupported("max sequence length: \(name) models have no T5 encoder (SD3 and FLUX do)") }
        if request.options.withoutT5 { throw PipelineError.unsupported("without T5: \(name) models have no T5 encoder (SD3 does)") }
        let micro = [request.options.originalSize, request.options.cropTopLeft, request.options.targetSize]
        if checkpoint.family != .sdxl, micro.contains(where: { $0 != nil }) {
            throw PipelineError.unsupported("size micro-conditioning (original size, crop, target size) is SDXL's; this is \(name)")
        }
        if checkpoint.family == .sdxl, case .inpainting = request.mode {
            throw PipelineError.unsupported("inpainting with SDXL models (text-to-image and image-to-image only so far)")
        }
        if case .inpainting = request.mode, inpaintingUNet != nil, !request.options.loras.isEmpty {
            throw PipelineError.unsupported("LoRAs with a separate inpainting U-Net (they change the model's own U-Net)")
        }
        if request.options.guidanceRescale > 0 && request.mode != .textToImage {
            try fail("guidance rescale applies to text-to-image only (diffusers' \(request.mode.name) pipeline has none)")
        }
        try request.validate(sizeMultiple: vae.downscaleFactor)
        let unet = unet(for: request).component.configuration
        let channels = unet.inChannels
        switch (request.mode, channels) {
        case (.inpainting, 4), (.inpainting, 9), (.textToImage, 4), (.imageToImage, 4): break
        case (_, 9): try fail("this is a 9-channel inpainting U-Net: give it an init image and a mask")
        default: throw PipelineError.unsupported("a U-Net with \(channels) input channels in \(request.mode.name) mode")
        }
        try SchedulerChoice.checkSteps(request, configuration: schedulerConfiguration)
        let scheduler = try SchedulerChoice.make(for: request, configuration: schedulerConfiguration, flowMatching: false)
        try scheduler.setTimesteps(request.steps)
        let timesteps = request.mode == .textToImage
            ? scheduler.timesteps : try ScheduleStart.keepsTruncatedSteps.timesteps(scheduler, request: request)
        let factor = vae.downscaleFactor
        // Guidance is diffusers' `guidance_scale > 1`, except for LCM-distilled U-Nets, which
        // take the scale as an embedding instead.
        let guided = request.guidanceScale > 1 && unet.timestepConditionDimension == nil
        var plan = DenoisingPlan(
            request: request, scheduler: scheduler, timesteps: timesteps,
            latentShape: [request.batchCount, vae.latentChannels, request.height / factor, request.width / factor],
            guidance: guided ? .classifierFree(scale: request.guidanceScale, rescale: request.options.guidanceRescale) : .none)
        plan.appendsInpaintingChannels = channels == 9
        plan.allowsDeviceStep = request.options.guidanceRescale <= 0
        return plan
    }

    /// The U-Net's conditioning for the whole model batch: `[uncond × N, cond × N]` under
    /// guidance; SDXL's pooled embeddings and size ids; an LCM U-Net's guidance embedding.
    func conditioning(for plan: DenoisingPlan) throws -> [String: HostTensor] {
        let request = plan.request
        let prompt = request.prompt ?? "", count = request.batchCount
        var positive: PromptEncoder.Embeddings
        var negative: PromptEncoder.Embeddings?
        let encode = { (prompts: [String]) in
            request.options.promptSyntax == .a1111 ? try self.promptEncoder.encodeA1111(prompts) : try self.promptEncoder.encode(prompts)
        }
        if case .classifierFree = plan.guidance {
            if request.negativePrompt == nil && zeroEmptyNegativePrompt {
                positive = try encode([prompt])
                negative = promptEncoder.zeros(count: 1, like: positive)
            } else {
                let both = try encode([request.negativePrompt ?? "", prompt])
                negative = PromptEncoder.Embeddings(context: both.context.rows(0..<1), pooled: both.pooled?.rows(0..<1))
                positive = PromptEncoder.Embeddings(context: both.context.rows(1..<2), pooled: both.pooled?.rows(1..<2))
            }
        } else {
            positive = try encode([prompt])
        }
        let halves = [negative, positive].compactMap { $0 }
        let context = ShapedArray.concatenated(halves.map { $0.context.repeated(count) })
        var inputs = ["context": context.hostTensor()]
        if let pooled = positive.pooled {
            inputs["text_embeds"] = ShapedArray.concatenated(halves.map { ($0.pooled ?? pooled).repeated(count) }).hostTensor()
            let original = request.options.originalSize ?? [request.height, request.width]
            let crop = request.options.cropTopLeft ?? [0, 0]
            let target = request.options.targetSize ?? [request.height, request.width]
            inputs["time_ids"] = ShapedArray(shape: [1, 6], scalars: (original + crop + target).map(Float.init)).repeated(context.shape[0]).hostTensor()
        }
        if let width = unet(for: request).component.configuration.timestepConditionDimension {
            inputs["timestep_cond"] = ClassifierFreeGuidance.scaleEmbedding(scale: request.guidanceScale, width: width, count: context.shape[0]).hostTensor()
        }
        return inputs
    }

    func denoiser(for plan: DenoisingPlan, conditioning: [String: HostTensor], deviceStep: DeviceStep?) throws -> PreparedDenoiser {
        let residency = unet(for: plan.request).residency
        let inputShape = denoiserInputShape(plan)
        let shapes = conditioning.sorted { $0.key < $1.key }.map { "\($0.key)\($0.value.shape)" }.joined()
        let key = "\(residency.label)-\(inputShape)-\(shapes)-\(deviceStep?.description ?? "prediction")"
        let graph = try denoisers.graph(for: key) {
            let built = try denoiserGraph(for: plan, conditioning: conditioning.mapValues(\.shape), deviceStep: deviceStep)
            return try backend.prepare(built.graph, outputs: built.outputs, constants: built.binder.constants())
        }
        return PreparedDenoiser(graph: graph, fixedInputs: conditioning)
    }

    /// The shapes `conditioning(for:)` gives, without encoding: a 77-token context (a longer A1111
    /// prompt adds a little), SDXL's pooled embedding and size ids, an LCM's guidance embedding.
    func plannedDenoiser(for plan: DenoisingPlan) throws -> PlannedGraph? {
        let configuration = unet(for: plan.request).component.configuration
        let batch = plan.modelBatch
        var shapes: [String: Shape] = [
            "context": [batch, promptEncoder.encoders.first?.tokenizer.configuration.modelMaxLength ?? 77, configuration.crossAttentionDimension.last ?? 768],
        ]
        if configuration.additionEmbedType == "text_time", let input = configuration.projectionClassEmbeddingsInputDimension,
           let time = configuration.additionTimeEmbedDimension {
            shapes["text_embeds"] = [batch, input - 6 * time]
            shapes["time_ids"] = [batch, 6]
        }
        if let width = configuration.timestepConditionDimension { shapes["timestep_cond"] = [batch, width] }
        let built = try denoiserGraph(for: plan, conditioning: shapes, deviceStep: nil)
        return PlannedGraph(graph: built.graph, outputs: built.outputs)
    }

    private func denoiserInputShape(_ plan: DenoisingPlan) -> [Int] {
        [plan.modelBatch, unet(for: plan.request).component.configuration.inChannels, plan.latentShape[2], plan.latentShape[3]]
    }

    /// The U-Net over inputs of `conditioning`'s shapes, with the scheduler's step appended when
    /// it runs on the device.
    private func denoiserGraph(
        for plan: DenoisingPlan, conditioning: [String: Shape], deviceStep: DeviceStep?
    ) throws -> (graph: Graph, outputs: [Tensor], binder: WeightBinder) {
        let (unet, weights, residency) = unet(for: plan.request)
        let inputShape = denoiserInputShape(plan)
        guard let context = conditioning["context"] else { throw PipelineError.failed("the U-Net's conditioning has no text context") }
        let graph = Graph()
        let binder = WeightBinder(graph: graph, source: weights, dtype: dtype, residency: residency)
        let batch = inputShape[0]
        func input(_ name: String, dtype: DType) -> Tensor? {
            conditioning[name].map { graph.input(name, $0, dtype: dtype) }
        }
        var added: UNet2DConditionModel.AddedConditioning?
        if let embeds = input("text_embeds", dtype: dtype), let timeIDs = input("time_ids", dtype: .float32) {
            added = .init(textEmbeddings: embeds, timeIDs: timeIDs)
        }
        var result = try unet.model(
            sample: graph.input("sample", Shape(inputShape), dtype: dtype), timesteps: graph.input("timesteps", [batch], dtype: .float32),
            text: graph.input("context", context, dtype: dtype), added: added,
            timestepCondition: input("timestep_cond", dtype: dtype), weights: WeightScope(binder))
        if let deviceStep { result = try deviceStep.appended(to: graph, prediction: result) }
        return (graph, [result], binder)
    }
}
