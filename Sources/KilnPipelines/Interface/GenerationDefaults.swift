import KilnSampling

/// What a model uses where a request leaves a setting to it: diffusers' pipeline defaults for
/// its family and the model's own size and scheduler.
public struct GenerationDefaults: Sendable, Equatable {
    /// The model's native size in pixels (its U-Net's or transformer's sample size).
    public var width: Int
    public var height: Int
    public var steps: Int
    public var guidanceScale: Float
    /// The sampler the model's scheduler config names, by Kiln's name.
    public var sampler: String
    public var imageToImageStrength: Float
    public var inpaintingStrength: Float
    /// T5 tokens (SD3, FLUX); nil for families without T5.
    public var maxSequenceLength: Int?
    /// Whether the model takes prompts or class labels.
    public var takesClassLabels: Bool

    public init(
        width: Int, height: Int, steps: Int, guidanceScale: Float, sampler: String, imageToImageStrength: Float,
        inpaintingStrength: Float, maxSequenceLength: Int? = nil, takesClassLabels: Bool = false
    ) {
        self.width = width
        self.height = height
        self.steps = steps
        self.guidanceScale = guidanceScale
        self.sampler = sampler
        self.imageToImageStrength = imageToImageStrength
        self.inpaintingStrength = inpaintingStrength
        self.maxSequenceLength = maxSequenceLength
        self.takesClassLabels = takesClassLabels
    }

    /// A text-to-image request for `conditioning` with every other setting at its default.
    public func request(_ conditioning: GenerationRequest.Conditioning, seed: UInt64 = 0) -> GenerationRequest {
        GenerationRequest(conditioning: conditioning, width: width, height: height, steps: steps, guidanceScale: guidanceScale, seed: seed)
    }

    /// Image-to-image from `image` at `strength`, or this model's default strength.
    public func imageToImage(_ image: ShapedArray, strength: Float? = nil) -> GenerationRequest.Mode {
        .imageToImage(image: image, strength: strength ?? imageToImageStrength)
    }

    /// Inpainting `image` where `mask` is 1, at `strength` or this model's default.
    public func inpainting(_ image: ShapedArray, mask: ShapedArray, strength: Float? = nil) -> GenerationRequest.Mode {
        .inpainting(image: image, mask: mask, strength: strength ?? inpaintingStrength)
    }
}
