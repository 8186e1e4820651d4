import KilnSampling

/// What a running generation reports after each stage and each sampling step.
public struct GenerationProgress: Sendable, Equatable {
    public enum Stage: String, Sendable, Equatable {
        case encodingText = "text"
        case denoising = "denoise"
        case decoding = "decode"
    }

    public var stage: Stage
    /// Steps done and in all (model calls: Heun's second-order calls count, as in diffusers).
    public var step: Int
    public var stepCount: Int
    /// Seconds the last step (or stage) took, and since the generation began.
    public var lastSeconds: Double
    public var elapsedSeconds: Double
}

/// A finished generation.
///
/// Shapes: `latents` `[N, 4, h, w]`, the sampler's final latents before 1/scaling_factor (what
/// diffusers returns with `output_type="latent"`); `images` `[N, 3, H, W]`, the VAE's output,
/// nominally in [-1, 1] (KilnImage's `DiffusersImageProcessor.postprocess` turns it into 8-bit
/// images exactly as diffusers' `VaeImageProcessor` does).
public struct GenerationResult: Sendable {
    public var latents: ShapedArray
    public var images: ShapedArray
    /// Seconds per stage: text, denoise (all steps), decode.
    public var stageSeconds: [GenerationProgress.Stage: Double]
    /// The timesteps the sampler visited, in order.
    public var timesteps: [Double]
}
