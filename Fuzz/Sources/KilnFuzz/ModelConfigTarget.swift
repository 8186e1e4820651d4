import Foundation
import Kiln
@testable import KilnPipelines

/// A model folder's JSON files: one input is written as `model_index.json`, as every component's
/// `config.json` and as `generation_defaults.json`, then the folder's family is found as opening
/// it finds it, and every configuration type Kiln reads is decoded and validated from it.
enum ModelConfigTarget {
    static let components = ["unet", "vae", "text_encoder", "transformer", "text_encoder_3"]

    static let defaults = GenerationDefaults(
        width: 512, height: 512, steps: 50, guidanceScale: 7.5, sampler: "pndm", imageToImageStrength: 0.8, inpaintingStrength: 1)

    static func run(_ data: Data) {
        var files = [(path: "model_index.json", data: data), (path: GenerationDefaults.recommendedSettingsFile, data: data)]
        files += components.map { (path: "\($0)/config.json", data: data) }
        let folder = ScratchFolder.write(files)
        let config = folder.appendingPathComponent("unet/config.json")

        _ = try? ModelIndex.load(folder: folder)
        _ = try? Pipelines.family(of: Pipelines.Source(url: folder))
        _ = try? defaults.recommended(by: folder)
        // With the sizes the model builders derive from each configuration first.
        if let unet = try? UNetConfiguration.load(config) { _ = unet.timeEmbedDimension }
        if let vae = try? AutoencoderKLConfiguration.load(config) { _ = vae.downscaleFactor }
        _ = try? AutoencoderTinyConfiguration.load(config)
        _ = try? CLIPTextConfiguration.load(config)
        _ = try? T5Configuration.load(config)
        if let sd3 = try? SD3TransformerConfiguration.load(config) { _ = sd3.innerDimension }
        if let flux = try? FluxTransformerConfiguration.load(config) { _ = flux.mlpDimension }
        if let dit = try? DiTConfiguration.load(config) { _ = dit.hiddenSize }
    }
}
