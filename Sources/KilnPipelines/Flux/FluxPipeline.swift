import Foundation
import KilnGraph
import KilnModels
import KilnSampling

/// FLUX.1 (dev and schnell) text-to-image, image-to-image and inpainting, step for step as
/// diffusers' `FluxPipeline`, `FluxImg2ImgPipeline` and `FluxInpaintPipeline` compute it: CLIP-L's
/// pooled output and T5's last hidden state for the prompt (no negative prompt), noise
/// `randn [N, 16, h, w]` packed into 2x2 patches, sigmas `linspace(1, 1/n, n)` shifted with `mu`
/// from the image's token count, FLUX.1-dev's guidance embedded (no classifier-free batch),
/// Euler steps on the flow velocity, then the 16-channel VAE with its shift factor.
///
/// Opens a diffusers FluxPipeline folder; a single file (a transformer under diffusers' or the
/// original names, or ComfyUI's all-in-one checkpoint) supplies whatever it carries, the folder
/// the rest. The text encoders stay resident when everything fits the device together; else
/// they are released after each prompt so the transformer can take their place (T5-XXL is
/// 9.5 GB in f16).
public final class FluxPipeline: DiffusionPipeline, GenerationStages {
    public let modelURL: URL
    public let model: FluxTransformer2DModel
    public let schedulerConfiguration: SchedulerConfiguration
    public let backend: Backend
    public let dtype: DType
    /// Whether the flow-matching Euler step runs in the backend's pass after the transformer
    /// (`Graph.guidedStep`); false keeps it on the host. The two agree up to f32 rounding.
    public var fusesGuidedStep = true
    /// Whether the text encoders stay on the device between prompts (everything fits together).
    public let keepsTextEncodersResident: Bool

    public var family: ModelFamily { .flux }
    public let defaults: GenerationDefaults
    public let weightBytes: Int

    let generationLock = NSLock()
    /// TAESD for previews and fast decodes (`Pipelines.Source.tinyAutoencoder`).
    public internal(set) var tinyAutoencoder: TinyAutoencoder?
    let autoencoder: LatentAutoencoder?
    var previewProjection: LatentRGBProjection? { .flux }
    private let transformerWeights: TensorSource
    private let adaptedTransformer: AdaptedWeights
    let adapters: LoRAAdapters?
    private let clip: PromptEncoder?
    private let t5: T5PromptEncoder?
    /// A few shapes stay prepared, their activations together within what one graph may take.
    private lazy var denoisers = PreparedGraphCache<String, any PreparedGraph>(capacity: 4, byteBudget: backend.activationBudgetBytes)

    /// Opens the FluxPipeline folder `folder`; `singleFile`, when given, supplies the transformer
    /// (its configuration inferred from its weights) and whatever else it carries.
    public init(folder: URL, singleFile: URL? = nil, backend: Backend, dtype: DType = .float16) throws {
        guard let index = try ModelIndex.load(folder: folder) else {
            throw PipelineError.invalidModel("\(folder.path) has no model_index.json: not a diffusers FluxPipeline folder")
        }
        guard index.className.hasPrefix("Flux") else {
            throw PipelineError.invalidModel("\(index.url.path): _class_name is \(index.className), expected FluxPipeline")
        }
        let file = try singleFile.map(FluxSingleFile.init(url:))
        modelURL = singleFile ?? folder
        self.backend = backend
        self.dtype = dtype

        let transformerFolder = folder.appendingPathComponent("transformer")
        var configuration = try FluxTransformerConfiguration.load(transformerFolder.appendingPathComponent("config.json"))
        if let file {
            transformerWeights = try file.transformer()
            // The file decides what runs (a schnell file with a dev folder has no guidance
            // embedding); only the rotary axes are not in the weights.
            configuration = try FluxOriginalKeyNames.inferConfiguration(transformerWeights, axesDimensionsRope: configuration.axesDimensionsRope)
        } else {
            transformerWeights = try SafeTensorsSource.component(folder: transformerFolder, baseName: "diffusion_pytorch_model")
        }
        model = FluxTransformer2DModel(configuration: configuration)
        schedulerConfiguration = try SchedulerConfiguration.load(from: folder.appendingPathComponent("scheduler/scheduler_config.json"))

        // A folder may leave out the text encoders and the VAE (diffusers' `text_encoder=None`):
        // it can then denoise from given text states, and refuses full generations.
        func present(_ component: String) -> Bool {
            FileManager.default.fileExists(atPath: folder.appendingPathComponent(component).appendingPathComponent("config.json").path)
        }
        if present("text_encoder") {
            let clipFolder = folder.appendingPathComponent("text_encoder")
            let component = ModelComponent(configuration: try CLIPTextConfiguration.load(clipFolder.appendingPathComponent("config.json")),
                                           weights: try file?.clip ?? SafeTensorsSource.component(folder: clipFolder, baseName: "model"))
            clip = PromptEncoder(
                [("text_encoder", try CLIPTokenizer.load(folder: folder.appendingPathComponent("tokenizer")), component, false, .pooler)],
                backend: backend, dtype: dtype)
        } else {
            clip = nil
        }
        if present("text_encoder_2") {
            let t5Folder = folder.appendingPathComponent("text_encoder_2")
            let component = ModelComponent(configuration: try T5Configuration.load(t5Folder.appendingPathComponent("config.json")),
                                           weights: try file?.t5 ?? SafeTensorsSource.component(folder: t5Folder, baseName: "model"))
            t5 = T5PromptEncoder(tokenizer: try T5Tokenizer(folder: folder.appendingPathComponent("tokenizer_2")), component: component,
                                 label: "text_encoder_2", backend: backend, dtype: dtype)
        } else {
            t5 = nil
        }
        if present("vae") {
            let vaeFolder = folder.appendingPathComponent("vae")
            autoencoder = LatentAutoencoder(
                ModelComponent(configuration: try AutoencoderKLConfiguration.load(vaeFolder.appendingPathComponent("config.json")),
                               weights: try file?.vae ?? SafeTensorsSource.component(folder: vaeFolder, baseName: "diffusion_pytorch_model")),
                backend: backend, dtype: dtype)
        } else {
            autoencoder = nil
        }

        adaptedTransformer = AdaptedWeights(label: "transformer", base: transformerWeights)
        // kohya (sd-scripts): CLIP-L is lora_te1_, T5 lora_te3_.
        adapters = LoRAAdapters(
            slots: [.init(names: .fluxTransformer(weights: transformerWeights), weights: adaptedTransformer)]
                + (clip?.loraSlots(kohyaPrefixes: [["lora_te1_", "lora_te_"]]) ?? []) + (t5.map { [$0.loraSlot(kohyaPrefixes: ["lora_te3_", "lora_te2_"])] } ?? []),
            backend: backend)

        // The encoders and the transformer one after the other at least; together if they can.
        var encoders = WeightFootprint()
        clip?.addWeights(to: &encoders)
        if let t5 { encoders.add(t5.residency.label, t5.component.weights, dtype: dtype) }
        let transformerBytes = WeightFootprint.bytes(of: transformerWeights, dtype: dtype)
        let vaeBytes = autoencoder.map { WeightFootprint.bytes(of: $0.weights, dtype: dtype) } ?? 0
        var together = WeightFootprint()
        together.components = [("text encoders", encoders.totalBytes), ("transformer", transformerBytes), ("vae", vaeBytes)]
        keepsTextEncodersResident = (try? together.check(on: backend)) != nil
        if !keepsTextEncodersResident {
            var alternating = WeightFootprint()
            alternating.components = [
                (encoders.totalBytes > transformerBytes ? "text encoders (then the transformer)" : "transformer (after the text encoders)",
                 max(encoders.totalBytes, transformerBytes)), ("vae", vaeBytes),
            ]
            try alternating.check(on: backend)
        }
        weightBytes = together.totalBytes

        let latentSize = 128 * 8
        defaults = GenerationDefaults(
            width: latentSize, height: latentSize, steps: 28, guidanceScale: 3.5, sampler: SamplerName.flowEuler.rawValue,
            imageToImageStrength: 0.6, inpaintingStrength: 0.6, maxSequenceLength: configuration.guidanceEmbeds ? 512 : 256)
    }

    // MARK: DiffusionPipeline

    /// `plan`'s checks, and the components a full generation needs.
    public func check(_ request: GenerationRequest) throws {
        _ = try plan(request)
        try checkAdapters(request)
        let missing = [("text_encoder", clip == nil), ("text_encoder_2", t5 == nil), ("vae", autoencoder == nil)].filter(\.1).map(\.0)
        if !missing.isEmpty {
            throw PipelineError.invalidModel(
                "\(modelURL.path) has no \(missing.joined(separator: ", ")): it can only denoise from given text states")
        }
    }



    /// The final latents `[N, 16, h, w]` (unpacked) from text states computed elsewhere: T5's
    /// `[N, Lt, joint]` and CLIP's pooled `[N, P]`, FluxPipeline's `prompt_embeds` and
    /// `pooled_prompt_embeds` (N = the request's batch count).
    public func denoise(
        _ request: GenerationRequest, textStates: ShapedArray, pooled: ShapedArray, progress: (GenerationProgress) -> Void = { _ in },
        isCancelled: () -> Bool = { false }
    ) throws -> ShapedArray {
        let c = model.configuration
        guard textStates.shape.count == 3, textStates.shape[0] == request.batchCount, textStates.shape[2] == c.jointAttentionDimension else {
            throw PipelineError.invalidRequest("text states \(textStates.shape) are not [\(request.batchCount), L, \(c.jointAttentionDimension)]")
        }
        guard pooled.shape == [request.batchCount, c.pooledProjectionDimension] else {
            throw PipelineError.invalidRequest("pooled text embedding \(pooled.shape) is not [\(request.batchCount), \(c.pooledProjectionDimension)]")
        }
        return try GenerationRunner.latents(self, request, conditioning: conditioning(textStates: textStates, pooled: pooled, request: request),
                                            progress: progress, isCancelled: isCancelled)
    }

    /// Latents `[N, 16, h, w]` (unpacked) -> images `[N, 3, H, W]` in [-1, 1], as the pipeline ends.
    public func decode(_ latents: ShapedArray) throws -> ShapedArray {
        guard let autoencoder else { throw PipelineError.invalidModel("\(modelURL.path) has no VAE") }
        return try autoencoder.decode(latents)
    }

    /// CLIP ids `[N * 77]` and T5 ids `[N * maxSequenceLength]` of `prompts`, flat, as the encoders read them.
    public func tokenIDs(_ prompts: [String], maxSequenceLength: Int) throws -> (clip: [Int32], t5: [Int32]) {
        let (clip, t5) = try textEncoders()
        return (clip.tokenIDs(prompts, encoder: 0), try t5.tokenIDs(prompts, maxSequenceLength: maxSequenceLength))
    }

    /// T5's states `[N, Lt, joint]` and CLIP's pooled output `[N, P]` for `prompts`.
    public func encode(_ prompts: [String], maxSequenceLength: Int) throws -> (states: ShapedArray, pooled: ShapedArray) {
        let (clip, t5) = try textEncoders()
        let states = try t5.encode(prompts, maxSequenceLength: maxSequenceLength)
        guard let pooled = try clip.encode(prompts).pooled else { throw PipelineError.failed("CLIP gave no pooled output") }
        if !keepsTextEncodersResident {
            t5.release()
            clip.release()
        }
        return (states, pooled)
    }

    private func textEncoders() throws -> (PromptEncoder, T5PromptEncoder) {
        guard let clip, let t5 else { throw PipelineError.invalidModel("\(modelURL.path) has no text encoders (text_encoder, text_encoder_2)") }
        return (clip, t5)
    }

    // MARK: Stages

    /// FluxPipeline's: 2^(VAE levels - 1), or 8 without a VAE.
    private var vaeScaleFactor: Int { autoencoder?.downscaleFactor ?? 8 }

    func plan(_ request: GenerationRequest) throws -> DenoisingPlan {
        func fail(_ message: String) throws -> Never { throw PipelineError.invalidRequest(message) }
        var request = request
        // schnell has no guidance at all: it runs as scale 1, the scale that means "no guidance".
        if !model.configuration.guidanceEmbeds { request.guidanceScale = 1 }
        guard case .prompt(_, let negative) = request.conditioning else {
            try fail("class labels are for class-conditional models (DiT); FLUX takes a prompt")
        }
        if negative != nil { throw PipelineError.unsupported("a negative prompt with FLUX (its guidance is embedded, there is no unconditional pass)") }
        if request.options.guidanceRescale > 0 { throw PipelineError.unsupported("guidance rescale with FLUX (it has no classifier-free guidance)") }
        if request.options.withoutT5 { throw PipelineError.unsupported("without T5 with FLUX: its text conditioning is T5's") }
        if [request.options.originalSize, request.options.cropTopLeft, request.options.targetSize].contains(where: { $0 != nil }) {
            throw PipelineError.unsupported("size micro-conditioning is SDXL's, not FLUX's")
        }
        if let spacing = request.sigmaSpacing, spacing != .default {
            throw PipelineError.unsupported("a \(spacing.rawValue) sigma spacing with FLUX: its sigmas are FluxPipeline's own")
        }
        // Whole latent pixels in whole 2x2 patches.
        try request.validate(sizeMultiple: vaeScaleFactor * 2)
        let length = maxSequenceLength(request)
        guard (1...512).contains(length) else { try fail("max sequence length \(length): must be in 1...512 (FluxPipeline's limit)") }
        let scheduler = try SchedulerChoice.make(for: request, configuration: schedulerConfiguration, flowMatching: true)
        let (height, width) = FluxLatents.latentSize(width: request.width, height: request.height, vaeScaleFactor: vaeScaleFactor)
        try FluxSchedule.apply(to: scheduler, steps: request.steps, imageSequenceLength: (height / 2) * (width / 2))
        let timesteps: [Double]
        if request.mode == .textToImage {
            scheduler.setBeginIndex(0)
            timesteps = scheduler.timesteps
        } else {
            timesteps = try ScheduleStart.skipsTruncatedSteps.timesteps(scheduler, request: request)
        }
        var plan = DenoisingPlan(
            request: request, scheduler: scheduler, timesteps: timesteps,
            latentShape: [request.batchCount, model.configuration.inChannels / 4, height, width], layout: .packed(height: height, width: width),
            guidance: .none)
        plan.scalesModelInput = false
        return plan
    }

    /// The T5 length a request uses: its own, else 512 for guidance-distilled (dev)
    /// transformers and 256 for schnell, the values their releases use.
    func maxSequenceLength(_ request: GenerationRequest) -> Int {
        request.options.maxSequenceLength ?? defaults.maxSequenceLength ?? 256
    }

    func conditioning(for plan: DenoisingPlan) throws -> [String: HostTensor] {
        // T5 has no per-token weighting: A1111's syntax is taken out, its text kept.
        let prompt = plan.request.options.promptSyntax == .a1111 ? A1111Prompt.plainText(plan.request.prompt ?? "") : plan.request.prompt ?? ""
        let (states, pooled) = try encode([prompt], maxSequenceLength: maxSequenceLength(plan.request))
        let count = plan.request.batchCount
        return conditioning(textStates: states.repeated(count), pooled: pooled.repeated(count), request: plan.request)
    }

    private func conditioning(textStates: ShapedArray, pooled: ShapedArray, request: GenerationRequest) -> [String: HostTensor] {
        var inputs = ["encoder_hidden_states": textStates.hostTensor(), "pooled_projections": pooled.hostTensor()]
        if model.configuration.guidanceEmbeds {
            // FLUX.1-dev's embedded guidance; schnell has none and ignores the scale, as diffusers does.
            inputs["guidance"] = HostTensor(shape: [textStates.shape[0]], scalars: .init(repeating: request.guidanceScale, count: textStates.shape[0]))
        }
        return inputs
    }

    func denoiser(for plan: DenoisingPlan, conditioning: [String: HostTensor], deviceStep: DeviceStep?) throws -> PreparedDenoiser {
        let c = model.configuration
        guard let text = conditioning["encoder_hidden_states"], let pooled = conditioning["pooled_projections"] else {
            throw PipelineError.failed("the transformer's conditioning is incomplete")
        }
        let (rows, columns) = (plan.latentShape[2] / 2, plan.latentShape[3] / 2)
        let sampleShape = plan.stateShape
        let rotary = try model.rotaryEmbedding.tables(
            textIDs: FluxLatents.textIDs(length: text.shape[1]).hostTensor(),
            imageIDs: FluxLatents.imageIDs(patchRows: rows, patchColumns: columns).hostTensor())
        let key = "\(sampleShape)-\(text.shape)-\(deviceStep?.description ?? "prediction")"
        let graph = try denoisers.graph(for: key) {
            let graph = Graph()
            let binder = WeightBinder(graph: graph, source: adaptedTransformer.current, dtype: dtype, residency: adaptedTransformer.residency)
            let batch = sampleShape[0]
            // Timesteps and guidance stay f32: σ·1000 must not round to f16 before its sinusoid.
            var result = try model(
                hiddenStates: graph.input("sample", Shape(sampleShape), dtype: dtype),
                encoderHiddenStates: graph.input("encoder_hidden_states", text.shape, dtype: dtype),
                pooledProjections: graph.input("pooled_projections", pooled.shape, dtype: dtype),
                timesteps: graph.input("timesteps", [batch], dtype: .float32),
                guidance: c.guidanceEmbeds ? graph.input("guidance", [batch], dtype: .float32) : nil,
                rotaryCos: graph.input("rotary_cos", rotary.cos.shape), rotarySin: graph.input("rotary_sin", rotary.sin.shape),
                weights: WeightScope(binder))
            if let deviceStep { result = try deviceStep.appended(to: graph, prediction: result) }
            return try backend.prepare(graph, outputs: [result], constants: binder.constants())
        }
        var inputs = conditioning
        inputs["rotary_cos"] = rotary.cos
        inputs["rotary_sin"] = rotary.sin
        // FluxPipeline passes the f32 timestep divided by 1000 in f32.
        return PreparedDenoiser(graph: graph, fixedInputs: inputs, timestepValue: { Float($0) / 1000 })
    }
}
