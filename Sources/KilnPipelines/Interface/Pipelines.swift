import Foundation
import KilnGraph
import KilnModels

/// Opens any model Kiln runs in one call: detects the family from a diffusers folder's
/// `model_index.json` or a single file's key names, and returns its pipeline.
///
/// ```swift
/// let pipeline = try Pipelines.open(URL(fileURLWithPath: "sd_xl_base_1.0.safetensors"),
///                                   config: URL(fileURLWithPath: "sdxl-folder"), backend: try VulkanBackend())
/// print(pipeline.family, pipeline.defaults.width)
/// ```
public enum Pipelines {
    /// What to open: a folder or file, and what completes or replaces parts of it.
    public struct Source: Sendable, Equatable {
        /// A diffusers folder, or a single `.safetensors` file.
        public var url: URL
        /// For a single file: a diffusers folder of the same family for its configs, tokenizers,
        /// scheduler and whatever components the file lacks.
        public var configFolder: URL?
        /// Stable Diffusion 1.x/2.x/XL: a VAE to use instead of the model's (a `vae` folder or a file).
        public var vae: URL?
        /// Stable Diffusion 1.x/2.x: a 9-channel inpainting U-Net folder for inpainting requests.
        public var inpaintingUNet: URL?
        /// A tiny autoencoder (TAESD: a diffusers AutoencoderTiny folder or a `taesd*_decoder.safetensors`
        /// file) for full-size previews in progress reports and, when a request asks, the final decode.
        public var tinyAutoencoder: URL?

        public init(url: URL, configFolder: URL? = nil, vae: URL? = nil, inpaintingUNet: URL? = nil, tinyAutoencoder: URL? = nil) {
            self.url = url
            self.configFolder = configFolder
            self.vae = vae
            self.inpaintingUNet = inpaintingUNet
            self.tinyAutoencoder = tinyAutoencoder
        }
    }

    /// The diffusers pipeline classes Kiln opens, by family.
    public static let pipelineClasses = [
        "StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline", "StableDiffusionInpaintPipeline", "StableDiffusionXLPipeline",
        "StableDiffusionXLImg2ImgPipeline", "StableDiffusion3Pipeline", "FluxPipeline", "DiTPipeline",
    ]

    /// Opens `source` on `backend`, its weights and activations stored as `dtype` (the CPU
    /// backend computes in f32). Every failure is a `PipelineError.invalidModel` naming the path
    /// and what was found, or `.insufficientMemory` when the weights cannot fit the device.
    public static func open(_ source: Source, backend: Backend, dtype: DType = .float16) throws -> any DiffusionPipeline {
        let family = try self.family(of: source)
        do {
            if family != .stableDiffusion1 && family != .stableDiffusion2 && family != .stableDiffusionXL {
                if source.vae != nil { throw PipelineError.unsupported("a replacement VAE is for Stable Diffusion 1.x/2.x/XL models; this is \(family.displayName)") }
                if source.inpaintingUNet != nil {
                    throw PipelineError.unsupported("an inpainting U-Net is for Stable Diffusion 1.x/2.x models; this is \(family.displayName)")
                }
            }
            switch family {
            case .stableDiffusion1, .stableDiffusion2, .stableDiffusionXL:
                return try attachingTinyAutoencoder(source, to: StableDiffusionPipeline(
                    url: source.url, configFolder: source.configFolder, vae: source.vae, inpaintingUNet: source.inpaintingUNet,
                    backend: backend, dtype: dtype))
            case .stableDiffusion3:
                return try attachingTinyAutoencoder(source, to: StableDiffusion3Pipeline(
                    url: source.url, configFolder: source.configFolder, backend: backend, dtype: dtype))
            case .flux:
                let folder = source.configFolder ?? source.url
                return try attachingTinyAutoencoder(source, to: FluxPipeline(
                    folder: folder, singleFile: source.url == folder ? nil : source.url, backend: backend, dtype: dtype))
            case .diT:
                return try attachingTinyAutoencoder(source, to: DiTPipeline(url: source.url, configFolder: source.configFolder, backend: backend, dtype: dtype))
            }
        } catch let error as PipelineError {
            throw error
        } catch {
            let message = "\(error)"
            throw PipelineError.invalidModel(message.contains(source.url.path) ? message : "\(source.url.path): \(message)")
        }
    }

    /// `open(Source(url: url, configFolder: config, ...))`.
    public static func open(
        _ url: URL, config: URL? = nil, vae: URL? = nil, inpaintingUNet: URL? = nil, tinyAutoencoder: URL? = nil, backend: Backend,
        dtype: DType = .float16
    ) throws -> any DiffusionPipeline {
        try open(Source(url: url, configFolder: config, vae: vae, inpaintingUNet: inpaintingUNet, tinyAutoencoder: tinyAutoencoder),
                 backend: backend, dtype: dtype)
    }

    /// `pipeline` with the source's TAESD, checked against its VAE's latents.
    static func attachingTinyAutoencoder<Pipeline: GenerationStages>(_ source: Source, to pipeline: Pipeline) throws -> Pipeline {
        guard let url = source.tinyAutoencoder else { return pipeline }
        guard let vae = pipeline.autoencoder else { throw PipelineError.invalidModel("\(pipeline.modelURL.path) has no VAE whose latents a TAESD could decode") }
        var attached = pipeline
        attached.tinyAutoencoder = try TinyAutoencoder(
            url: url, latentChannels: vae.latentChannels, vaeScaling: vae.configuration.scalingFactor, vaeShift: vae.configuration.shiftFactor,
            backend: pipeline.backend, dtype: pipeline.dtype)
        return attached
    }

    /// The family of `source` without opening it: a folder's (or the config folder's)
    /// `model_index.json` class, or a single file's key names.
    public static func family(of source: Source) throws -> ModelFamily {
        let url = source.url
        guard FileManager.default.fileExists(atPath: url.path) else { throw PipelineError.invalidModel("\(url.path): no such file or folder") }
        if url.isExistingFolder {
            if source.configFolder != nil {
                throw PipelineError.invalidModel("\(url.path) is a diffusers folder with configs of its own; a config folder is for single files")
            }
            return try family(ofFolder: url)
        }
        if let configFolder = source.configFolder { return try family(ofFolder: configFolder) }
        return try family(ofFile: url)
    }

    /// A diffusers folder's family from its pipeline class; folders without `model_index.json`
    /// but with `unet/config.json` are Stable Diffusion, as diffusers saved early ones.
    static func family(ofFolder folder: URL) throws -> ModelFamily {
        let index: ModelIndex?
        do {
            index = try ModelIndex.load(folder: folder)
        } catch {
            throw PipelineError.invalidModel("\(error)")
        }
        let className = index?.className ?? ""
        if className.hasPrefix("StableDiffusion3") { return .stableDiffusion3 }
        if className.hasPrefix("Flux") { return .flux }
        if className == DiTCheckpoint.pipelineClassName { return .diT }
        if className.isEmpty || className.hasPrefix("StableDiffusion") || className.hasPrefix("LatentConsistencyModel") {
            do {
                return ModelFamily(try StableDiffusionCheckpoint.family(ofFolder: folder))
            } catch {
                throw PipelineError.invalidModel("\(error)")
            }
        }
        throw PipelineError.invalidModel(
            "\(index?.url.path ?? folder.path): _class_name \(className) is not a pipeline Kiln runs (\(pipelineClasses.joined(separator: ", ")))")
    }

    /// A single file's family from its key names. Only Stable Diffusion files open alone (with
    /// their own tokenizer-less configs inferred); the others need a config folder.
    static func family(ofFile url: URL) throws -> ModelFamily {
        let file: SafeTensorsSource
        do {
            file = try SafeTensorsSource(files: [url])
        } catch {
            throw PipelineError.invalidModel("\(url.path): \(error)")
        }
        func needsFolder(_ name: String) -> PipelineError {
            .invalidModel("\(url.path) holds a \(name) transformer alone: give a diffusers \(name) pipeline folder as its config (--config) for its text encoders, tokenizers, VAE and scheduler")
        }
        if file.shape(of: DiTOriginalKeyNames.marker) != nil { throw needsFolder("DiT") }
        if (try? FluxSingleFile(url: url))?.hasTransformer == true { throw needsFolder("FLUX") }
        if SD3OriginalKeyNames.holdsTransformer(file) { throw needsFolder("SD3") }
        do {
            return ModelFamily(try SingleFileCheckpoint(url: url).family)
        } catch {
            throw PipelineError.invalidModel("\(error)")
        }
    }
}
