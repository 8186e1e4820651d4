import Foundation
import KilnGraph

/// The Stable Diffusion generation a checkpoint belongs to: SD1 (CLIP-L), SD2 (OpenCLIP-H),
/// SDXL base (CLIP-L + OpenCLIP-bigG with a size-conditioned U-Net).
public typealias StableDiffusionFamily = SingleFileCheckpoint.Family

/// A Stable Diffusion model ready to build, from a diffusers pipeline folder or from one
/// original-layout `.safetensors` file: for each component its configuration and its tensors
/// under diffusers' / transformers' key names. Nothing is read beyond headers and configs until
/// a graph binds a weight (files are memory-mapped; renamed tensors are converted one at a time).
///
/// ```swift
/// let checkpoint = try StableDiffusionCheckpoint(url: URL(fileURLWithPath: "sd15.safetensors"))
/// try checkpoint.validate()                 // every weight present and shaped as the configs say
/// let graph = Graph()
/// let binder = WeightBinder(graph: graph, source: checkpoint.unet.weights, dtype: .float16)
/// let noise = try checkpoint.unet.model(sample: latents, timesteps: t, text: context, weights: WeightScope(binder))
/// ```
public struct StableDiffusionCheckpoint: Sendable {
    public typealias Component = ModelComponent

    /// The folder or file the checkpoint was opened from.
    public let url: URL
    public let family: StableDiffusionFamily
    /// U-Net: latents `[B, C, h, w]` + context `[B, L, cross_attention_dim]` -> noise `[B, C, h, w]`.
    public let unet: Component<UNetConfiguration>
    /// AutoencoderKL: image `[B, 3, H, W]` <-> latents `[B, 4, H/8, W/8]`.
    public let vae: Component<AutoencoderKLConfiguration>
    /// CLIP-L (SD1, SDXL) or OpenCLIP-H (SD2): ids `[B, 77]` -> hidden states `[B, 77, D]`.
    public let textEncoder: Component<CLIPTextConfiguration>
    /// SDXL's OpenCLIP-bigG with projection: ids `[B, 77]` -> `[B, 77, 1280]`, pooled `[B, 1280]`.
    public let textEncoder2: Component<CLIPTextConfiguration>?

    /// Opens a diffusers folder (it has `model_index.json`) or a single original-layout file.
    ///
    /// - Parameters:
    ///   - configFolder: for a single file, a diffusers folder whose `unet/`, `vae/`,
    ///     `text_encoder*/config.json` describe it (as diffusers' `from_single_file(config:)`);
    ///     without one the configurations are inferred from the tensor shapes.
    ///   - vae: a VAE to use instead of the checkpoint's own: a diffusers `vae/` folder or a file
    ///     with diffusers names, original names, or original names under `first_stage_model.`.
    public init(url: URL, configFolder: URL? = nil, vae vaeOverride: URL? = nil) throws {
        self.url = url
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder) else {
            throw ConfigurationError(file: url.path, message: "no such file or folder")
        }
        let vae: Component<AutoencoderKLConfiguration>
        if isFolder.boolValue {
            guard configFolder == nil else {
                throw ConfigurationError(file: url.path, message: "a diffusers folder carries its own configs; configFolder is for single files")
            }
            family = try Self.family(ofFolder: url)
            let folder = DiffusersFolder(url: url)
            unet = try folder.unet()
            vae = try folder.vae()
            textEncoder = try folder.textEncoder("text_encoder")
            textEncoder2 = family == .sdxl ? try folder.textEncoder("text_encoder_2") : nil
        } else {
            let file = try SingleFileCheckpoint(url: url)
            family = file.family
            let configurations = try Self.configurations(for: file, configFolder: configFolder)
            let unetWeights = file.unet(configuration: configurations.unet)
            try Self.requireEveryTensorMapped(unetWeights, prefix: SingleFileCheckpoint.unetPrefix, file: url.path)
            unet = Component(configuration: configurations.unet, weights: unetWeights)
            vae = Component(configuration: configurations.vae, weights: file.vae())
            textEncoder = Component(configuration: configurations.textEncoder, weights: file.textEncoder())
            textEncoder2 = try configurations.textEncoder2.map { Component(configuration: $0, weights: try file.textEncoder2()) }
        }
        self.vae = try vaeOverride.map { try Self.overridingVAE(vae, with: $0) } ?? vae
    }

    /// A single file's configurations: the config folder's, checked to be the same family, or
    /// those its tensor shapes imply.
    private static func configurations(for file: SingleFileCheckpoint, configFolder: URL?) throws -> InferredConfigurations {
        guard let configFolder else { return try file.inferredConfigurations() }
        let folderFamily = try family(ofFolder: configFolder)
        guard folderFamily == file.family else {
            throw ConfigurationError(
                file: file.url.path,
                message: "is a \(file.family.rawValue) checkpoint but the config folder \(configFolder.path) describes \(folderFamily.rawValue)")
        }
        let folder = DiffusersFolder(url: configFolder)
        return InferredConfigurations(
            unet: try folder.unetConfiguration(), vae: try folder.vaeConfiguration(),
            textEncoder: try folder.textConfiguration("text_encoder"),
            textEncoder2: file.family == .sdxl ? try folder.textConfiguration("text_encoder_2") : nil)
    }

    /// The U-Net key mapping follows the configuration's block layout; a stored tensor it cannot
    /// place means the configuration describes another layout (wrong layers per block, attention
    /// levels), which later would surface as a confusing "missing" error.
    private static func requireEveryTensorMapped(_ weights: RenamedTensorSource, prefix: String, file: String) throws {
        let unmapped = weights.unusedStoredNames.filter { $0.hasPrefix(prefix) }
        guard unmapped.isEmpty else {
            throw ConfigurationError(
                file: file,
                message: "the U-Net configuration does not match the file's block layout: \(unmapped.count) tensor(s) have no place, "
                    + "e.g. \(unmapped.prefix(4).joined(separator: ", "))")
        }
    }

    /// The `vae:` override's weights, with the configuration of its folder when it has one
    /// (a bare file keeps the checkpoint's VAE configuration; shapes are still checked on use).
    private static func overridingVAE(_ vae: Component<AutoencoderKLConfiguration>, with url: URL) throws -> Component<AutoencoderKLConfiguration> {
        let weights = try SingleFileCheckpoint.vaeOverride(url)
        let config = url.appendingPathComponent("config.json")
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder), isFolder.boolValue,
           FileManager.default.fileExists(atPath: config.path) {
            return Component(configuration: try AutoencoderKLConfiguration.load(config), weights: weights)
        }
        return Component(configuration: vae.configuration, weights: weights)
    }
}

