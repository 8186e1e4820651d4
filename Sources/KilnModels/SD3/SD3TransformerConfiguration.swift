import Foundation

/// The fields of a diffusers `SD3Transformer2DModel` config (transformer/config.json) that shape
/// the MMDiT. Defaults are diffusers' (SD3 medium's layout apart from the layer count).
public struct SD3TransformerConfiguration: Codable, Sendable, Equatable {
    /// Latent size the model was trained at; only informative (positions come from `pos_embed_max_size`).
    public var sampleSize: Int
    /// Side of the square latent patches that become tokens.
    public var patchSize: Int
    public var inChannels: Int
    /// Number of joint blocks; the last one updates only the image stream.
    public var layerCount: Int
    public var attentionHeadDimension: Int
    public var attentionHeads: Int
    /// Width of the text states the context embedder reads (CLIP-L + CLIP-G padded to T5's width).
    public var jointAttentionDimension: Int
    /// Width of the context stream after the context embedder; equals the image stream's width.
    public var captionProjectionDimension: Int
    /// Width of the pooled text vector (CLIP-L text_embeds + CLIP-G text_embeds).
    public var pooledProjectionDimension: Int
    public var outChannels: Int
    /// Side, in patches, of the square position grid that is cropped to each latent's size.
    public var positionEmbeddingMaxSize: Int?
    /// Blocks with SD3.5's second, image-only attention.
    public var dualAttentionLayers: [Int]
    /// Normalisation of queries and keys per head: nil or "rms_norm".
    public var qkNorm: String?

    enum CodingKeys: String, CodingKey {
        case sampleSize = "sample_size"
        case patchSize = "patch_size"
        case inChannels = "in_channels"
        case layerCount = "num_layers"
        case attentionHeadDimension = "attention_head_dim"
        case attentionHeads = "num_attention_heads"
        case jointAttentionDimension = "joint_attention_dim"
        case captionProjectionDimension = "caption_projection_dim"
        case pooledProjectionDimension = "pooled_projection_dim"
        case outChannels = "out_channels"
        case positionEmbeddingMaxSize = "pos_embed_max_size"
        case dualAttentionLayers = "dual_attention_layers"
        case qkNorm = "qk_norm"
    }

    public init(
        sampleSize: Int = 128, patchSize: Int = 2, inChannels: Int = 16, layerCount: Int = 18, attentionHeadDimension: Int = 64,
        attentionHeads: Int = 18, jointAttentionDimension: Int = 4096, captionProjectionDimension: Int = 1152,
        pooledProjectionDimension: Int = 2048, outChannels: Int = 16, positionEmbeddingMaxSize: Int? = 96,
        dualAttentionLayers: [Int] = [], qkNorm: String? = nil
    ) {
        self.sampleSize = sampleSize
        self.patchSize = patchSize
        self.inChannels = inChannels
        self.layerCount = layerCount
        self.attentionHeadDimension = attentionHeadDimension
        self.attentionHeads = attentionHeads
        self.jointAttentionDimension = jointAttentionDimension
        self.captionProjectionDimension = captionProjectionDimension
        self.pooledProjectionDimension = pooledProjectionDimension
        self.outChannels = outChannels
        self.positionEmbeddingMaxSize = positionEmbeddingMaxSize
        self.dualAttentionLayers = dualAttentionLayers
        self.qkNorm = qkNorm
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = SD3TransformerConfiguration()
        sampleSize = try c.decodeIfPresent(Int.self, forKey: .sampleSize) ?? defaults.sampleSize
        patchSize = try c.decodeIfPresent(Int.self, forKey: .patchSize) ?? defaults.patchSize
        inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? defaults.inChannels
        layerCount = try c.decodeIfPresent(Int.self, forKey: .layerCount) ?? defaults.layerCount
        attentionHeadDimension = try c.decodeIfPresent(Int.self, forKey: .attentionHeadDimension) ?? defaults.attentionHeadDimension
        attentionHeads = try c.decodeIfPresent(Int.self, forKey: .attentionHeads) ?? defaults.attentionHeads
        jointAttentionDimension = try c.decodeIfPresent(Int.self, forKey: .jointAttentionDimension) ?? defaults.jointAttentionDimension
        captionProjectionDimension = try c.decodeIfPresent(Int.self, forKey: .captionProjectionDimension) ?? defaults.captionProjectionDimension
        pooledProjectionDimension = try c.decodeIfPresent(Int.self, forKey: .pooledProjectionDimension) ?? defaults.pooledProjectionDimension
        // diffusers treats a null out_channels as "same as in_channels".
        outChannels = try c.decodeIfPresent(Int.self, forKey: .outChannels) ?? inChannels
        positionEmbeddingMaxSize = c.contains(.positionEmbeddingMaxSize)
            ? try c.decodeIfPresent(Int.self, forKey: .positionEmbeddingMaxSize) : defaults.positionEmbeddingMaxSize
        dualAttentionLayers = try c.decodeIfPresent([Int].self, forKey: .dualAttentionLayers) ?? []
        qkNorm = try c.decodeIfPresent(String.self, forKey: .qkNorm)
    }

    /// Width of both token streams: heads x head width.
    public var innerDimension: Int { attentionHeads * attentionHeadDimension }

    public static func load(_ url: URL) throws -> SD3TransformerConfiguration {
        let configuration: SD3TransformerConfiguration
        do {
            configuration = try JSONDecoder().decode(SD3TransformerConfiguration.self, from: Data(contentsOf: url))
        } catch {
            throw ConfigurationError(file: url.path, message: "\(error)")
        }
        try configuration.validate(file: url.path)
        return configuration
    }

    /// Rejects configurations the model cannot build, naming the field.
    public func validate(file: String) throws {
        if let qkNorm, qkNorm != "rms_norm" {
            throw ConfigurationError(file: file, message: "qk_norm '\(qkNorm)' is not supported (only null or \"rms_norm\", as SD3/SD3.5 use)")
        }
        guard attentionHeads > 0, attentionHeadDimension > 0 else {
            throw ConfigurationError(file: file, message: "num_attention_heads \(attentionHeads) and attention_head_dim \(attentionHeadDimension) must be positive")
        }
        _ = try ConfigurationError.product(("num_attention_heads", attentionHeads), ("attention_head_dim", attentionHeadDimension), file: file)
        guard captionProjectionDimension == innerDimension else {
            throw ConfigurationError(file: file, message: "caption_projection_dim \(captionProjectionDimension) must equal num_attention_heads x attention_head_dim = \(innerDimension): both streams share the joint blocks' width")
        }
        guard positionEmbeddingMaxSize != nil else {
            throw ConfigurationError(file: file, message: "pos_embed_max_size is null: only SD3's cropped position grid is supported")
        }
        if let outside = dualAttentionLayers.first(where: { $0 < 0 || $0 >= layerCount }) {
            throw ConfigurationError(file: file, message: "dual_attention_layers names layer \(outside), but num_layers is \(layerCount)")
        }
    }
}
