import Foundation
import KilnGraph
import KilnModels
import KilnSampling

/// TAESD (taesd, taesdxl, taesd3, taef1) as a pipeline uses it: the final image's fast decode
/// (`GenerationRequest.Options.decodesWithTinyAutoencoder`) and full-size previews in progress
/// reports. Weights stay resident; graphs are cached by shape.
///
/// Opens a diffusers `AutoencoderTiny` folder (config.json + diffusion_pytorch_model.safetensors)
/// or a released `*_decoder.safetensors` file. A file carries no config: 4-channel TAESDs
/// (taesd, taesdxl) read the sampler's latents as they are, 16-channel ones (taesd3, taef1) the
/// latents the model's VAE reads (`latents / scaling_factor + shift_factor`), as diffusers'
/// configs for them say.
///
/// Shapes: latents `[N, C, h, w]` (the sampler's) -> images `[N, 3, 8h, 8w]` in [-1, 1].
public final class TinyAutoencoder: TinyPreviewDecoder, @unchecked Sendable {
    public let url: URL
    public let configuration: AutoencoderTinyConfiguration
    let weights: TensorSource
    let backend: Backend
    let dtype: DType
    private let residency = ResidentWeights(label: "taesd")
    private lazy var graphs = PreparedGraphCache<String, any PreparedGraph>(capacity: 2, byteBudget: backend.activationBudgetBytes)
    private let lock = NSLock()

    /// Opens `url` for a model whose VAE has `latentChannels` channels and the given factors.
    public init(url: URL, latentChannels: Int, vaeScaling: Float, vaeShift: Float?, backend: Backend, dtype: DType) throws {
        self.url = url
        self.backend = backend
        self.dtype = dtype
        do {
            if url.isExistingFolder {
                configuration = try AutoencoderTinyConfiguration.load(url.appendingPathComponent("config.json"))
                weights = try SafeTensorsSource.component(folder: url, baseName: "diffusion_pytorch_model")
            } else {
                let file = try SafeTensorsSource(files: [url])
                guard TinyAutoencoderFile.isSequential(file), file.shape(of: "1.weight") != nil else {
                    throw PipelineError.invalidModel("\(url.path): not a TAESD decoder (a diffusers AutoencoderTiny folder or a taesd*_decoder.safetensors file)")
                }
                let decoder = try TinyAutoencoderFile.decoder(file)
                weights = decoder.weights
                configuration = decoder.latentChannels == 4
                    ? AutoencoderTinyConfiguration(latentChannels: 4, width: decoder.width)
                    : AutoencoderTinyConfiguration(latentChannels: decoder.latentChannels, width: decoder.width, scalingFactor: vaeScaling,
                                                   shiftFactor: vaeShift ?? 0)
            }
        } catch let error as PipelineError {
            throw error
        } catch {
            throw PipelineError.invalidModel("TAESD \(url.path): \(error)")
        }
        guard configuration.latentChannels == latentChannels else {
            throw PipelineError.invalidModel(
                "TAESD \(url.path) decodes \(configuration.latentChannels)-channel latents; this model's have \(latentChannels) (taesd and taesdxl are for SD1/SD2/SDXL, taesd3 for SD3, taef1 for FLUX.1)")
        }
    }

    /// The sampler's latents `[N, C, h, w]` -> images `[N, 3, H, W]` in [-1, 1].
    public func decode(_ latents: ShapedArray) throws -> ShapedArray {
        let c = configuration
        // TAESD's clamp, tanh(z / 3) * 3, on the latents it reads.
        let clamped = latents.map { Foundation.tanh(($0 / c.scalingFactor + c.shiftFactor) / 3) * 3 }
        let graph = try lock.withLock {
            try graphs.graph(for: "\(latents.shape)") {
                let graph = Graph()
                let binder = WeightBinder(graph: graph, source: weights, dtype: dtype, residency: residency)
                let output = try AutoencoderTiny(configuration: c).decode(graph.input("latents", Shape(latents.shape), dtype: dtype), weights: WeightScope(binder))
                return try backend.prepare(graph, outputs: [output], constants: binder.constants())
            }
        }
        let decoded = ShapedArray(try graph.run(["latents": clamped.hostTensor()])[0])                                // [N, 3, H, W] in [0, 1]
        return decoded.map { $0 * 2 - 1 }
    }

    /// `[1, C, h, w]` latents -> the decoded image as 8-bit RGB, as diffusers' `numpy_to_pil` rounds it.
    public func preview(_ latents: ShapedArray) throws -> PreviewImage {
        let image = try decode(latents)
        let (height, width) = (image.shape[2], image.shape[3])
        let plane = height * width
        var pixels = [UInt8](repeating: 0, count: plane * 3)
        for position in 0..<plane {
            for colour in 0..<3 {
                let unit = image.scalars[colour * plane + position] * 0.5 + 0.5
                pixels[position * 3 + colour] = unit.isNaN ? 0 : UInt8((min(max(unit, 0), 1) * 255).rounded())
            }
        }
        return PreviewImage(width: width, height: height, pixels: pixels)
    }

    /// Bytes of the weights on the device.
    var weightBytes: Int { WeightFootprint.bytes(of: weights, dtype: dtype) }
}
