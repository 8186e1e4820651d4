import Foundation

/// The fields of a diffusers `FluxTransformer2DModel` config (transformer/config.json).
/// Defaults are FLUX.1's own (19 double-stream and 38 single-stream blocks, 24 heads of 128,
/// T5-XXL text states of 4096, CLIP-L pooled 768, rotary axes 16 + 56 + 56 = 128).
public struct FluxTransformerConfiguration: Sendable, Equatable {
    public var patchSize: Int
    /// Channels of a packed latent token: 16 latent channels x 2 x 2 = 64 for FLUX.1.
    public var inChannels: Int
    public var outChannels: Int
    /// Double-stream blocks (`num_layers`).
    public var doubleBlockCount: Int
    /// Single-stream blocks (`num_single_layers`).
    public var singleBlockCount: Int
    public var headDimension: Int
    public var headCount: Int
    /// Width of the text encoder's states (`joint_attention_dim`).
    public var jointAttentionDimension: Int
    /// Width of the pooled CLIP embedding (`pooled_projection_dim`).
    public var pooledProjectionDimension: Int
    /// FLUX.1-dev embeds the guidance scale; schnell does not.
    public var guidanceEmbeds: Bool
    /// Rotary dims per position axis (`axes_dims_rope`); they sum to the head dim.
    public var axesDimensionsRope: [Int]

    /// The transformer's width, `heads x head dim` (3072 for FLUX.1).
    public var innerDimension: Int { headCount * headDimension }
    /// The MLP's hidden width: FLUX fixes the ratio at 4.
    public var mlpDimension: Int { innerDimension * 4 }

    public init(patchSize: Int = 1, inChannels: Int = 64, outChannels: Int? = nil, doubleBlockCount: Int = 19,
                singleBlockCount: Int = 38, headDimension: Int = 128, headCount: Int = 24, jointAttentionDimension: Int = 4096,
                pooledProjectionDimension: Int = 768, guidanceEmbeds: Bool = false, axesDimensionsRope: [Int] = [16, 56, 56]) {
        self.patchSize = patchSize
        self.inChannels = inChannels
        self.outChannels = outChannels ?? inChannels
        self.doubleBlockCount = doubleBlockCount
        self.singleBlockCount = singleBlockCount
        self.headDimension = headDimension
        self.headCount = headCount
        self.jointAttentionDimension = jointAttentionDimension
        self.pooledProjectionDimension = pooledProjectionDimension
        self.guidanceEmbeds = guidanceEmbeds
        self.axesDimensionsRope = axesDimensionsRope
    }

    public static func load(_ url: URL) throws -> FluxTransformerConfiguration {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw ConfigurationError(file: url.path, message: "\(error)") }
        guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ConfigurationError(file: url.path, message: "not a JSON object")
        }
        return try FluxTransformerConfiguration(json: json, file: url.path)
    }

    public init(json: [String: Any], file: String) throws {
        let defaults = FluxTransformerConfiguration()
        func value<T>(_ key: String, _ fallback: T) throws -> T {
            guard let found = json[key], !(found is NSNull) else { return fallback }
            guard let typed = found as? T else { throw ConfigurationError(file: file, message: "'\(key)' has the wrong type: \(found)") }
            return typed
        }
        patchSize = try value("patch_size", defaults.patchSize)
        inChannels = try value("in_channels", defaults.inChannels)
        outChannels = try value("out_channels", inChannels)
        doubleBlockCount = try value("num_layers", defaults.doubleBlockCount)
        singleBlockCount = try value("num_single_layers", defaults.singleBlockCount)
        headDimension = try value("attention_head_dim", defaults.headDimension)
        headCount = try value("num_attention_heads", defaults.headCount)
        jointAttentionDimension = try value("joint_attention_dim", defaults.jointAttentionDimension)
        pooledProjectionDimension = try value("pooled_projection_dim", defaults.pooledProjectionDimension)
        guidanceEmbeds = try value("guidance_embeds", defaults.guidanceEmbeds)
        axesDimensionsRope = try value("axes_dims_rope", defaults.axesDimensionsRope)
        try validate(file: file)
    }

    /// Checks what the model's shapes rely on.
    public func validate(file: String) throws {
        guard axesDimensionsRope.allSatisfy({ $0 > 0 && $0 % 2 == 0 }) else {
            throw ConfigurationError(file: file, message: "axes_dims_rope \(axesDimensionsRope) must be positive and even (rotary pairs)")
        }
        let ropeWidth = try ConfigurationError.sum("axes_dims_rope", axesDimensionsRope, file: file)
        guard ropeWidth == headDimension else {
            throw ConfigurationError(file: file, message: "axes_dims_rope \(axesDimensionsRope) sum to \(ropeWidth), not attention_head_dim \(headDimension)")
        }
        guard patchSize >= 1, inChannels > 0, outChannels > 0, headCount > 0, headDimension > 0 else {
            throw ConfigurationError(file: file, message: "patch_size, in/out_channels and the head sizes must be positive")
        }
        // The MLP is 4x the inner width (innerDimension, mlpDimension).
        let inner = try ConfigurationError.product(("num_attention_heads", headCount), ("attention_head_dim", headDimension), file: file)
        _ = try ConfigurationError.product(("the inner width", inner), ("the MLP ratio", 4), file: file)
    }
}
