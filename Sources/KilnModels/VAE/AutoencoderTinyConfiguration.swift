import Foundation

/// The fields of a diffusers `AutoencoderTiny` config (TAESD, taesdxl, taesd3, taef1) that shape
/// the model, with diffusers' defaults (TAESD's own layout).
public struct AutoencoderTinyConfiguration: Codable, Sendable, Equatable {
    public var inChannels: Int
    public var outChannels: Int
    public var encoderBlockOutChannels: [Int]
    public var decoderBlockOutChannels: [Int]
    public var latentChannels: Int
    public var upsamplingScalingFactor: Int
    public var encoderBlockCounts: [Int]
    public var decoderBlockCounts: [Int]
    /// The sampler's latents are `(z - shift) * scaling` of the latents TAESD reads (1 and 0 for
    /// taesd and taesdxl, which read the sampler's latents; the VAE's own factors for taesd3 and taef1).
    public var scalingFactor: Float
    public var shiftFactor: Float

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels"
        case outChannels = "out_channels"
        case encoderBlockOutChannels = "encoder_block_out_channels"
        case decoderBlockOutChannels = "decoder_block_out_channels"
        case latentChannels = "latent_channels"
        case upsamplingScalingFactor = "upsampling_scaling_factor"
        case encoderBlockCounts = "num_encoder_blocks"
        case decoderBlockCounts = "num_decoder_blocks"
        case scalingFactor = "scaling_factor"
        case shiftFactor = "shift_factor"
        case activation = "act_fn"
        case upsampling = "upsample_fn"
    }

    /// TAESD's released layout at `width` channels.
    public init(latentChannels: Int = 4, width: Int = 64, scalingFactor: Float = 1, shiftFactor: Float = 0) {
        inChannels = 3
        outChannels = 3
        encoderBlockOutChannels = [width, width, width, width]
        decoderBlockOutChannels = [width, width, width, width]
        self.latentChannels = latentChannels
        upsamplingScalingFactor = 2
        encoderBlockCounts = [1, 3, 3, 3]
        decoderBlockCounts = [3, 3, 3, 1]
        self.scalingFactor = scalingFactor
        self.shiftFactor = shiftFactor
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = AutoencoderTinyConfiguration()
        inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? defaults.inChannels
        outChannels = try c.decodeIfPresent(Int.self, forKey: .outChannels) ?? defaults.outChannels
        encoderBlockOutChannels = try c.decodeIfPresent([Int].self, forKey: .encoderBlockOutChannels) ?? defaults.encoderBlockOutChannels
        decoderBlockOutChannels = try c.decodeIfPresent([Int].self, forKey: .decoderBlockOutChannels) ?? defaults.decoderBlockOutChannels
        latentChannels = try c.decodeIfPresent(Int.self, forKey: .latentChannels) ?? defaults.latentChannels
        upsamplingScalingFactor = try c.decodeIfPresent(Int.self, forKey: .upsamplingScalingFactor) ?? 2
        encoderBlockCounts = try c.decodeIfPresent([Int].self, forKey: .encoderBlockCounts) ?? defaults.encoderBlockCounts
        decoderBlockCounts = try c.decodeIfPresent([Int].self, forKey: .decoderBlockCounts) ?? defaults.decoderBlockCounts
        scalingFactor = try c.decodeIfPresent(Float.self, forKey: .scalingFactor) ?? 1
        shiftFactor = try c.decodeIfPresent(Float.self, forKey: .shiftFactor) ?? 0
        let activation = try c.decodeIfPresent(String.self, forKey: .activation) ?? "relu"
        let upsampling = try c.decodeIfPresent(String.self, forKey: .upsampling) ?? "nearest"
        guard activation == "relu", upsampling == "nearest", upsamplingScalingFactor == 2 else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription:
                "AutoencoderTiny with act_fn \(activation), upsample_fn \(upsampling) x\(upsamplingScalingFactor): Kiln runs TAESD's relu, nearest x2"))
        }
        guard encoderBlockOutChannels.count == encoderBlockCounts.count, decoderBlockOutChannels.count == decoderBlockCounts.count,
              !decoderBlockOutChannels.isEmpty, !encoderBlockOutChannels.isEmpty else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "block channel and block count lists differ in length"))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(inChannels, forKey: .inChannels)
        try c.encode(outChannels, forKey: .outChannels)
        try c.encode(encoderBlockOutChannels, forKey: .encoderBlockOutChannels)
        try c.encode(decoderBlockOutChannels, forKey: .decoderBlockOutChannels)
        try c.encode(latentChannels, forKey: .latentChannels)
        try c.encode(upsamplingScalingFactor, forKey: .upsamplingScalingFactor)
        try c.encode(encoderBlockCounts, forKey: .encoderBlockCounts)
        try c.encode(decoderBlockCounts, forKey: .decoderBlockCounts)
        try c.encode(scalingFactor, forKey: .scalingFactor)
        try c.encode(shiftFactor, forKey: .shiftFactor)
    }

    /// Pixels per latent pixel: 2^(levels - 1).
    public var upscaleFactor: Int { 1 << (decoderBlockOutChannels.count - 1) }

    public static func load(_ url: URL) throws -> AutoencoderTinyConfiguration {
        do {
            return try JSONDecoder().decode(AutoencoderTinyConfiguration.self, from: Data(contentsOf: url))
        } catch {
            throw ConfigurationError(file: url.path, message: "\(error)")
        }
    }
}
