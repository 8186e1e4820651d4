import Foundation
import KilnGraph
import KilnModels
import KilnSampling

/// FLUX's 16-channel VAE with its shift factor. Decoding as FluxPipeline ends: latents
/// `[B, 16, h, w]` are unscaled (`/ scaling_factor + shift_factor`) and decoded (tiled when
/// large) -> the VAE's images `[B, 3, 8h, 8w]`, nominally in [-1, 1] (PNG writing maps them to
/// [0, 1] as diffusers' image processor does). Encoding as FluxImg2ImgPipeline begins: a
/// posterior sample, shifted and scaled (`(z - shift_factor) * scaling_factor`).
public final class FluxAutoencoder {
    public let configuration: AutoencoderKLConfiguration
    public let weights: TensorSource
    private let autoencoder: TiledAutoencoder

    public init(configuration: AutoencoderKLConfiguration, weights: TensorSource, backend: Backend, dtype: DType) {
        self.configuration = configuration
        self.weights = weights
        autoencoder = TiledAutoencoder(model: AutoencoderKL(configuration: configuration), backend: backend, weights: weights, dtype: dtype)
    }

    /// Loads a FluxPipeline folder's `vae`; a single file's VAE, when it carries one, replaces
    /// the folder's weights (the configuration stays the folder's).
    public convenience init(folder: URL, singleFile: FluxSingleFile? = nil, backend: Backend, dtype: DType) throws {
        let vae = folder.appendingPathComponent("vae")
        let weights = try singleFile?.vae ?? SafeTensorsSource.component(folder: vae, baseName: "diffusion_pytorch_model")
        self.init(configuration: try AutoencoderKLConfiguration.load(vae.appendingPathComponent("config.json")),
                  weights: weights, backend: backend, dtype: dtype)
    }

    /// Image `[1, 3, H, W]` in [-1, 1] -> latents `[1, C, H/8, W/8]`, sampled from the posterior
    /// with one draw from `generator` (diffusers' `retrieve_latents(vae.encode(x), generator)`).
    public func encode(_ image: ShapedArray, generator: NoiseGenerator) throws -> ShapedArray {
        guard image.shape.count == 4, image.shape[1] == 3 else {
            throw FluxPipelineError.invalidRequest("the VAE encodes [B, 3, H, W] images, got \(image.shape)")
        }
        let (mean, logVariance) = try autoencoder.encode(HostTensor(shape: Shape(image.shape), scalars: image.scalars))
        let noise = generator.normal(count: mean.scalars.count)
        let (scale, shift) = (configuration.scalingFactor, configuration.shiftFactor ?? 0)
        var scalars = mean.scalars
        for index in scalars.indices {
            let sample = scalars[index] + Foundation.exp(0.5 * logVariance.scalars[index]) * noise[index]
            scalars[index] = (sample - shift) * scale
        }
        return ShapedArray(shape: mean.shape.dimensions, scalars: scalars)
    }

    /// `[B, C, h, w]` latents -> `[B, 3, H, W]` images, nominally in [-1, 1].
    public func decode(_ latents: ShapedArray) throws -> ShapedArray {
        guard latents.shape.count == 4, latents.shape[1] == configuration.latentChannels else {
            throw FluxPipelineError.invalidLatents("the VAE decodes [B, \(configuration.latentChannels), h, w], got \(latents.shape)")
        }
        let (scale, shift) = (configuration.scalingFactor, configuration.shiftFactor ?? 0)
        let unscaled = latents.scalars.map { $0 / scale + shift }
        let decoded = try autoencoder.decode(HostTensor(shape: Shape(latents.shape), scalars: unscaled))
        guard decoded.scalars.allSatisfy(\.isFinite) else {
            throw FluxPipelineError.invalidLatents("the decoded image has non-finite values (latents \(latents.shape))")
        }
        return ShapedArray(shape: decoded.shape.dimensions, scalars: decoded.scalars)
    }
}
