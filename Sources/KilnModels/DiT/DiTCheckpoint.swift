import Foundation
import KilnGraph

/// A DiT model ready to build: the transformer (diffusers' `DiTTransformer2DModel` names, read
/// from a diffusers folder or renamed from a facebookresearch/DiT `.safetensors` file), the VAE
/// and the scheduler configuration's location.
///
/// - A diffusers folder: `model_index.json` (`_class_name` "DiTPipeline"), `transformer/`,
///   `vae/`, `scheduler/`.
/// - A single transformer file, diffusers or original names, with `configFolder` a diffusers DiT
///   folder for `transformer/config.json`, the VAE and the scheduler.
public struct DiTCheckpoint: Sendable {
    public let url: URL
    /// The folder holding `scheduler/` and `model_index.json`.
    public let folder: URL
    /// Latents `[B, C, H, W]`, timesteps `[B]`, labels `[B]` -> `[B, C_out, H, W]`.
    public let transformer: ModelComponent<DiTConfiguration>
    /// AutoencoderKL: latents `[B, 4, h, w]` -> images `[B, 3, 8h, 8w]`.
    public let vae: ModelComponent<AutoencoderKLConfiguration>
    /// True when the weights were read under the original facebookresearch names.
    public let usesOriginalNames: Bool

    /// The transformer to build over `transformer.weights`: original checkpoints hold one
    /// timestep/class embedder for all blocks.
    public var model: DiTTransformer2DModel {
        DiTTransformer2DModel(configuration: transformer.configuration, sharesEmbedder: usesOriginalNames)
    }

    /// `_class_name` of a DiT pipeline's model_index.json.
    public static let pipelineClassName = "DiTPipeline"

    public init(url: URL, configFolder: URL? = nil) throws {
        self.url = url
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder) else {
            throw ConfigurationError(file: url.path, message: "no such file or folder")
        }
        if isFolder.boolValue, configFolder != nil {
            throw ConfigurationError(file: url.path, message: "a diffusers folder carries its own configs; configFolder is for single files")
        }
        guard let folder = isFolder.boolValue ? url : configFolder else {
            throw ConfigurationError(file: url.path, message: "a single DiT file needs a diffusers DiT folder for its configs, VAE and scheduler (--config)")
        }
        guard Self.isDiTFolder(folder) else {
            throw ConfigurationError(file: folder.appendingPathComponent("model_index.json").path,
                                     message: "not a DiT pipeline folder (model_index.json's _class_name must be \(Self.pipelineClassName))")
        }
        self.folder = folder
        let configFile = folder.appendingPathComponent("transformer/config.json")
        let configuration = try DiTConfiguration.load(configFile)
        let diffusers = DiffusersFolder(url: folder)
        vae = try diffusers.vae()

        let stored: TensorSource = isFolder.boolValue
            ? try SafeTensorsSource.component(folder: folder.appendingPathComponent("transformer"), baseName: "diffusion_pytorch_model")
            : try SafeTensorsSource(files: [url])
        let weights: TensorSource
        if stored.shape(of: DiTOriginalKeyNames.marker) != nil {
            let blocks = DiTOriginalKeyNames.layerCount(in: stored.names)
            guard blocks == configuration.layerCount else {
                throw ConfigurationError(file: configFile.path,
                                         message: "num_layers \(configuration.layerCount), but \(url.lastPathComponent) has \(blocks) blocks")
            }
            let renamed = RenamedTensorSource(
                base: stored, mapping: DiTOriginalKeyNames.mapping(layerCount: blocks, hiddenSize: configuration.hiddenSize), origin: stored.origin)
            let unused = renamed.unusedStoredNames.filter { !DiTOriginalKeyNames.ignored.contains($0) }
            guard unused.isEmpty else { throw WeightError.unused(origin: stored.origin, names: unused) }
            weights = renamed
            usesOriginalNames = true
        } else {
            weights = stored
            usesOriginalNames = false
        }
        transformer = .init(configuration: configuration, weights: weights)
    }

    /// True for a folder whose model_index.json names DiTPipeline.
    public static func isDiTFolder(_ folder: URL) -> Bool {
        (try? ModelIndex.load(folder: folder))??.className == pipelineClassName
    }

    /// The scheduler's config file.
    public var schedulerConfigurationURL: URL { folder.appendingPathComponent("scheduler/scheduler_config.json") }

    /// Builds the transformer once over every weight, so a missing or mis-shaped tensor is
    /// reported before any generation (and names the tensor and the file).
    public func validate() throws {
        let graph = Graph()
        let binder = WeightBinder(graph: graph, source: transformer.weights, dtype: .float32)
        let c = transformer.configuration
        let size = c.sampleSize
        _ = try model(
            sample: graph.input("sample", [1, c.inChannels, size, size]), timesteps: graph.input("t", [1]),
            classLabels: graph.input("y", [1], dtype: .int32), weights: WeightScope(binder))
        let unused = binder.unusedNames()
        guard unused.isEmpty else { throw WeightError.unused(origin: transformer.weights.origin, names: unused) }
    }
}
