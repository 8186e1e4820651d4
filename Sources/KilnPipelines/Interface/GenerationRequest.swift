import KilnSampling

/// Everything one generation needs besides the model, for every family: a value type, so a
/// render farm can keep a list of them and a server a queue, and replay any one exactly.
///
/// Start from a pipeline's `defaults` (`pipeline.defaults.request(.prompt("a red car", negative: nil))`)
/// and change what the caller asked for. Sizes are in pixels; images are `[1, 3, H, W]` in
/// [-1, 1] (pixel / 127.5 - 1), masks `[1, 1, H, W]` of 0 (keep) and 1 (repaint).
public struct GenerationRequest: Sendable, Equatable {
    /// What the images are conditioned on.
    public enum Conditioning: Sendable, Equatable {
        /// Text, taken literally. A nil negative prompt is diffusers' `negative_prompt=None`: an
        /// empty prompt for SD1/SD2/SD3, zero embeddings for SDXL models whose pipeline sets
        /// `force_zeros_for_empty_prompt`; `""` is encoded as text.
        case prompt(String, negative: String?)
        /// Class-conditional models (DiT): one image per label (times `batchCount`).
        case classLabels([Int])
    }

    /// What a generation starts from, with the data it needs.
    public enum Mode: Sendable, Equatable {
        /// Pure noise.
        case textToImage
        /// An init image `[1, 3, H, W]` noised to `strength` of the schedule, in [0, 1].
        case imageToImage(image: ShapedArray, strength: Float)
        /// An init image and a mask `[1, 1, H, W]` (1 = repaint); `strength` as for image-to-image.
        case inpainting(image: ShapedArray, mask: ShapedArray, strength: Float)

        /// `txt2img`, `img2img` or `inpaint`, as image metadata and the CLI name modes.
        public var name: String {
            switch self {
            case .textToImage: "txt2img"
            case .imageToImage: "img2img"
            case .inpainting: "inpaint"
            }
        }

        public var image: ShapedArray? {
            switch self {
            case .textToImage: nil
            case .imageToImage(let image, _), .inpainting(let image, _, _): image
            }
        }

        public var mask: ShapedArray? {
            if case .inpainting(_, let mask, _) = self { mask } else { nil }
        }

        /// The share of the schedule that runs (1 for text-to-image).
        public var strength: Float {
            switch self {
            case .textToImage: 1
            case .imageToImage(_, let strength), .inpainting(_, _, let strength): strength
            }
        }
    }

    /// Settings only some families have. A family that cannot honour one that is set refuses
    /// the request in `check`, naming it.
    public struct Options: Sendable, Equatable {
        /// SD3 and FLUX: T5 tokens (diffusers' `max_sequence_length`); nil takes the family's default.
        public var maxSequenceLength: Int?
        /// SD3: T5's states are zeros, as diffusers' `text_encoder_3=None`.
        public var withoutT5: Bool
        /// Lin et al.'s guidance rescale (https://arxiv.org/abs/2305.08891, section 3.4), 0 = off;
        /// Stable Diffusion 1.x/2.x/XL text-to-image.
        public var guidanceRescale: Float
        /// SDXL micro-conditioning `(height, width)` pairs; nil means diffusers' defaults:
        /// (height, width), (0, 0), (height, width).
        public var originalSize: [Int]?
        public var cropTopLeft: [Int]?
        public var targetSize: [Int]?
        /// LoRAs merged into the weights for this request, in order (Stable Diffusion 1.x/2.x/XL,
        /// SD3, FLUX). The next request's set replaces this one's; an equal set costs nothing.
        public var loras: [LoRARequest]
        /// How the prompt is read: literally (diffusers), or with AUTOMATIC1111's emphasis,
        /// `BREAK` and prompts longer than 75 tokens.
        public var promptSyntax: PromptSyntax
        /// Decode the final latents with the pipeline's tiny autoencoder (TAESD) instead of its VAE:
        /// fast, lower quality. The pipeline must have been opened with one.
        public var decodesWithTinyAutoencoder: Bool

        public init(
            maxSequenceLength: Int? = nil, withoutT5: Bool = false, guidanceRescale: Float = 0,
            originalSize: [Int]? = nil, cropTopLeft: [Int]? = nil, targetSize: [Int]? = nil, loras: [LoRARequest] = [],
            promptSyntax: PromptSyntax = .literal, decodesWithTinyAutoencoder: Bool = false
        ) {
            self.maxSequenceLength = maxSequenceLength
            self.withoutT5 = withoutT5
            self.guidanceRescale = guidanceRescale
            self.originalSize = originalSize
            self.cropTopLeft = cropTopLeft
            self.targetSize = targetSize
            self.loras = loras
            self.promptSyntax = promptSyntax
            self.decodesWithTinyAutoencoder = decodesWithTinyAutoencoder
        }
    }

    public var conditioning: Conditioning
    public var mode: Mode
    public var width: Int
    public var height: Int
    public var steps: Int
    /// Classifier-free guidance scale (off at 1 or below, as in diffusers); FLUX.1-dev's
    /// embedded guidance.
    public var guidanceScale: Float
    /// nil keeps the model's scheduler class.
    public var sampler: SamplerName?
    /// nil keeps the scheduler configuration's spacing; `.default` turns Karras and
    /// exponential spacing off.
    public var sigmaSpacing: SigmaSpacing?
    /// Seeds `torch.Generator("cpu").manual_seed(seed)`: one generator for the whole batch.
    public var seed: UInt64
    /// Images made in one batched run per prompt or label (diffusers' `num_images_per_prompt`).
    public var batchCount: Int
    public var options: Options

    public init(
        conditioning: Conditioning, mode: Mode = .textToImage, width: Int, height: Int, steps: Int, guidanceScale: Float,
        sampler: SamplerName? = nil, sigmaSpacing: SigmaSpacing? = nil, seed: UInt64 = 0, batchCount: Int = 1,
        options: Options = Options()
    ) {
        self.conditioning = conditioning
        self.mode = mode
        self.width = width
        self.height = height
        self.steps = steps
        self.guidanceScale = guidanceScale
        self.sampler = sampler
        self.sigmaSpacing = sigmaSpacing
        self.seed = seed
        self.batchCount = batchCount
        self.options = options
    }

    /// A text-conditioned request (diffusers' `StableDiffusionPipeline.__call__` defaults).
    public init(
        prompt: String, negativePrompt: String? = nil, mode: Mode = .textToImage, width: Int = 512, height: Int = 512,
        steps: Int = 50, guidanceScale: Float = 7.5, sampler: SamplerName? = nil, sigmaSpacing: SigmaSpacing? = nil,
        seed: UInt64 = 0, batchCount: Int = 1, options: Options = Options()
    ) {
        self.init(conditioning: .prompt(prompt, negative: negativePrompt), mode: mode, width: width, height: height, steps: steps,
                  guidanceScale: guidanceScale, sampler: sampler, sigmaSpacing: sigmaSpacing, seed: seed, batchCount: batchCount,
                  options: options)
    }

    /// The prompt, or nil for class labels.
    public var prompt: String? {
        if case .prompt(let prompt, _) = conditioning { prompt } else { nil }
    }

    public var negativePrompt: String? {
        if case .prompt(_, let negative) = conditioning { negative } else { nil }
    }

    public var classLabels: [Int]? {
        if case .classLabels(let labels) = conditioning { labels } else { nil }
    }

    /// Images the request makes: `batchCount` per prompt, or per class label.
    public var imageCount: Int {
        (classLabels?.count ?? 1) * batchCount
    }

    /// The largest values a request may ask for: beyond them the work could not finish in any
    /// reasonable time or memory, so they are refused before anything is allocated.
    public enum Limits {
        public static let side = 16_384
        public static let steps = 10_000
        public static let images = 256
    }

    /// The checks every family makes before its own: positive sizes that are multiples of
    /// `sizeMultiple` (the VAE's factor, times the patch size for transformers), sane ranges, and
    /// images and masks the request's size. Each error names the setting.
    public func validate(sizeMultiple: Int) throws {
        func fail(_ message: String) throws -> Never { throw PipelineError.invalidRequest(message) }
        if width <= 0 || height <= 0 { try fail("size \(width)x\(height): width and height must be positive") }
        if width > Limits.side || height > Limits.side {
            try fail("size \(width)x\(height): each side must be at most \(Limits.side) pixels")
        }
        if width % sizeMultiple != 0 || height % sizeMultiple != 0 {
            try fail("size \(width)x\(height): width and height must be multiples of \(sizeMultiple)")
        }
        if steps <= 0 || steps > Limits.steps { try fail("steps \(steps): must be in 1...\(Limits.steps)") }
        if batchCount <= 0 { try fail("batch count \(batchCount): must be at least 1") }
        if imageCount > Limits.images { try fail("\(imageCount) images in one request: at most \(Limits.images)") }
        if !guidanceScale.isFinite { try fail("guidance scale \(guidanceScale): must be a finite number") }
        if !(0...1).contains(options.guidanceRescale) { try fail("guidance rescale \(options.guidanceRescale): must be in [0, 1]") }
        if let length = options.maxSequenceLength, length <= 0 { try fail("max sequence length \(length): must be at least 1") }
        if case .classLabels(let labels) = conditioning, labels.isEmpty { try fail("no class labels: give at least one") }
        if let image = mode.image, image.shape != [1, 3, height, width] {
            try fail("init image is \(Self.describe(image.shape)), the request is \(width)x\(height)")
        }
        if let mask = mode.mask, mask.shape != [1, 1, height, width] {
            try fail("mask is \(Self.describe(mask.shape)), the request is \(width)x\(height)")
        }
        if !(0...1).contains(mode.strength) { try fail("strength \(mode.strength): must be in [0, 1]") }
        for (name, pair) in [("original size", options.originalSize), ("crop top-left", options.cropTopLeft), ("target size", options.targetSize)] {
            if let pair, pair.count != 2 { try fail("\(name) needs two numbers, got \(pair.count)") }
        }
    }

    private static func describe(_ shape: [Int]) -> String {
        shape.count == 4 ? "\(shape[3])x\(shape[2])" : "\(shape)"
    }
}
