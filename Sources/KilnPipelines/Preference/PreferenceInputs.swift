import KilnSampling

/// One image as the scorer takes it: already resized and cropped to the scoring resolution,
/// with what SDXL's micro-conditioning reads from that transform.
///
/// Shapes: `pixels` `[1, 3, R, R]` in [-1, 1].
public struct PreferenceImage: Sendable {
    public var pixels: ShapedArray
    /// `(height, width)` before resizing (SDXL's `original_size`).
    public var originalSize: [Int]
    /// `(top, left)` of the crop in the resized image (SDXL's `crops_coords_top_left`).
    public var cropTopLeft: [Int]

    public init(pixels: ShapedArray, originalSize: [Int]? = nil, cropTopLeft: [Int] = [0, 0]) {
        self.pixels = pixels
        self.originalSize = originalSize ?? Array(pixels.shape.suffix(2))
        self.cropTopLeft = cropTopLeft
    }

    /// The side R of the square image.
    public var resolution: Int { pixels.shape.last ?? 0 }
}

/// One draw of the forward process shared by every image it scores: a training timestep and
/// the noise added at it, in the order Diffusion-DPO's training scripts draw them from one
/// `torch.Generator` (the timestep first).
///
/// Shapes: `noise` `[1, C, h, w]`, one image's latents.
public struct PreferenceDraw: Sendable {
    public let timestep: Int64
    public let noise: ShapedArray

    public init(timestep: Int64, noise: ShapedArray) {
        self.timestep = timestep
        self.noise = noise
    }

    /// `count` draws from `generator`, each `torch.randint(0, trainTimesteps, (1,))` then
    /// `torch.randn(latentShape)`, so a run's draws are the seed's whatever the batching.
    public static func draw(_ count: Int, trainTimesteps: Int, latentShape: [Int], from generator: TorchGenerator) -> [PreferenceDraw] {
        (0..<count).map { _ in
            let timestep = generator.integer(in: 0..<Int64(trainTimesteps))
            return PreferenceDraw(timestep: timestep, noise: generator.normal(shape: latentShape))
        }
    }
}

/// The mean squared error of the tuned and of the reference model's prediction against the
/// target (the noise, or v), for one image under one draw: diffusers'
/// `F.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=[1, 2, 3])`.
public struct PreferenceLosses: Sendable, Equatable {
    public var model: Double
    public var reference: Double

    public init(model: Double, reference: Double) {
        self.model = model
        self.reference = reference
    }
}
