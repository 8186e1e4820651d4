import Foundation
import KilnGraph

/// A Stable Diffusion checkpoint in one `.safetensors` file with the original key names
/// (`model.diffusion_model.*`, `first_stage_model.*`, `cond_stage_model.*` /
/// `conditioner.embedders.*`), each component presented under diffusers' names.
public struct SingleFileCheckpoint: Sendable {
    public enum Family: String, Sendable {
        case sd1, sd2, sdxl
    }

    public let url: URL
    public let family: Family
    public let file: SafeTensorsSource

    /// Opens `url` and detects the family from its key names.
    public init(url: URL) throws {
        self.url = url
        file = try SafeTensorsSource(files: [url])
        let names = file.names
        func has(_ prefix: String) -> Bool { names.contains { $0.hasPrefix(prefix) } }
        guard has(Self.unetPrefix) else {
            // A lone diffusers component file is a common mix-up: say so rather than just "unknown".
            let diffusersComponent = ["conv_in.weight", "down_blocks.", "encoder.down_blocks.", "text_model."].contains { has($0) }
            let hint = diffusersComponent ? "; these are diffusers key names: open the pipeline folder that holds this file instead" : ""
            throw ConfigurationError(file: url.path, message: "unknown model family: no U-Net tensors under '\(Self.unetPrefix)' "
                + "(found keys like \(names.prefix(3).joined(separator: ", ")))\(hint)")
        }
        if has("conditioner.embedders.1.model.") && has("conditioner.embedders.0.transformer.") {
            family = .sdxl
        } else if has("conditioner.embedders.0.model.") {
            throw ConfigurationError(file: url.path, message: "SDXL refiner checkpoints are not supported yet")
        } else if has("cond_stage_model.model.") {
            family = .sd2
        } else if has("cond_stage_model.transformer.") {
            family = .sd1
        } else {
            throw ConfigurationError(file: url.path, message: "unknown model family: no text encoder under cond_stage_model.transformer. (SD1), "
                + "cond_stage_model.model. (SD2) or conditioner.embedders.0.transformer. + conditioner.embedders.1.model. (SDXL)")
        }
    }

    static let unetPrefix = "model.diffusion_model."
    static let vaePrefix = "first_stage_model."

    /// The U-Net, whose block layout comes from `configuration`.
    public func unet(configuration: UNetConfiguration) -> RenamedTensorSource {
        component(prefix: Self.unetPrefix) { OriginalKeyNames.unet($0, configuration: configuration) }
    }

    public func vae() -> RenamedTensorSource { component(prefix: Self.vaePrefix, OriginalKeyNames.vae) }

    /// The (first) text encoder: CLIP-L for SD1 and SDXL, OpenCLIP-H for SD2. Keys are presented
    /// with transformers' `text_model.` prefix.
    public func textEncoder() -> RenamedTensorSource {
        switch family {
        case .sd1: component(prefix: "cond_stage_model.transformer.", OriginalKeyNames.clip)
        case .sd2: openCLIP(prefix: "cond_stage_model.model.")
        case .sdxl: component(prefix: "conditioner.embedders.0.transformer.", OriginalKeyNames.clip)
        }
    }

    /// SDXL's OpenCLIP-bigG encoder with its projection.
    public func textEncoder2() throws -> RenamedTensorSource {
        guard family == .sdxl else { throw ConfigurationError(file: url.path, message: "\(family.rawValue) has no second text encoder") }
        return openCLIP(prefix: "conditioner.embedders.1.model.")
    }

    private func openCLIP(prefix: String) -> RenamedTensorSource {
        let width = file.shape(of: prefix + "token_embedding.weight")?[1] ?? 0
        return component(prefix: prefix) { OriginalKeyNames.splitFusedProjections(OriginalKeyNames.openCLIP($0), width: width) }
    }

    private func component(prefix: String, _ mapping: ([String]) -> OriginalKeyNames.Mapping) -> RenamedTensorSource {
        let keys = file.names.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
        let prefixed = mapping(keys).mapValues { (stored: prefix + $0.stored, transform: $0.transform) }
        return RenamedTensorSource(base: file, mapping: prefixed, origin: url.path)
    }
}

extension SingleFileCheckpoint {
    /// A VAE to use instead of a checkpoint's own (the `--vae` override): a diffusers `vae/`
    /// folder, or one safetensors file with diffusers names, original names, or original names
    /// under `first_stage_model.`.
    public static func vaeOverride(_ url: URL) throws -> TensorSource {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder), isFolder.boolValue {
            return try SafeTensorsSource.component(folder: url, baseName: "diffusion_pytorch_model")
        }
        let file = try SafeTensorsSource(files: [url])
        let names = file.names
        if names.contains(where: { $0.hasPrefix("encoder.down_blocks.") || $0.hasPrefix("decoder.up_blocks.") }) { return file }
        let prefix = names.contains { $0.hasPrefix(vaePrefix) } ? vaePrefix : ""
        guard names.contains(prefix + "decoder.conv_in.weight") else {
            throw ConfigurationError(file: url.path, message: "not a VAE: no decoder.conv_in.weight under diffusers or original names")
        }
        let keys = names.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
        return RenamedTensorSource(base: file, mapping: OriginalKeyNames.vae(keys).mapValues { (stored: prefix + $0.stored, transform: $0.transform) },
                                   origin: url.path)
    }
}
