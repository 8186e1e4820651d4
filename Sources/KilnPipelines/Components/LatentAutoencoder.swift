import Foundation
import KilnGraph
import KilnModels
import KilnSampling

/// An AutoencoderKL as every family's pipeline uses it: the sampler's latents are the VAE's
/// shifted and scaled (`(z - shift_factor) * scaling_factor`; SD's VAEs have no shift), decoded
/// whole or in tiles with the weights resident on the device.
///
/// Shapes: latents `[N, C, h, w]` <-> images `[N, 3, h*f, w*f]` in [-1, 1] (f = 8).
final class LatentAutoencoder {
    let configuration: AutoencoderKLConfiguration
    let weights: TensorSource
    private let tiled: TiledAutoencoder

    init(_ component: ModelComponent<AutoencoderKLConfiguration>, backend: Backend, dtype: DType) {
        configuration = component.configuration
        weights = component.weights
        tiled = TiledAutoencoder(model: component.model, backend: backend, weights: component.weights, dtype: dtype)
    }

    var downscaleFactor: Int { configuration.downscaleFactor }
    var latentChannels: Int { configuration.latentChannels }

    /// `[N, C, h, w]` latents -> `[N, 3, H, W]` images; a non-finite value stops with an error.
    func decode(_ latents: ShapedArray) throws -> ShapedArray {
        let (scale, shift) = (configuration.scalingFactor, configuration.shiftFactor ?? 0)
        let decoded = ShapedArray(try tiled.decode(latents.map { $0 / scale + shift }.hostTensor()))
        try Finiteness.require(decoded, stage: .decoding, "the decoded images")
        return decoded
    }

    /// Images `[N, 3, H, W]` in [-1, 1] -> the posterior means as latents `[N, C, H/f, W/f]`,
    /// `(mean - shift) * scaling_factor`, with no draw (diffusers'
    /// `vae.encode(x).latent_dist.mean * vae.config.scaling_factor`); a non-finite value stops
    /// with an error.
    func encodeMean(_ images: ShapedArray) throws -> ShapedArray {
        let (mean, _) = try tiled.encode(images.hostTensor())
        let (scale, shift) = (configuration.scalingFactor, configuration.shiftFactor ?? 0)
        let latents = ShapedArray(shape: mean.shape.dimensions, scalars: mean.scalars.map { ($0 - shift) * scale })
        try Finiteness.require(latents, stage: .encodingImage, "the encoded images")
        return latents
    }

    /// Image `[1, 3, H, W]` in [-1, 1] -> latents `[1, C, H/f, W/f]` sampled from the posterior
    /// with one draw from `generator` (diffusers' `retrieve_latents(vae.encode(x), generator)`).
    func encode(_ image: ShapedArray, generator: NoiseGenerator) throws -> ShapedArray {
        let (mean, logVariance) = try tiled.encode(image.hostTensor())
        let noise = generator.normal(count: mean.scalars.count)
        let (scale, shift) = (configuration.scalingFactor, configuration.shiftFactor ?? 0)
        var scalars = mean.scalars
        for index in scalars.indices {
            let sample = scalars[index] + Foundation.exp(0.5 * logVariance.scalars[index]) * noise[index]
            scalars[index] = (sample - shift) * scale
        }
        return ShapedArray(shape: mean.shape.dimensions, scalars: scalars)
    }
}
