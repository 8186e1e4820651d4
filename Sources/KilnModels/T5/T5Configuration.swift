import Foundation

/// The fields of a transformers `T5Config` (SD3's text_encoder_3/config.json, FLUX's
/// text_encoder_2/config.json) that shape the encoder. Keys a config.json leaves out take
/// T5Config's defaults.
public struct T5Configuration: Codable, Sendable, Equatable {
    public var vocabularySize: Int
    /// `d_model`: width of the residual stream.
    public var modelWidth: Int
    /// `d_kv`: width of one attention head; `headCount * headWidth` need not equal `modelWidth`.
    public var headWidth: Int
    /// `d_ff`: inner width of the feed-forward block.
    public var feedForwardWidth: Int
    public var layerCount: Int
    public var headCount: Int
    public var relativeAttentionBucketCount: Int
    public var relativeAttentionMaxDistance: Int
    /// `feed_forward_proj`: `relu` (T5), `gated-gelu` (T5 v1.1), or `[gated-]<activation>`.
    public var feedForwardProjection: String
    public var layerNormEpsilon: Float
    /// `dense_act_fn` as saved; when absent it follows from `feed_forward_proj`, as in T5Config.
    public var savedActivation: String?
    /// `is_gated_act` as saved; when absent it follows from `feed_forward_proj`.
    public var savedGated: Bool?

    enum CodingKeys: String, CodingKey {
        case vocabularySize = "vocab_size"
        case modelWidth = "d_model"
        case headWidth = "d_kv"
        case feedForwardWidth = "d_ff"
        case layerCount = "num_layers"
        case headCount = "num_heads"
        case relativeAttentionBucketCount = "relative_attention_num_buckets"
        case relativeAttentionMaxDistance = "relative_attention_max_distance"
        case feedForwardProjection = "feed_forward_proj"
        case layerNormEpsilon = "layer_norm_epsilon"
        case savedActivation = "dense_act_fn"
        case savedGated = "is_gated_act"
    }

    public init(vocabularySize: Int = 32128, modelWidth: Int = 512, headWidth: Int = 64, feedForwardWidth: Int = 2048,
                layerCount: Int = 6, headCount: Int = 8, relativeAttentionBucketCount: Int = 32,
                relativeAttentionMaxDistance: Int = 128, feedForwardProjection: String = "relu", layerNormEpsilon: Float = 1e-6) {
        self.vocabularySize = vocabularySize
        self.modelWidth = modelWidth
        self.headWidth = headWidth
        self.feedForwardWidth = feedForwardWidth
        self.layerCount = layerCount
        self.headCount = headCount
        self.relativeAttentionBucketCount = relativeAttentionBucketCount
        self.relativeAttentionMaxDistance = relativeAttentionMaxDistance
        self.feedForwardProjection = feedForwardProjection
        self.layerNormEpsilon = layerNormEpsilon
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = T5Configuration()
        vocabularySize = try c.decodeIfPresent(Int.self, forKey: .vocabularySize) ?? defaults.vocabularySize
        modelWidth = try c.decodeIfPresent(Int.self, forKey: .modelWidth) ?? defaults.modelWidth
        headWidth = try c.decodeIfPresent(Int.self, forKey: .headWidth) ?? defaults.headWidth
        feedForwardWidth = try c.decodeIfPresent(Int.self, forKey: .feedForwardWidth) ?? defaults.feedForwardWidth
        layerCount = try c.decodeIfPresent(Int.self, forKey: .layerCount) ?? defaults.layerCount
        headCount = try c.decodeIfPresent(Int.self, forKey: .headCount) ?? defaults.headCount
        relativeAttentionBucketCount = try c.decodeIfPresent(Int.self, forKey: .relativeAttentionBucketCount) ?? defaults.relativeAttentionBucketCount
        relativeAttentionMaxDistance = try c.decodeIfPresent(Int.self, forKey: .relativeAttentionMaxDistance) ?? defaults.relativeAttentionMaxDistance
        feedForwardProjection = try c.decodeIfPresent(String.self, forKey: .feedForwardProjection) ?? defaults.feedForwardProjection
        layerNormEpsilon = try c.decodeIfPresent(Float.self, forKey: .layerNormEpsilon) ?? defaults.layerNormEpsilon
        savedActivation = try c.decodeIfPresent(String.self, forKey: .savedActivation)
        savedGated = try c.decodeIfPresent(Bool.self, forKey: .savedGated)
    }

    /// T5 v1.1 XXL's encoder as SD3/SD3.5 and FLUX ship it (4.76B parameters).
    public static let t5XXL = T5Configuration(
        vocabularySize: 32128, modelWidth: 4096, headWidth: 64, feedForwardWidth: 10240, layerCount: 24, headCount: 64,
        feedForwardProjection: "gated-gelu")

    /// Whether the feed-forward block is gated (`act(x wi_0) * (x wi_1)`) rather than `act(x wi)`.
    public var isGated: Bool { savedGated ?? projectionParts.first.map { $0 == "gated" && projectionParts.count > 1 } ?? false }

    /// The feed-forward activation by its transformers name. `gated-gelu` means the tanh
    /// approximation (`gelu_new`), a backwards-compatibility rule of T5Config.
    public var activation: String {
        if let savedActivation { return savedActivation }
        return feedForwardProjection == "gated-gelu" ? "gelu_new" : String(projectionParts.last ?? "relu")
    }

    /// transformers activation names the encoder can build.
    public static let supportedActivations: Set<String> = ["relu", "gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh", "silu", "swish", "quick_gelu"]

    private var projectionParts: [Substring] { feedForwardProjection.split(separator: "-") }

    /// Checks what T5Config checks and what the graph needs; `file` names the config in errors.
    public func validate(file: String) throws {
        let parts = projectionParts
        guard (parts.count == 1 || (parts.count == 2 && parts[0] == "gated")), !(parts.last ?? "").isEmpty else {
            throw ConfigurationError(file: file, message: "feed_forward_proj '\(feedForwardProjection)' is not 'gated-<activation>' or '<activation>'")
        }
        guard Self.supportedActivations.contains(activation) else {
            throw ConfigurationError(file: file, message: "feed-forward activation '\(activation)' (from feed_forward_proj '\(feedForwardProjection)') is not one of \(Self.supportedActivations.sorted())")
        }
        let sizes = [("vocab_size", vocabularySize), ("d_model", modelWidth), ("d_kv", headWidth), ("d_ff", feedForwardWidth),
                     ("num_layers", layerCount), ("num_heads", headCount),
                     ("relative_attention_num_buckets", relativeAttentionBucketCount),
                     ("relative_attention_max_distance", relativeAttentionMaxDistance)]
        for (key, value) in sizes where value <= 0 {
            throw ConfigurationError(file: file, message: "\(key) must be positive, got \(value)")
        }
        // Bidirectional buckets split in halves, and each half in exact and logarithmic quarters.
        guard relativeAttentionBucketCount >= 4 else {
            throw ConfigurationError(file: file, message: "relative_attention_num_buckets \(relativeAttentionBucketCount) must be at least 4")
        }
        guard relativeAttentionMaxDistance > relativeAttentionBucketCount / 4 else {
            throw ConfigurationError(file: file, message: "relative_attention_max_distance \(relativeAttentionMaxDistance) must exceed the \(relativeAttentionBucketCount / 4) exact buckets")
        }
    }

    /// Reads and validates a config.json; errors name the file.
    public static func load(_ url: URL) throws -> T5Configuration {
        let configuration: T5Configuration
        do {
            configuration = try JSONDecoder().decode(T5Configuration.self, from: Data(contentsOf: url))
        } catch {
            throw ConfigurationError(file: url.path, message: "\(error)")
        }
        try configuration.validate(file: url.path)
        return configuration
    }
}
