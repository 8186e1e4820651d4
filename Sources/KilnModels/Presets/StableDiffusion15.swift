import Foundation

/// The published Stable Diffusion 1.5 architecture (runwayml/stable-diffusion-v1-5's configs), for
/// running and benchmarking the real sizes with synthetic weights.
public enum StableDiffusion15 {
    /// unet/config.json: 4 levels of 320/640/1280/1280 channels, 8 heads, CLIP-L context.
    public static func unet() throws -> UNetConfiguration {
        try UNetConfiguration(json: [
            "in_channels": 4, "out_channels": 4,
            "block_out_channels": [320, 640, 1280, 1280],
            "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
            "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
            "layers_per_block": 2, "attention_head_dim": 8, "cross_attention_dim": 768,
            "norm_num_groups": 32, "norm_eps": 1e-5, "flip_sin_to_cos": true, "freq_shift": 0,
        ], file: "preset sd15/unet")
    }

    /// vae/config.json.
    public static func vae() throws -> AutoencoderKLConfiguration {
        let json: [String: Any] = [
            "in_channels": 3, "out_channels": 3, "block_out_channels": [128, 256, 512, 512], "layers_per_block": 2,
            "latent_channels": 4, "norm_num_groups": 32, "scaling_factor": 0.18215,
        ]
        return try JSONDecoder().decode(AutoencoderKLConfiguration.self, from: JSONSerialization.data(withJSONObject: json))
    }

    /// text_encoder/config.json: CLIP ViT-L/14's text tower.
    public static let textEncoder = CLIPTextConfiguration(
        hiddenSize: 768, intermediateSize: 3072, layerCount: 12, headCount: 12, activation: "quick_gelu")
}
