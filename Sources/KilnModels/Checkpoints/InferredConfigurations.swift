import Foundation
import KilnGraph

/// Configurations read off a single file's tensor shapes, for checkpoints that come without a
/// diffusers config folder. Shapes give channels, depths, context widths and projections; what
/// shapes cannot show (head counts, the VAE scaling factor) follows the family: SD1 uses 8 heads
/// per block, SD2 and SDXL 64-wide heads; SDXL's VAE scales by 0.13025, the others by 0.18215.
public struct InferredConfigurations: Sendable {
    public let unet: UNetConfiguration
    public let vae: AutoencoderKLConfiguration
    public let textEncoder: CLIPTextConfiguration
    public let textEncoder2: CLIPTextConfiguration?
}

extension SingleFileCheckpoint {
    public func inferredConfigurations() throws -> InferredConfigurations {
        let text = try textConfiguration(textEncoder(), activation: family == .sd2 ? "gelu" : "quick_gelu", dropLastLayer: family == .sd2)
        let text2 = family == .sdxl ? try textConfiguration(textEncoder2(), activation: "gelu", dropLastLayer: false) : nil
        return InferredConfigurations(unet: try unetConfiguration(pooledWidth: text2?.projectionSize), vae: try vaeConfiguration(),
                                      textEncoder: text, textEncoder2: text2)
    }

    private func require(_ name: String) throws -> Shape {
        guard let shape = file.shape(of: name) else {
            throw ConfigurationError(file: url.path, message: "cannot infer the configuration: tensor '\(name)' is missing")
        }
        return shape
    }

    /// Distinct integers found at `position` of the dotted keys that start with `prefix`.
    private func indices(_ prefix: String) -> [Int] {
        Set(file.names.filter { $0.hasPrefix(prefix) }.compactMap { Int($0.dropFirst(prefix.count).prefix { $0 != "." }) }).sorted()
    }

    private func unetConfiguration(pooledWidth: Int?) throws -> UNetConfiguration {
        let p = Self.unetPrefix
        let stem = try require(p + "input_blocks.0.0.weight")
        var levels: [(channels: Int, layers: Int, attention: Bool, depth: Int)] = []
        var current: (channels: Int, layers: Int, attention: Bool, depth: Int)?
        for block in indices(p + "input_blocks.").filter({ $0 > 0 }) {
            if file.shape(of: p + "input_blocks.\(block).0.op.weight") != nil {
                if let level = current { levels.append(level) }
                current = nil
                continue
            }
            let channels = try require(p + "input_blocks.\(block).0.out_layers.3.weight")[0]
            let depth = indices(p + "input_blocks.\(block).1.transformer_blocks.").count
            current = (channels, (current?.layers ?? 0) + 1, depth > 0, max(depth, current?.depth ?? 0))
        }
        if let level = current { levels.append(level) }
        guard !levels.isEmpty else { throw ConfigurationError(file: url.path, message: "cannot infer the U-Net's levels from input_blocks") }
        let attentionKey = file.names.first { $0.hasPrefix(p) && $0.hasSuffix("attn2.to_k.weight") }
        let projectionKey = file.names.first { $0.hasPrefix(p) && $0.hasSuffix("proj_in.weight") }
        var json: [String: Any] = [
            "in_channels": stem[1], "out_channels": try require(p + "out.2.weight")[0],
            "block_out_channels": levels.map(\.channels),
            "down_block_types": levels.map { $0.attention ? "CrossAttnDownBlock2D" : "DownBlock2D" },
            "up_block_types": levels.reversed().map { $0.attention ? "CrossAttnUpBlock2D" : "UpBlock2D" },
            "layers_per_block": levels.map(\.layers), "transformer_layers_per_block": levels.map { max($0.depth, 1) },
            "attention_head_dim": levels.map { family == .sd1 ? 8 : max($0.channels / 64, 1) },
            "cross_attention_dim": try attentionKey.map { try require($0)[1] } ?? 768,
            "use_linear_projection": try projectionKey.map { try require($0).rank == 2 } ?? false,
        ]
        if let addition = file.shape(of: p + "label_emb.0.0.weight") {
            guard let pooledWidth else { throw ConfigurationError(file: url.path, message: "label_emb without a pooled text projection") }
            json["addition_embed_type"] = "text_time"
            json["projection_class_embeddings_input_dim"] = addition[1]
            json["addition_time_embed_dim"] = (addition[1] - pooledWidth) / 6
        }
        return try UNetConfiguration(json: json, file: url.path)
    }

    private func vaeConfiguration() throws -> AutoencoderKLConfiguration {
        let p = Self.vaePrefix
        let levels = indices(p + "encoder.down.")
        let json: [String: Any] = [
            "in_channels": try require(p + "encoder.conv_in.weight")[1], "out_channels": try require(p + "decoder.conv_out.weight")[0],
            "block_out_channels": try levels.map { try require(p + "encoder.down.\($0).block.0.conv1.weight")[0] },
            "layers_per_block": indices(p + "encoder.down.0.block.").count,
            "latent_channels": try require(p + "decoder.conv_in.weight")[1],
            "norm_num_groups": 32, "scaling_factor": family == .sdxl ? 0.13025 : 0.18215,
        ]
        return try JSONDecoder().decode(AutoencoderKLConfiguration.self, from: JSONSerialization.data(withJSONObject: json))
    }

    /// From a text encoder presented under transformers' names. SD2 stops one block early, as its
    /// diffusers config does (num_hidden_layers 23 of OpenCLIP-H's 24).
    private func textConfiguration(_ source: RenamedTensorSource, activation: String, dropLastLayer: Bool) throws -> CLIPTextConfiguration {
        func shape(_ name: String) throws -> Shape {
            guard let shape = source.shape(of: name) else {
                throw ConfigurationError(file: url.path, message: "cannot infer the text encoder: '\(name)' is missing")
            }
            return shape
        }
        let embedding = try shape("text_model.embeddings.token_embedding.weight")
        let layers = Set(source.names.compactMap { name -> Int? in
            guard name.hasPrefix("text_model.encoder.layers.") else { return nil }
            return Int(name.dropFirst("text_model.encoder.layers.".count).prefix { $0 != "." })
        }).count
        let projection = source.shape(of: "text_projection.weight")
        return CLIPTextConfiguration(
            vocabularySize: embedding[0], hiddenSize: embedding[1],
            intermediateSize: try shape("text_model.encoder.layers.0.mlp.fc1.weight")[0],
            layerCount: dropLastLayer ? layers - 1 : layers, headCount: max(embedding[1] / 64, 1),
            maxPositionEmbeddings: try shape("text_model.embeddings.position_embedding.weight")[0], activation: activation,
            projectionSize: family == .sdxl && source.names.contains("text_projection.weight") ? projection?[0] : nil,
            architectures: family == .sdxl && projection != nil ? ["CLIPTextModelWithProjection"] : ["CLIPTextModel"])
    }
}
