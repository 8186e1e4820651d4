import KilnSampling

/// Everything one generation needs besides the model: a value type, so a render farm can keep a
/// list of them, encode them as JSON and replay any one exactly.
///
/// Defaults follow diffusers' pipelines (`StableDiffusionPipeline.__call__` and friends): 50
/// steps, guidance 7.5 (5.0 for SDXL is the caller's choice), strength 0.8 for img2img and 1.0
/// for inpainting, the model's own scheduler. Sizes are in pixels and must be multiples of the
/// VAE's downscale factor (8 for every Stable Diffusion VAE).
public struct GenerationRequest: Sendable, Equatable {
    /// What the generation starts from.
    public enum Mode: String, Sendable, Equatable, CaseIterable {
        /// Pure noise.
        case textToImage = "txt2img"
        /// An init image noised to `strength` (`StableDiffusionImg2ImgPipeline`).
        case imageToImage = "img2img"
        /// An init image and a mask; white (>= 0.5) is repainted (`StableDiffusionInpaintPipeline`).
        case inpainting = "inpaint"
    }

    public var prompt: String
    /// nil is diffusers' `negative_prompt=None`: an empty prompt for SD1/SD2, zero embeddings for
    /// SDXL models whose pipeline sets `force_zeros_for_empty_prompt`. `""` is encoded as text.
    public var negativePrompt: String?
    public var width: Int
    public var height: Int
    public var steps: Int
    /// Classifier-free guidance scale; guidance is off at 1 or below, as in diffusers.
    public var guidanceScale: Float
    /// Lin et al.'s guidance rescale (https://arxiv.org/abs/2305.08891, section 3.4), 0 = off.
    public var guidanceRescale: Float
    /// `--sampler`: nil keeps the model's scheduler class.
    public var sampler: SamplerName?
    /// `--scheduler`: the sigma spacing; nil keeps the configuration's, `.default` turns Karras
    /// and exponential spacing off.
    public var sigmaSpacing: SigmaSpacing?
    /// Seeds `torch.Generator("cpu").manual_seed(seed)`.
    public var seed: UInt64
    /// Images made in one batched run from one generator (diffusers' `num_images_per_prompt`).
    public var batchCount: Int
    public var mode: Mode
    /// img2img / inpainting: how much of the schedule runs, in [0, 1].
    public var strength: Float
    /// img2img / inpainting: `[1, 3, height, width]` in [-1, 1] (pixel / 127.5 - 1).
    public var initImage: ShapedArray?
    /// Inpainting: `[1, 1, height, width]` of 0 (keep) and 1 (repaint), already binarised.
    public var mask: ShapedArray?
    /// SDXL micro-conditioning; nil means diffusers' defaults: (height, width), (0, 0), (height, width).
    public var originalSize: [Int]?
    public var cropTopLeft: [Int]?
    public var targetSize: [Int]?
    /// Class-conditional models (DiT): one image per label, each in `0..<num_classes`; the
    /// prompt is then empty. nil for text-conditioned models.
    public var classLabels: [Int]?

    public init(
        prompt: String, negativePrompt: String? = nil, width: Int = 512, height: Int = 512, steps: Int = 50,
        guidanceScale: Float = 7.5, guidanceRescale: Float = 0, sampler: SamplerName? = nil,
        sigmaSpacing: SigmaSpacing? = nil, seed: UInt64 = 0, batchCount: Int = 1, mode: Mode = .textToImage,
        strength: Float? = nil, initImage: ShapedArray? = nil, mask: ShapedArray? = nil
    ) {
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.width = width
        self.height = height
        self.steps = steps
        self.guidanceScale = guidanceScale
        self.guidanceRescale = guidanceRescale
        self.sampler = sampler
        self.sigmaSpacing = sigmaSpacing
        self.seed = seed
        self.batchCount = batchCount
        self.mode = mode
        self.strength = strength ?? (mode == .imageToImage ? 0.8 : 1.0)
        self.initImage = initImage
        self.mask = mask
    }


    /// Every problem a request can have on its own (sizes against `downscaleFactor`, ranges,
    /// image and mask shapes), checked before any work starts; each names the setting.
    public func validate(downscaleFactor: Int) throws {
        func fail(_ message: String) throws -> Never { throw PipelineError.invalidRequest(message) }
        if width <= 0 || height <= 0 { try fail("size \(width)x\(height): width and height must be positive") }
        if width % downscaleFactor != 0 || height % downscaleFactor != 0 {
            try fail("size \(width)x\(height): width and height must be multiples of \(downscaleFactor) (the VAE's downscale factor)")
        }
        if steps <= 0 { try fail("steps \(steps): must be at least 1") }
        if batchCount <= 0 { try fail("batch count \(batchCount): must be at least 1") }
        if !guidanceScale.isFinite { try fail("guidance scale \(guidanceScale): must be a finite number") }
        if !(0...1).contains(guidanceRescale) { try fail("guidance rescale \(guidanceRescale): must be in [0, 1]") }
        if !(0...1).contains(strength) { try fail("strength \(strength): must be in [0, 1]") }
        switch mode {
        case .textToImage:
            if initImage != nil || mask != nil { try fail("txt2img takes no init image or mask") }
        case .imageToImage, .inpainting:
            guard let initImage else { try fail("\(mode.rawValue) needs an init image") }
            if initImage.shape != [1, 3, height, width] {
                try fail("init image is \(Self.describe(initImage.shape)), the request is \(width)x\(height)")
            }
            if mode == .inpainting {
                guard let mask else { try fail("inpainting needs a mask") }
                if mask.shape != [1, 1, height, width] {
                    try fail("mask is \(Self.describe(mask.shape)), the request is \(width)x\(height)")
                }
            } else if mask != nil {
                try fail("img2img takes no mask (use inpainting)")
            }
        }
        for (name, pair) in [("original size", originalSize), ("crop top-left", cropTopLeft), ("target size", targetSize)] {
            if let pair, pair.count != 2 { try fail("\(name) needs two numbers, got \(pair.count)") }
        }
    }

    private static func describe(_ shape: [Int]) -> String {
        shape.count == 4 ? "\(shape[3])x\(shape[2])" : "\(shape)"
    }
}
