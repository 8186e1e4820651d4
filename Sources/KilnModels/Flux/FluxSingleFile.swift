import Foundation
import KilnGraph

/// A FLUX single `.safetensors` file and the components it carries, each presented under the
/// names Kiln's models read:
///
/// - the transformer: diffusers' names, or Black Forest Labs' original ones (see
///   `FluxOriginalKeyNames`), also behind ComfyUI's `model.diffusion_model.`;
/// - ComfyUI's all-in-one checkpoints also hold the VAE under `vae.` in the original
///   (CompVis) names, CLIP-L under `text_encoders.clip_l.transformer.` and T5-XXL under
///   `text_encoders.t5xxl.transformer.` in transformers' names.
///
/// Components the file lacks are nil: a pipeline folder supplies them.
public struct FluxSingleFile: Sendable {
    public let url: URL
    public let file: TensorSource

    static let vaePrefix = "vae."
    static let clipPrefix = "text_encoders.clip_l.transformer."
    static let t5Prefix = "text_encoders.t5xxl.transformer."

    public init(url: URL) throws {
        self.url = url
        file = try SafeTensorsSource(files: [url])
    }

    /// True if the file holds a FLUX transformer in either naming.
    public var hasTransformer: Bool {
        FluxOriginalKeyNames.isOriginal(file) || file.shape(of: "single_transformer_blocks.0.proj_mlp.weight") != nil
    }

    /// The transformer under diffusers' names.
    public func transformer() throws -> TensorSource {
        guard hasTransformer else {
            throw ConfigurationError(file: url.path, message: "no FLUX transformer (double_blocks.* or transformer_blocks.*) in this file")
        }
        return FluxOriginalKeyNames.isOriginal(file) ? try FluxOriginalKeyNames.transformer(file) : file
    }

    /// The VAE under diffusers' names, if the file carries one.
    public var vae: TensorSource? {
        guard file.shape(of: Self.vaePrefix + "decoder.conv_in.weight") != nil else { return nil }
        let keys = keys(under: Self.vaePrefix)
        return RenamedTensorSource(base: file, mapping: OriginalKeyNames.vae(keys).mapValues { (stored: Self.vaePrefix + $0.stored, transform: $0.transform) },
                                   origin: url.path)
    }

    /// CLIP-L under transformers' names (`text_model.*`), if the file carries it.
    public var clip: TensorSource? {
        file.shape(of: Self.clipPrefix + "text_model.embeddings.token_embedding.weight") != nil ? stripped(Self.clipPrefix) : nil
    }

    /// T5's encoder under transformers' names (`shared.weight`, `encoder.*`), if the file carries it.
    public var t5: TensorSource? {
        file.shape(of: Self.t5Prefix + "encoder.final_layer_norm.weight") != nil ? stripped(Self.t5Prefix) : nil
    }

    private func keys(under prefix: String) -> [String] {
        file.names.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
    }

    private func stripped(_ prefix: String) -> TensorSource {
        let mapping = Dictionary(uniqueKeysWithValues: keys(under: prefix).map { ($0, (stored: prefix + $0, transform: RenamedTensorSource.Transform.identity)) })
        return RenamedTensorSource(base: file, mapping: mapping, origin: url.path)
    }
}
