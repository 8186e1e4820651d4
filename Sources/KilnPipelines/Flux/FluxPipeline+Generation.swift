import Foundation
import KilnGraph
import KilnModels
import KilnSampling

/// One FLUX text-to-image generation's settings, with FluxPipeline's defaults.
public struct FluxGenerationRequest: Sendable {
    public var prompt: String
    public var width: Int
    public var height: Int
    public var steps: Int
    /// FLUX.1-dev's embedded guidance scale (`guidance_scale`, default 3.5); schnell has no
    /// guidance embedding and ignores it, as diffusers does.
    public var guidance: Float
    public var seed: UInt64
    /// Images made together from one seed (`num_images_per_prompt`): the prompt's embeddings repeated.
    public var batchCount: Int
    /// T5 tokens (`max_sequence_length`); nil takes 512 for guidance-distilled (dev) transformers
    /// and 256 for schnell, the values their releases use.
    public var maxSequenceLength: Int?
    /// Image-to-image (FluxImg2ImgPipeline): the init image `[1, 3, height, width]` in [-1, 1].
    public var initImage: ShapedArray?
    /// Inpainting (FluxInpaintPipeline) with `initImage`: `[1, 1, height, width]`, 1 = repaint.
    public var mask: ShapedArray?
    /// The share of the schedule image-to-image runs, in (0, 1] (diffusers' default 0.6).
    public var strength: Float

    public init(prompt: String, width: Int = 1024, height: Int = 1024, steps: Int = 28, guidance: Float = 3.5, seed: UInt64,
                batchCount: Int = 1, maxSequenceLength: Int? = nil, initImage: ShapedArray? = nil, mask: ShapedArray? = nil, strength: Float = 0.6) {
        self.prompt = prompt
        self.width = width
        self.height = height
        self.steps = steps
        self.guidance = guidance
        self.seed = seed
        self.batchCount = batchCount
        self.maxSequenceLength = maxSequenceLength
        self.initImage = initImage
        self.mask = mask
        self.strength = strength
    }
}

/// What a FLUX generation produced: the final latents `[B, 16, h, w]` (unpacked, before the VAE)
/// and the decoded images `[B, 3, H, W]`, nominally in [-1, 1].
public struct FluxGenerationResult: Sendable {
    public var latents: ShapedArray
    public var images: ShapedArray
    /// Steps run (fewer than asked for image-to-image).
    public var stepCount: Int
    /// Seconds spent encoding text, denoising and decoding.
    public var textSeconds: Double
    public var denoisingSeconds: Double
    public var decodingSeconds: Double
}

extension FluxPipeline {
    /// The T5 length a request uses.
    public func maxSequenceLength(_ request: FluxGenerationRequest) -> Int {
        request.maxSequenceLength ?? (model.configuration.guidanceEmbeds ? 512 : 256)
    }

    /// Checks what can be checked before any model runs.
    public func check(_ request: FluxGenerationRequest) throws {
        let factor = vaeScaleFactor * 2
        guard request.width >= factor, request.height >= factor, request.width % factor == 0, request.height % factor == 0 else {
            throw FluxPipelineError.invalidRequest("width and height must be positive multiples of \(factor), got \(request.width)x\(request.height)")
        }
        guard request.steps >= 1 else { throw FluxPipelineError.invalidRequest("steps must be at least 1, got \(request.steps)") }
        guard request.batchCount >= 1 else { throw FluxPipelineError.invalidRequest("batch count must be at least 1, got \(request.batchCount)") }
        let length = maxSequenceLength(request)
        guard (1...512).contains(length) else {
            throw FluxPipelineError.invalidRequest("max sequence length must be in 1...512 (FluxPipeline's limit), got \(length)")
        }
        if let image = request.initImage {
            guard image.shape == [1, 3, request.height, request.width] else {
                throw FluxPipelineError.invalidRequest("the init image is \(image.shape), expected [1, 3, \(request.height), \(request.width)]")
            }
            guard request.strength > 0, request.strength <= 1 else {
                throw FluxPipelineError.invalidRequest("strength must be in (0, 1], got \(request.strength)")
            }
            if let mask = request.mask, mask.shape != [1, 1, request.height, request.width] {
                throw FluxPipelineError.invalidRequest("the mask is \(mask.shape), expected [1, 1, \(request.height), \(request.width)]")
            }
            guard request.steps - Self.skippedSteps(steps: request.steps, strength: request.strength) >= 1 else {
                throw FluxPipelineError.invalidRequest("\(request.steps) steps at strength \(request.strength) leave no step to run")
            }
        }
    }

    /// The device memory the weights take as `generate` holds them: the text encoders and the
    /// transformer one after the other (the encoders are released before the transformer is
    /// prepared unless `keepTextEncoders`), the VAE beside them. Throws
    /// `PipelineError.insufficientMemory` naming each part when they cannot fit `backend`.
    public func checkMemory(promptEncoder: FluxPromptEncoder, autoencoder: FluxAutoencoder, keepTextEncoders: Bool = false) throws {
        let text = promptEncoder.textEncoder
        let encoders = WeightFootprint.bytes(of: text.clipWeights, dtype: text.dtype) + WeightFootprint.bytes(of: text.t5Weights, dtype: text.dtype)
        let transformer = WeightFootprint.bytes(of: weights, dtype: dtype)
        var footprint = WeightFootprint()
        if keepTextEncoders {
            footprint.components = [("text encoders", encoders), ("transformer", transformer)]
        } else {
            footprint.components = [(encoders > transformer ? "text encoders (then the transformer)" : "transformer (after the text encoders)",
                                     max(encoders, transformer))]
        }
        footprint.add("vae", autoencoder.weights, dtype: dtype)
        try footprint.check(on: backend)
    }

    /// Prompt -> text states -> denoising loop -> VAE, as FluxPipeline's `__call__` (with an init
    /// image, FluxImg2ImgPipeline's); reports each
    /// stage and step to `progress` and stops with `PipelineError.cancelled` at the next step
    /// once `isCancelled` answers true. The text encoders' device memory is released after
    /// encoding unless `keepTextEncoders` (faster for many generations when all fits at once).
    public func generate(_ request: FluxGenerationRequest, promptEncoder: FluxPromptEncoder, autoencoder: FluxAutoencoder,
                         keepTextEncoders: Bool = false, progress: (GenerationProgress) -> Void = { _ in },
                         isCancelled: () -> Bool = { false }) throws -> FluxGenerationResult {
        try check(request)
        if request.mask != nil && request.initImage == nil { throw FluxPipelineError.invalidRequest("a mask needs an init image") }
        try checkMemory(promptEncoder: promptEncoder, autoencoder: autoencoder, keepTextEncoders: keepTextEncoders)
        let start = Date()
        var clock = start
        func lap() -> Double { defer { clock = Date() }; return Date().timeIntervalSince(clock) }
        var stepCount = request.steps
        func report(_ stage: GenerationProgress.Stage, _ step: Int, _ seconds: Double) {
            progress(GenerationProgress(stage: stage, step: step, stepCount: stepCount, lastSeconds: seconds,
                                        elapsedSeconds: Date().timeIntervalSince(start)))
        }

        let encoded = try promptEncoder.encode([request.prompt], maxSequenceLength: maxSequenceLength(request))
        if !keepTextEncoders { promptEncoder.textEncoder.release() }
        let states = encoded.states.repeated(request.batchCount), pooled = encoded.pooled.repeated(request.batchCount)
        let textSeconds = lap()
        report(.encodingText, 0, textSeconds)

        let denoising = Request(width: request.width, height: request.height, steps: request.steps, guidance: request.guidance, seed: request.seed)
        let image = request.initImage.map { pixels in
            ImageStart(strength: request.strength, mask: request.mask) { generator in try autoencoder.encode(pixels, generator: generator) }
        }
        var stepStart = Date()
        let latents = try denoise(denoising, textStates: states, pooled: pooled, image: image, isCancelled: isCancelled) { step, count in
            stepCount = count
            report(.denoising, step, Date().timeIntervalSince(stepStart))
            stepStart = Date()
        }
        let denoisingSeconds = lap()

        let images = try autoencoder.decode(latents)
        let decodingSeconds = lap()
        report(.decoding, request.steps, decodingSeconds)
        return FluxGenerationResult(latents: latents, images: images, stepCount: stepCount, textSeconds: textSeconds,
                                    denoisingSeconds: denoisingSeconds, decodingSeconds: decodingSeconds)
    }
}
