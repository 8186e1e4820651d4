import KilnSampling

/// A finished generation.
///
/// Shapes: `latents` `[N, C, h, w]`, the sampler's final latents before the VAE's scaling is
/// undone (what diffusers returns with `output_type="latent"`, FLUX's unpacked); `images`
/// `[N, 3, H, W]`, the VAE's output, nominally in [-1, 1] (KilnImage's
/// `DiffusersImageProcessor.postprocess` turns it into 8-bit images as diffusers does).
public struct GenerationResult: Sendable {
    /// The request as it ran.
    public var request: GenerationRequest
    public var latents: ShapedArray
    public var images: ShapedArray
    /// The seed of each image: one generator makes the whole batch, so all share the request's.
    public var seeds: [UInt64]
    /// The timesteps the sampler visited, in order (the model calls made).
    public var timesteps: [Double]
    /// Seconds per stage: text, image (img2img), denoise (all steps), decode.
    public var stageSeconds: [GenerationProgress.Stage: Double]
    /// The LoRAs merged into the weights, with their hashes, in the request's order.
    public var loras: [AppliedLoRA] = []
    /// The tiny autoencoder (TAESD file or folder name) that decoded `images` instead of the
    /// VAE; nil when the VAE decoded them.
    public var tinyAutoencoder: String?

    public var imageCount: Int { images.shape.first ?? 0 }
}
