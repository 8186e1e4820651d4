import Foundation

/// The fields of a diffusers `AutoencoderKL` config (vae/config.json) that shape the model.
public struct AutoencoderKLConfiguration: Codable, Sendable, Equatable {
    public var inChannels: Int
    public var outChannels: Int
    public var blockOutChannels: [Int]
    public var layersPerBlock: Int
    public var latentChannels: Int
    public var normGroups: Int
    public var scalingFactor: Float
    public var shiftFactor: Float?
    public var useQuantConvolution: Bool
    public var usePostQuantConvolution: Bool
    public var midBlockAttention: Bool

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels"
        case outChannels = "out_channels"
        case blockOutChannels = "block_out_channels"
        case layersPerBlock = "layers_per_block"
        case latentChannels = "latent_channels"
        case normGroups = "norm_num_groups"
        case scalingFactor = "scaling_factor"
        case shiftFactor = "shift_factor"
        case useQuantConvolution = "use_quant_conv"
        case usePostQuantConvolution = "use_post_quant_conv"
        case midBlockAttention = "mid_block_add_attention"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? 3
        outChannels = try c.decodeIfPresent(Int.self, forKey: .outChannels) ?? 3
        blockOutChannels = try c.decodeIfPresent([Int].self, forKey: .blockOutChannels) ?? [64]
        layersPerBlock = try c.decodeIfPresent(Int.self, forKey: .layersPerBlock) ?? 1
        latentChannels = try c.decodeIfPresent(Int.self, forKey: .latentChannels) ?? 4
        normGroups = try c.decodeIfPresent(Int.self, forKey: .normGroups) ?? 32
        scalingFactor = try c.decodeIfPresent(Float.self, forKey: .scalingFactor) ?? 0.18215
        shiftFactor = try c.decodeIfPresent(Float.self, forKey: .shiftFactor)
        useQuantConvolution = try c.decodeIfPresent(Bool.self, forKey: .useQuantConvolution) ?? true
        usePostQuantConvolution = try c.decodeIfPresent(Bool.self, forKey: .usePostQuantConvolution) ?? true
        midBlockAttention = try c.decodeIfPresent(Bool.self, forKey: .midBlockAttention) ?? true
    }

    /// Pixels per latent pixel: 2^(number of blocks - 1).
    public var downscaleFactor: Int { 1 << (blockOutChannels.count - 1) }

    public static func load(_ url: URL) throws -> AutoencoderKLConfiguration {
        do {
            return try JSONDecoder().decode(AutoencoderKLConfiguration.self, from: Data(contentsOf: url))
        } catch {
            throw ConfigurationError(file: url.path, message: "\(error)")
        }
    }
}
