import KilnGraph

/// facebookresearch/DiT's checkpoint names (models.py: `x_embedder`, `t_embedder`, `y_embedder`,
/// `blocks.N`, `final_layer`) presented under diffusers' `DiTTransformer2DModel` names, as
/// diffusers' `convert_dit_to_diffusers.py` maps them: the one timestep and class embedder
/// appears as block 0's `norm1.emb` (the model is built with `sharesEmbedder` so every block
/// uses it, as the conversion's copies would), and the fused `attn.qkv` `[3D, D]` is split into
/// `to_q`/`to_k`/`to_v` by rows. The stored `pos_embed` is not read: Kiln computes the same
/// fixed sin-cos table on the host, as diffusers does.
public enum DiTOriginalKeyNames {
    /// The key that tells an original-layout file from a diffusers one.
    public static let marker = "x_embedder.proj.weight"

    /// Stored keys that are deliberately not read.
    public static let ignored: Set<String> = ["pos_embed"]

    /// Presented (diffusers) key -> (stored key, transform), for `layerCount` blocks of width `hiddenSize`.
    public static func mapping(layerCount: Int, hiddenSize d: Int) -> OriginalKeyNames.Mapping {
        var mapping: OriginalKeyNames.Mapping = [:]
        func map(_ presented: String, _ stored: String, _ transform: RenamedTensorSource.Transform = .identity) {
            mapping[presented] = (stored, transform)
        }
        for kind in ["weight", "bias"] {
            map("pos_embed.proj.\(kind)", "x_embedder.proj.\(kind)")
            map("proj_out_1.\(kind)", "final_layer.adaLN_modulation.1.\(kind)")
            map("proj_out_2.\(kind)", "final_layer.linear.\(kind)")
            for index in 0..<layerCount {
                let block = "transformer_blocks.\(index).", original = "blocks.\(index)."
                if index == 0 {
                    map(block + "norm1.emb.timestep_embedder.linear_1.\(kind)", "t_embedder.mlp.0.\(kind)")
                    map(block + "norm1.emb.timestep_embedder.linear_2.\(kind)", "t_embedder.mlp.2.\(kind)")
                }
                map(block + "norm1.linear.\(kind)", original + "adaLN_modulation.1.\(kind)")
                for (part, name) in ["to_q", "to_k", "to_v"].enumerated() {
                    map(block + "attn1.\(name).\(kind)", original + "attn.qkv.\(kind)", .rows(start: part * d, count: d))
                }
                map(block + "attn1.to_out.0.\(kind)", original + "attn.proj.\(kind)")
                map(block + "ff.net.0.proj.\(kind)", original + "mlp.fc1.\(kind)")
                map(block + "ff.net.2.\(kind)", original + "mlp.fc2.\(kind)")
            }
        }
        map("transformer_blocks.0.norm1.emb.class_embedder.embedding_table.weight", "y_embedder.embedding_table.weight")
        return mapping
    }

    /// Number of blocks in an original-layout file (`blocks.N.` prefixes).
    public static func layerCount(in keys: [String]) -> Int {
        let indices = keys.compactMap { key -> Int? in
            let parts = key.split(separator: ".")
            return parts.count > 1 && parts[0] == "blocks" ? Int(parts[1]) : nil
        }
        return (indices.max() ?? -1) + 1
    }
}
