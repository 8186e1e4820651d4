import KilnSampling

/// What a running generation reports after each stage and each sampling step.
public struct GenerationProgress: Sendable {
    public enum Stage: String, Sendable, Equatable {
        case encodingText = "text"
        /// The init image (and masked image) through the VAE's encoder, then the first noise.
        case encodingImage = "image"
        case denoising = "denoise"
        case decoding = "decode"

        /// What the stage is doing, for messages ("denoising", "encoding the prompt").
        public var activity: String {
            switch self {
            case .encodingText: "encoding the prompt"
            case .encodingImage: "encoding the init image"
            case .denoising: "denoising"
            case .decoding: "decoding the latents"
            }
        }
    }

    public var stage: Stage
    /// Steps done and in all (model calls: Heun's second-order calls count, as in diffusers).
    public var step: Int
    public var stepCount: Int
    /// Seconds the last step (or stage) took, and since the generation began.
    public var lastSeconds: Double
    public var elapsedSeconds: Double
    /// The latents after this step (denoising reports only). Nothing is computed from them unless
    /// the caller asks: `latents?.preview()` is the cheap RGB approximation web UIs show.
    public var latents: LatentSnapshot?

    public init(stage: Stage, step: Int, stepCount: Int, lastSeconds: Double, elapsedSeconds: Double, latents: LatentSnapshot? = nil) {
        self.stage = stage
        self.step = step
        self.stepCount = stepCount
        self.lastSeconds = lastSeconds
        self.elapsedSeconds = elapsedSeconds
        self.latents = latents
    }

    /// Seconds the remaining steps would take at the last step's pace.
    public var estimatedSecondsLeft: Double { lastSeconds * Double(max(stepCount - step, 0)) }
}

/// The denoising loop's latents at one step, as the loop holds them (FLUX's packed tokens
/// included), turned into `[N, C, h, w]` or a preview only when asked.
public struct LatentSnapshot: Sendable {
    let values: ShapedArray
    let layout: LatentLayout
    let projection: LatentRGBProjection?
    /// The pipeline's tiny autoencoder (TAESD), when it was opened with one.
    var tinyDecoder: TinyPreviewDecoder?
    /// Image pixels per latent pixel (the VAE's factor, 8).
    var scale: Int = 8

    /// `[N, C, h, w]`, whatever layout the loop uses.
    public func latents() -> ShapedArray { layout.spatial(values) }

    /// Image `index` of the batch as 8-bit RGB at the latent resolution (1/8 of the image's),
    /// through the family's linear latent-to-RGB projection; nil for latent spaces without one.
    public func preview(index: Int = 0) -> PreviewImage? {
        projection?.preview(of: latents(), index: index)
    }

    /// The best preview the pipeline can make of image `index`: the tiny autoencoder's decode at
    /// the image's size (`scale` 1) when the pipeline has one, else the linear projection at
    /// the latent size (`scale` the VAE's factor: enlarge by it to show it at the image's size).
    public func decodedPreview(index: Int = 0) throws -> (preview: PreviewImage, scale: Int)? {
        if let tinyDecoder {
            let latents = latents()
            let one = latents.shape[0] > 1 ? latents.rows(index..<(index + 1)) : latents
            return (try tinyDecoder.preview(one), 1)
        }
        return preview(index: index).map { ($0, scale) }
    }
}

/// Decodes latents to a full-size preview (TAESD), for progress reports.
public protocol TinyPreviewDecoder: Sendable {
    /// `[1, C, h, w]` latents (the sampler's) -> an 8-bit RGB image at the decoder's full size.
    func preview(_ latents: ShapedArray) throws -> PreviewImage
}
