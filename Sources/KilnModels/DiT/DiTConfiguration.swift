import Foundation

/// The fields of diffusers' `DiTTransformer2DModel` config (transformer/config.json) that shape
/// the model; absent fields take the defaults of diffusers' constructor (DiT-XL/2 at 256x256).
public struct DiTConfiguration: Codable, Sendable, Equatable {
    public var headCount: Int
    public var headDimension: Int
    /// Latent channels `C` of the input.
    public var inChannels: Int
    /// `out_channels`: `2C` for DiT's learned sigma (noise prediction, then variance), or `C`.
    public var outChannels: Int?
    public var layerCount: Int
    /// Latent side length the model was trained at (and DiTPipeline always samples at).
    public var sampleSize: Int
    public var patchSize: Int
    /// The feed-forward activation: `gelu-approximate` (DiT's tanh GELU) or `gelu`.
    public var activation: String
    /// Number of classes; the class table has one more row, the null class used for guidance.
    public var classCount: Int?
    public var normType: String
    /// Whether the LayerNorm before the feed-forward has a weight and bias.
    public var normElementwiseAffine: Bool
    /// Epsilon of the LayerNorm before the feed-forward (the others use 1e-6, as diffusers).
    public var normEpsilon: Float
    public var attentionBias: Bool

    enum CodingKeys: String, CodingKey {
        case headCount = "num_attention_heads"
        case headDimension = "attention_head_dim"
        case inChannels = "in_channels"
        case outChannels = "out_channels"
        case layerCount = "num_layers"
        case sampleSize = "sample_size"
        case patchSize = "patch_size"
        case activation = "activation_fn"
        case classCount = "num_embeds_ada_norm"
        case normType = "norm_type"
        case normElementwiseAffine = "norm_elementwise_affine"
        case normEpsilon = "norm_eps"
        case attentionBias = "attention_bias"
    }

    public init(
        headCount: Int = 16, headDimension: Int = 72, inChannels: Int = 4, outChannels: Int? = nil, layerCount: Int = 28,
        sampleSize: Int = 32, patchSize: Int = 2, activation: String = "gelu-approximate", classCount: Int? = 1000,
        normType: String = "ada_norm_zero", normElementwiseAffine: Bool = false, normEpsilon: Float = 1e-5, attentionBias: Bool = true
    ) {
        self.headCount = headCount
        self.headDimension = headDimension
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.layerCount = layerCount
        self.sampleSize = sampleSize
        self.patchSize = patchSize
        self.activation = activation
        self.classCount = classCount
        self.normType = normType
        self.normElementwiseAffine = normElementwiseAffine
        self.normEpsilon = normEpsilon
        self.attentionBias = attentionBias
    }

    public init(from decoder: Decoder) throws {
        let defaults = DiTConfiguration()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        headCount = try c.decodeIfPresent(Int.self, forKey: .headCount) ?? defaults.headCount
        headDimension = try c.decodeIfPresent(Int.self, forKey: .headDimension) ?? defaults.headDimension
        inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? defaults.inChannels
        outChannels = try c.decodeIfPresent(Int.self, forKey: .outChannels)
        layerCount = try c.decodeIfPresent(Int.self, forKey: .layerCount) ?? defaults.layerCount
        sampleSize = try c.decodeIfPresent(Int.self, forKey: .sampleSize) ?? defaults.sampleSize
        patchSize = try c.decodeIfPresent(Int.self, forKey: .patchSize) ?? defaults.patchSize
        activation = try c.decodeIfPresent(String.self, forKey: .activation) ?? defaults.activation
        // An explicit null is kept: it is what makes such a config invalid for DiT.
        classCount = c.contains(.classCount) ? try c.decodeIfPresent(Int.self, forKey: .classCount) : defaults.classCount
        normType = try c.decodeIfPresent(String.self, forKey: .normType) ?? defaults.normType
        normElementwiseAffine = try c.decodeIfPresent(Bool.self, forKey: .normElementwiseAffine) ?? defaults.normElementwiseAffine
        normEpsilon = try c.decodeIfPresent(Float.self, forKey: .normEpsilon) ?? defaults.normEpsilon
        attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias) ?? defaults.attentionBias
    }

    /// `D = heads * head_dim`, the token width.
    public var hiddenSize: Int { headCount * headDimension }
    /// Output channels: `out_channels`, or `in_channels` when the config leaves it out.
    public var resolvedOutChannels: Int { outChannels ?? inChannels }
    /// DiT's learned sigma: the second half of the output channels is the variance, which
    /// DiTPipeline drops.
    public var learnsSigma: Bool { resolvedOutChannels == 2 * inChannels }
    /// The null class's label (the last row of the class table), what guidance conditions on.
    public var nullClass: Int { classCount ?? 0 }

    /// Every combination diffusers' DiTTransformer2DModel refuses, or Kiln does not build.
    public func validate(file: String) throws {
        func fail(_ message: String) throws -> Never { throw ConfigurationError(file: file, message: message) }
        guard normType == "ada_norm_zero" else { try fail("norm_type '\(normType)': DiT needs 'ada_norm_zero'") }
        guard (classCount ?? 0) > 0 else { try fail("num_embeds_ada_norm must be a positive class count for DiT, got \(classCount.map(String.init) ?? "null")") }
        for (name, value) in [("num_attention_heads", headCount), ("attention_head_dim", headDimension), ("in_channels", inChannels),
                              ("num_layers", layerCount), ("sample_size", sampleSize), ("patch_size", patchSize)] where value <= 0 {
            try fail("\(name) \(value) must be positive")
        }
        if let outChannels, outChannels <= 0 { try fail("out_channels \(outChannels) must be positive") }
        guard sampleSize % patchSize == 0 else { try fail("sample_size \(sampleSize) is not a multiple of patch_size \(patchSize)") }
        // The 2-D sin-cos table gives each axis half the width, as sines and cosines.
        _ = try ConfigurationError.product(("num_attention_heads", headCount), ("attention_head_dim", headDimension), file: file)
        guard hiddenSize % 4 == 0 else { try fail("hidden size \(hiddenSize) (heads x head dim) must be a multiple of 4") }
        guard ["gelu-approximate", "gelu"].contains(activation) else {
            try fail("activation_fn '\(activation)' (supported: gelu-approximate, gelu)")
        }
    }

    /// Reads and validates a config.json; errors name the file.
    public static func load(_ url: URL) throws -> DiTConfiguration {
        let configuration: DiTConfiguration
        do {
            configuration = try JSONDecoder().decode(DiTConfiguration.self, from: Data(contentsOf: url))
        } catch {
            throw ConfigurationError(file: url.path, message: "\(error)")
        }
        try configuration.validate(file: url.path)
        return configuration
    }
}
