import Foundation
import Kiln

/// What targets that need a real model take from Kiln's built-in `kiln-shapes` (an SD 1.x-style
/// folder): its CLIP tokenizer for prompt chunks, its U-Net and text encoder for placing LoRA
/// modules. Loaded once per process.
enum DefaultModelParts {
    static let folder: URL = {
        guard let folder = DefaultModel.location() else {
            fatalError("kiln-fuzz: the built-in model is in none of \(DefaultModel.searchedLocations.map(\.path))")
        }
        return folder
    }()

    static let tokenizer: CLIPTokenizer = required { try CLIPTokenizer.load(folder: folder.appendingPathComponent("tokenizer")) }

    static let loraComponents: [LoRAComponent] = required {
        let unetFolder = folder.appendingPathComponent("unet")
        let unet = ModelComponent(
            configuration: try UNetConfiguration.load(unetFolder.appendingPathComponent("config.json")),
            weights: try SafeTensorsSource.component(folder: unetFolder, baseName: "diffusion_pytorch_model"))
        let textEncoder = try SafeTensorsSource.component(folder: folder.appendingPathComponent("text_encoder"), baseName: "model")
        return [.unet(unet), .textEncoder(label: "text_encoder", weights: textEncoder, kohyaPrefixes: ["lora_te1_", "lora_te_"])]
    }

    private static func required<Value>(_ load: () throws -> Value) -> Value {
        do { return try load() } catch { fatalError("kiln-fuzz: cannot load the built-in model: \(error)") }
    }
}
