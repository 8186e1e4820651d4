import Foundation
import KilnGraph

/// A diffusers pipeline folder as `save_pretrained` writes it: `model_index.json` and one
/// subfolder per component (`unet/`, `vae/`, `text_encoder/`, `text_encoder_2/`), each with a
/// `config.json` and its safetensors weights (single, `.fp16` variant, or sharded).
struct DiffusersFolder {
    let url: URL

    func config(_ component: String) -> URL { url.appendingPathComponent(component).appendingPathComponent("config.json") }

    func unetConfiguration() throws -> UNetConfiguration { try UNetConfiguration.load(config("unet")) }
    func vaeConfiguration() throws -> AutoencoderKLConfiguration { try AutoencoderKLConfiguration.load(config("vae")) }
    func textConfiguration(_ component: String) throws -> CLIPTextConfiguration { try CLIPTextConfiguration.load(config(component)) }

    func unet() throws -> ModelComponent<UNetConfiguration> {
        .init(configuration: try unetConfiguration(), weights: try weights("unet", baseName: "diffusion_pytorch_model"))
    }

    func vae() throws -> ModelComponent<AutoencoderKLConfiguration> {
        .init(configuration: try vaeConfiguration(), weights: try weights("vae", baseName: "diffusion_pytorch_model"))
    }

    /// transformers names its weights `model.safetensors`, diffusers `diffusion_pytorch_model`.
    func textEncoder(_ component: String) throws -> ModelComponent<CLIPTextConfiguration> {
        .init(configuration: try textConfiguration(component), weights: try weights(component, baseName: "model"))
    }

    private func weights(_ component: String, baseName: String) throws -> SafeTensorsSource {
        try SafeTensorsSource.component(folder: url.appendingPathComponent(component), baseName: baseName)
    }
}

extension StableDiffusionCheckpoint {
    /// The family of a diffusers folder: SDXL when the pipeline class says so or a second text
    /// encoder is present; otherwise SD2 when the text encoder uses exact GELU (OpenCLIP), SD1
    /// with CLIP's quick GELU. The refiner (second encoder only) is recognised and refused.
    public static func family(ofFolder url: URL) throws -> StableDiffusionFamily {
        let folder = DiffusersFolder(url: url)
        let manager = FileManager.default
        let className = try ModelIndex.load(folder: url)?.className ?? ""
        if className.isEmpty && !manager.fileExists(atPath: folder.config("unet").path) {
            throw ConfigurationError(file: url.path, message: "not a diffusers pipeline folder: no model_index.json or unet/config.json")
        }
        let hasFirstEncoder = manager.fileExists(atPath: folder.config("text_encoder").path)
        let hasSecondEncoder = manager.fileExists(atPath: folder.config("text_encoder_2").path)
        if hasSecondEncoder && !hasFirstEncoder {
            throw ConfigurationError(file: url.path, message: "SDXL refiner pipelines (text_encoder_2 only) are not supported yet")
        }
        if className.contains("XL") || hasSecondEncoder {
            guard hasSecondEncoder else {
                throw ConfigurationError(file: url.path, message: "\(className) folder without text_encoder_2/config.json")
            }
            return .sdxl
        }
        guard hasFirstEncoder else {
            throw ConfigurationError(file: url.path, message: "no text_encoder/config.json in this folder")
        }
        return try folder.textConfiguration("text_encoder").activation == "gelu" ? .sd2 : .sd1
    }
}
