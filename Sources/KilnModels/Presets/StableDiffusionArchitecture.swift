import Foundation
import KilnGraph

/// A published Stable Diffusion architecture (the configs of its diffusers release), for running
/// and benchmarking the real sizes with synthetic weights.
public struct StableDiffusionArchitecture: Sendable {
    /// `kiln bench --arch` name: `sd15`, `sd21`, `sdxl`.
    public let name: String
    public let unet: UNetConfiguration
    public let vae: AutoencoderKLConfiguration
    /// text_encoder (and text_encoder_2 for SDXL).
    public let textEncoders: [CLIPTextConfiguration]
    /// Width of the U-Net's text context: the encoders' hidden states side by side.
    public var contextWidth: Int { textEncoders.reduce(0) { $0 + $1.hiddenSize } }

    public static let names = ["sd15", "sd21", "sdxl"]

    public init(name: String, unet: UNetConfiguration, vae: AutoencoderKLConfiguration, textEncoders: [CLIPTextConfiguration]) {
        self.name = name
        self.unet = unet
        self.vae = vae
        self.textEncoders = textEncoders
    }

    /// The architecture of an opened checkpoint, named by its family (`sd1`, `sd2`, `sdxl`).
    public init(_ checkpoint: StableDiffusionCheckpoint) {
        self.init(
            name: checkpoint.family.rawValue, unet: checkpoint.unet.configuration, vae: checkpoint.vae.configuration,
            textEncoders: [checkpoint.textEncoder.configuration] + (checkpoint.textEncoder2.map { [$0.configuration] } ?? []))
    }

    public static func named(_ name: String) throws -> StableDiffusionArchitecture {
        switch name {
        case "sd15": try sd15()
        case "sd21": try sd21()
        case "sdxl": try sdxl()
        default: throw GraphError("architecture", "unknown Stable Diffusion architecture '\(name)'; known: \(names.joined(separator: ", "))")
        }
    }

    /// runwayml/stable-diffusion-v1-5: 4 levels of 320/640/1280/1280 channels, 8 heads, CLIP-L context.
    public static func sd15() throws -> StableDiffusionArchitecture {
        StableDiffusionArchitecture(
            name: "sd15", unet: try unet(heads: [8], crossAttention: 768, linearProjection: false),
            vae: try vae(scalingFactor: 0.18215), textEncoders: [clipL])
    }

    /// stabilityai/stable-diffusion-2-1: SD1.5's levels with heads of 64 channels and OpenCLIP
    /// ViT-H's text tower without its last layer, as the release ships it.
    public static func sd21() throws -> StableDiffusionArchitecture {
        StableDiffusionArchitecture(
            name: "sd21", unet: try unet(heads: [5, 10, 20, 20], crossAttention: 1024, linearProjection: true),
            vae: try vae(scalingFactor: 0.18215),
            textEncoders: [CLIPTextConfiguration(hiddenSize: 1024, intermediateSize: 4096, layerCount: 23, headCount: 16, activation: "gelu")])
    }

    /// stabilityai/stable-diffusion-xl-base-1.0: 3 levels with 1/2/10 transformer layers, CLIP-L
    /// plus OpenCLIP bigG (with projection) for a 2048-wide context, and text/size conditioning.
    public static func sdxl() throws -> StableDiffusionArchitecture {
        StableDiffusionArchitecture(
            name: "sdxl",
            unet: try unet(
                heads: [5, 10, 20], crossAttention: 2048, linearProjection: true,
                levels: [320, 640, 1280], down: ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
                up: ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
                extra: ["transformer_layers_per_block": [1, 2, 10], "addition_embed_type": "text_time",
                        "addition_time_embed_dim": 256, "projection_class_embeddings_input_dim": 2816]),
            vae: try vae(scalingFactor: 0.13025),
            textEncoders: [clipL, openCLIPBigG])
    }

    /// CLIP ViT-L/14's text tower.
    public static let clipL = CLIPTextConfiguration(hiddenSize: 768, intermediateSize: 3072, layerCount: 12, headCount: 12, activation: "quick_gelu")

    /// OpenCLIP ViT-bigG/14's text tower with its projection (SDXL's and SD3's second encoder).
    public static let openCLIPBigG = CLIPTextConfiguration(
        hiddenSize: 1280, intermediateSize: 5120, layerCount: 32, headCount: 20, activation: "gelu",
        projectionSize: 1280, architectures: ["CLIPTextModelWithProjection"])

    static func unet(
        heads: [Int], crossAttention: Int, linearProjection: Bool, levels: [Int] = [320, 640, 1280, 1280],
        down: [String] = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        up: [String] = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        extra: [String: Any] = [:]
    ) throws -> UNetConfiguration {
        let json: [String: Any] = [
            "in_channels": 4, "out_channels": 4, "block_out_channels": levels,
            "down_block_types": down, "up_block_types": up, "layers_per_block": 2,
            "attention_head_dim": heads.count == 1 ? heads[0] : heads, "cross_attention_dim": crossAttention,
            "use_linear_projection": linearProjection, "norm_num_groups": 32, "norm_eps": 1e-5,
            "flip_sin_to_cos": true, "freq_shift": 0,
        ]
        return try UNetConfiguration(json: json.merging(extra) { $1 }, file: "preset unet")
    }

    static func vae(scalingFactor: Float) throws -> AutoencoderKLConfiguration {
        let json: [String: Any] = [
            "in_channels": 3, "out_channels": 3, "block_out_channels": [128, 256, 512, 512], "layers_per_block": 2,
            "latent_channels": 4, "norm_num_groups": 32, "scaling_factor": scalingFactor,
        ]
        return try JSONDecoder().decode(AutoencoderKLConfiguration.self, from: JSONSerialization.data(withJSONObject: json))
    }
}
