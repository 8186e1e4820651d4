import Foundation
import KilnGraph

/// The components of a diffusers `StableDiffusion3Pipeline` folder (`model_index.json` with
/// `_class_name` "StableDiffusion3Pipeline"): two CLIP text encoders with projections (CLIP-L,
/// CLIP-G) and their tokenizers, the MMDiT transformer, the 16-channel VAE and the
/// flow-matching scheduler's folder. The T5 encoder (`text_encoder_3`) is reported, not loaded.
public struct StableDiffusion3Folder: Sendable {
    public typealias Component = StableDiffusionCheckpoint.Component

    public let url: URL
    public let textEncoder: Component<CLIPTextConfiguration>
    public let textEncoder2: Component<CLIPTextConfiguration>
    public let transformer: Component<SD3TransformerConfiguration>
    public let vae: Component<AutoencoderKLConfiguration>
    public let tokenizer: CLIPTokenizer
    public let tokenizer2: CLIPTokenizer
    /// True when model_index.json names a T5 encoder (`text_encoder_3` not null).
    public let hasT5Encoder: Bool
    /// `scheduler/scheduler_config.json`.
    public var schedulerConfigurationURL: URL { url.appendingPathComponent("scheduler/scheduler_config.json") }

    /// The pipeline class a diffusers folder declares, or nil when it has no readable model_index.json.
    public static func pipelineClass(of folder: URL) -> String? {
        guard let data = try? Data(contentsOf: folder.appendingPathComponent("model_index.json")),
              let index = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return index["_class_name"] as? String
    }

    public init(url: URL) throws {
        self.url = url
        let indexURL = url.appendingPathComponent("model_index.json")
        let index: [String: Any]
        do {
            guard let object = try JSONSerialization.jsonObject(with: Data(contentsOf: indexURL)) as? [String: Any] else {
                throw ConfigurationError(file: indexURL.path, message: "not a JSON object")
            }
            index = object
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw ConfigurationError(file: indexURL.path, message: "\(error)")
        }
        guard let className = index["_class_name"] as? String, className.hasPrefix("StableDiffusion3") else {
            throw ConfigurationError(file: indexURL.path, message: "_class_name is \(index["_class_name"] ?? "missing"), expected StableDiffusion3Pipeline")
        }
        // A null component is saved as [null, null].
        let t5 = index["text_encoder_3"] as? [Any]
        hasT5Encoder = t5.map { $0.contains { !($0 is NSNull) } } ?? false

        func folder(_ name: String) -> URL { url.appendingPathComponent(name) }
        func clip(_ name: String) throws -> Component<CLIPTextConfiguration> {
            Component(configuration: try CLIPTextConfiguration.load(folder(name).appendingPathComponent("config.json")),
                      weights: try SafeTensorsSource.component(folder: folder(name), baseName: "model"))
        }
        textEncoder = try clip("text_encoder")
        textEncoder2 = try clip("text_encoder_2")
        transformer = Component(
            configuration: try SD3TransformerConfiguration.load(folder("transformer").appendingPathComponent("config.json")),
            weights: try SafeTensorsSource.component(folder: folder("transformer"), baseName: "diffusion_pytorch_model"))
        vae = Component(
            configuration: try AutoencoderKLConfiguration.load(folder("vae").appendingPathComponent("config.json")),
            weights: try SafeTensorsSource.component(folder: folder("vae"), baseName: "diffusion_pytorch_model"))
        tokenizer = try CLIPTokenizer.load(folder: folder("tokenizer"))
        tokenizer2 = try CLIPTokenizer.load(folder: folder("tokenizer_2"))
    }
}
