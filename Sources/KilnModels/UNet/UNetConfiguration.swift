import Foundation

/// The fields of a diffusers `UNet2DConditionModel` config (unet/config.json) that shape the
/// model. Per-block settings given as one number in the file are expanded to one per down block.
public struct UNetConfiguration: Sendable, Equatable {
    public var inChannels: Int
    public var outChannels: Int
    public var blockOutChannels: [Int]
    public var downBlockTypes: [String]
    public var upBlockTypes: [String]
    public var layersPerBlock: [Int]
    public var transformerLayersPerBlock: [Int]
    /// Attention heads per down block (diffusers' legacy `attention_head_dim` holds this).
    public var attentionHeads: [Int]
    public var crossAttentionDimension: [Int]
    public var normGroups: Int
    public var normEpsilon: Float
    public var useLinearProjection: Bool
    public var flipSinToCos: Bool
    public var frequencyShift: Float
    public var additionEmbedType: String?
    public var additionTimeEmbedDimension: Int?
    public var projectionClassEmbeddingsInputDimension: Int?
    /// `time_cond_proj_dim`: LCM-distilled U-Nets embed the guidance scale to this width.
    public var timestepConditionDimension: Int?
    /// `sample_size`: the latent size the model was trained at (64 for SD1 = 512 pixels).
    public var sampleSize: Int?

    public var timeEmbedDimension: Int { blockOutChannels[0] * 4 }

    public static func load(_ url: URL) throws -> UNetConfiguration {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw ConfigurationError(file: url.path, message: "\(error)") }
        guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ConfigurationError(file: url.path, message: "not a JSON object")
        }
        return try UNetConfiguration(json: json, file: url.path)
    }

    public init(json: [String: Any], file: String) throws {
        func value<T>(_ key: String, _ fallback: T?) throws -> T {
            if let found = json[key] as? T { return found }
            if let fallback { return fallback }
            throw ConfigurationError(file: file, message: "'\(key)' is missing or has the wrong type")
        }
        blockOutChannels = try value("block_out_channels", nil as [Int]?)
        // Channel counts size every tensor of the model (and the time embedding is 4x the first).
        guard !blockOutChannels.isEmpty, blockOutChannels.allSatisfy({ (1...Self.maximumChannels).contains($0) }) else {
            throw ConfigurationError(file: file, message: "'block_out_channels' \(blockOutChannels) must list 1 or more channel counts in 1...\(Self.maximumChannels)")
        }
        let blocks = blockOutChannels.count
        func perBlock(_ key: String, _ fallback: Int?) throws -> [Int] {
            if let list = json[key] as? [Int] {
                guard list.count == blocks else {
                    throw ConfigurationError(file: file, message: "'\(key)' has \(list.count) entries for \(blocks) blocks")
                }
                return list
            }
            return Array(repeating: try value(key, fallback), count: blocks)
        }
        inChannels = try value("in_channels", 4)
        outChannels = try value("out_channels", 4)
        downBlockTypes = try value("down_block_types", nil as [String]?)
        upBlockTypes = try value("up_block_types", nil as [String]?)
        guard downBlockTypes.count == blocks, upBlockTypes.count == blocks else {
            throw ConfigurationError(file: file, message: "block type lists do not match \(blocks) block_out_channels")
        }
        layersPerBlock = try perBlock("layers_per_block", 2)
        transformerLayersPerBlock = try perBlock("transformer_layers_per_block", 1)
        // diffusers: num_attention_heads falls back to attention_head_dim, which old configs
        // (every SD release) use to mean the number of heads.
        attentionHeads = json["num_attention_heads"] is NSNull || json["num_attention_heads"] == nil
            ? try perBlock("attention_head_dim", 8) : try perBlock("num_attention_heads", nil)
        crossAttentionDimension = try perBlock("cross_attention_dim", 1280)
        normGroups = try value("norm_num_groups", 32)
        normEpsilon = Float(try value("norm_eps", 1e-5 as Double))
        useLinearProjection = try value("use_linear_projection", false)
        flipSinToCos = try value("flip_sin_to_cos", true)
        frequencyShift = Float(try value("freq_shift", 0.0 as Double))
        additionEmbedType = json["addition_embed_type"] as? String
        additionTimeEmbedDimension = json["addition_time_embed_dim"] as? Int
        projectionClassEmbeddingsInputDimension = json["projection_class_embeddings_input_dim"] as? Int
        sampleSize = json["sample_size"] as? Int
        timestepConditionDimension = json["time_cond_proj_dim"] as? Int
        for unsupported in ["class_embed_type", "encoder_hid_dim"] where !(json[unsupported] is NSNull) && json[unsupported] != nil {
            throw ConfigurationError(file: file, message: "'\(unsupported)' is not supported yet")
        }
        if let type = additionEmbedType, type != "text_time" {
            throw ConfigurationError(file: file, message: "addition_embed_type '\(type)' is not supported (only text_time)")
        }
        if let bad = (downBlockTypes + upBlockTypes).first(where: { !Self.knownBlocks.contains($0) }) {
            throw ConfigurationError(file: file, message: "unknown block type '\(bad)'")
        }
        if let index = attentionHeads.firstIndex(where: { $0 <= 0 }) {
            throw ConfigurationError(file: file, message: "block \(index): \(attentionHeads[index]) attention heads; they must be positive")
        }
        for (index, heads) in attentionHeads.enumerated() where blockOutChannels[index] % heads != 0 {
            throw ConfigurationError(file: file, message: "block \(index): \(blockOutChannels[index]) channels not divisible by \(heads) heads")
        }
    }

    /// The most channels a block may have: SDXL's largest is 1,280.
    public static let maximumChannels = 1 << 20

    static let knownBlocks: Set<String> = ["CrossAttnDownBlock2D", "DownBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"]
}
