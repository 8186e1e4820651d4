import Foundation
import KilnGraph

/// The components of a diffusers `StableDiffusion3Pipeline` folder (`model_index.json` with
/// `_class_name` "StableDiffusion3Pipeline"): two CLIP text encoders with projections (CLIP-L,
/// CLIP-G) and their tokenizers, the MMDiT transformer, the 16-channel VAE and the
/// flow-matching scheduler's folder, and the T5 encoder (`text_encoder_3`, `tokenizer_3`) when
/// the folder has one and it is wanted.
///
/// Also opens Stability's single files (`init(singleFile:configFolder:)`): whichever of the
/// transformer, VAE and CLIP encoders the file carries under their original names replace the
/// config folder's.
public struct StableDiffusion3Folder: Sendable {
    public typealias Component = ModelComponent

    public let url: URL
    public let textEncoder: Component<CLIPTextConfiguration>
    public let textEncoder2: Component<CLIPTextConfiguration>
    public let transformer: Component<SD3TransformerConfiguration>
    public let vae: Component<AutoencoderKLConfiguration>
    public let tokenizer: CLIPTokenizer
    public let tokenizer2: CLIPTokenizer
    /// True when model_index.json names a T5 encoder (`text_encoder_3` not null).
    public let hasT5Encoder: Bool
    /// The T5 encoder and its tokenizer; nil without one, or when opened with `loadingT5: false`.
    public let textEncoder3: Component<T5Configuration>?
    public let tokenizer3: T5Tokenizer?
    /// `scheduler/scheduler_config.json`.
    public var schedulerConfigurationURL: URL { url.appendingPathComponent("scheduler/scheduler_config.json") }

    /// `loadingT5: false` leaves a folder's T5 encoder unopened (T5's states are then zeros).
    public init(url: URL, loadingT5: Bool = true) throws {
        self.url = url
        (hasT5Encoder, textEncoder, textEncoder2, transformer, vae, tokenizer, tokenizer2) = try Self.folderComponents(url)
        (textEncoder3, tokenizer3) = hasT5Encoder && loadingT5 ? try Self.t5(url) : (nil, nil)
    }

    /// Stability's single file at `singleFile`, with the configs, tokenizers, scheduler and any
    /// component the file lacks taken from the diffusers folder `configFolder`.
    public init(singleFile: URL, configFolder: URL, loadingT5: Bool = true) throws {
        url = configFolder
        let folder = try Self.folderComponents(configFolder)
        (tokenizer, tokenizer2) = (folder.tokenizer, folder.tokenizer2)
        let file = try SafeTensorsSource(files: [singleFile])
        if let weights = SD3OriginalKeyNames.t5(file) {
            // The file's T5; its config comes from the config folder when that has one, else T5-XXL's (SD3's).
            hasT5Encoder = true
            if loadingT5 {
                let configURL = configFolder.appendingPathComponent("text_encoder_3/config.json")
                let configuration = FileManager.default.fileExists(atPath: configURL.path) ? try T5Configuration.load(configURL) : .t5XXL
                textEncoder3 = Component(configuration: configuration, weights: weights)
                tokenizer3 = try T5Tokenizer(folder: configFolder.appendingPathComponent("tokenizer_3"))
            } else {
                (textEncoder3, tokenizer3) = (nil, nil)
            }
        } else {
            hasT5Encoder = folder.hasT5Encoder
            (textEncoder3, tokenizer3) = hasT5Encoder && loadingT5 ? try Self.t5(configFolder) : (nil, nil)
        }
        let configuration = folder.transformer.configuration
        transformer = SD3OriginalKeyNames.holdsTransformer(file)
            ? Component(configuration: configuration,
                        weights: try SD3PositionTable.supplied(to: SD3OriginalKeyNames.transformer(file), configuration: configuration))
            : folder.transformer
        vae = file.shape(of: SD3OriginalKeyNames.vaePrefix + "decoder.conv_in.weight") != nil
            ? Component(configuration: folder.vae.configuration, weights: SD3OriginalKeyNames.vae(file))
            : folder.vae
        textEncoder = try SD3OriginalKeyNames.clipL(file).map { Component(configuration: folder.textEncoder.configuration, weights: $0) }
            ?? folder.textEncoder
        textEncoder2 = SD3OriginalKeyNames.clipG(file).map { Component(configuration: folder.textEncoder2.configuration, weights: $0) }
            ?? folder.textEncoder2
    }

    private static func t5(_ url: URL) throws -> (Component<T5Configuration>, T5Tokenizer) {
        let folder = url.appendingPathComponent("text_encoder_3")
        let encoder = Component(
            configuration: try T5Configuration.load(folder.appendingPathComponent("config.json")),
            weights: try SafeTensorsSource.component(folder: folder, baseName: "model") as TensorSource)
        return (encoder, try T5Tokenizer(folder: url.appendingPathComponent("tokenizer_3")))
    }

    private static func folderComponents(_ url: URL) throws -> (
        hasT5Encoder: Bool, textEncoder: Component<CLIPTextConfiguration>, textEncoder2: Component<CLIPTextConfiguration>,
        transformer: Component<SD3TransformerConfiguration>, vae: Component<AutoencoderKLConfiguration>,
        tokenizer: CLIPTokenizer, tokenizer2: CLIPTokenizer
    ) {
        guard let index = try ModelIndex.load(folder: url) else {
            throw ConfigurationError(file: url.appendingPathComponent("model_index.json").path, message: "missing: not a diffusers pipeline folder")
        }
        guard index.className.hasPrefix("StableDiffusion3") else {
            throw ConfigurationError(file: index.url.path, message: "_class_name is \(index.className), expected StableDiffusion3Pipeline")
        }
        let hasT5Encoder = index.has("text_encoder_3")

        func folder(_ name: String) -> URL { url.appendingPathComponent(name) }
        func clip(_ name: String) throws -> Component<CLIPTextConfiguration> {
            Component(configuration: try CLIPTextConfiguration.load(folder(name).appendingPathComponent("config.json")),
                      weights: try SafeTensorsSource.component(folder: folder(name), baseName: "model"))
        }
        let transformerConfiguration = try SD3TransformerConfiguration.load(folder("transformer").appendingPathComponent("config.json"))
        return (
            hasT5Encoder, try clip("text_encoder"), try clip("text_encoder_2"),
            Component(
                configuration: transformerConfiguration,
                weights: try SD3PositionTable.supplied(
                    to: SafeTensorsSource.component(folder: folder("transformer"), baseName: "diffusion_pytorch_model"),
                    configuration: transformerConfiguration)),
            Component(
                configuration: try AutoencoderKLConfiguration.load(folder("vae").appendingPathComponent("config.json")),
                weights: try SafeTensorsSource.component(folder: folder("vae"), baseName: "diffusion_pytorch_model")),
            try CLIPTokenizer.load(folder: folder("tokenizer")), try CLIPTokenizer.load(folder: folder("tokenizer_2")))
    }
}
