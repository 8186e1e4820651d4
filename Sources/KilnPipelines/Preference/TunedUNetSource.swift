import Foundation
import KilnModels

/// Where a preference-tuned U-Net is read from. Diffusion-DPO tunes the U-Net alone (the text
/// encoders, VAE and noise schedule stay the reference's), and tuned checkpoints are published
/// in every shape: a whole diffusers pipeline folder, a folder holding only `unet/` (as
/// mhdang/dpo-sd1.5-text2image-v1), a bare U-Net folder (`config.json` +
/// `diffusion_pytorch_model.safetensors`), or one original-layout `.safetensors` checkpoint.
enum TunedUNetSource {
    /// The U-Net at `url`. `configFolder` (a diffusers folder of the same family) describes a
    /// single file's U-Net. Errors are `PipelineError.invalidModel` naming the path.
    static func load(_ url: URL, configFolder: URL?) throws -> ModelComponent<UNetConfiguration> {
        let manager = FileManager.default
        guard manager.fileExists(atPath: url.path) else { throw PipelineError.invalidModel("\(url.path): no such file or folder") }
        do {
            if url.isExistingFolder {
                let nested = url.appendingPathComponent("unet")
                let folder = manager.fileExists(atPath: nested.appendingPathComponent("config.json").path) ? nested : url
                guard manager.fileExists(atPath: folder.appendingPathComponent("config.json").path) else {
                    throw PipelineError.invalidModel(
                        "\(url.path): neither unet/config.json nor config.json: give a diffusers folder, a U-Net folder or a .safetensors file")
                }
                return ModelComponent(
                    configuration: try UNetConfiguration.load(folder.appendingPathComponent("config.json")),
                    weights: try SafeTensorsSource.component(folder: folder, baseName: "diffusion_pytorch_model"))
            }
            return try StableDiffusionCheckpoint(url: url, configFolder: configFolder).unet
        } catch let error as PipelineError {
            throw error
        } catch {
            let message = "\(error)"
            throw PipelineError.invalidModel(message.contains(url.path) ? message : "\(url.path): \(message)")
        }
    }
}
