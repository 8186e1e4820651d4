import KilnGraph

/// The key names of the original (CompVis / Stability) Stable Diffusion checkpoints, translated to
/// diffusers' and transformers' names. Each function takes the component's stored keys (prefix
/// already removed) and returns presented key -> (stored key, transform).
public enum OriginalKeyNames {
    public typealias Mapping = [String: (stored: String, transform: RenamedTensorSource.Transform)]

    /// Replaces the first match of each (old, new) pair, in order.
    static func rename(_ key: String, _ pairs: [(String, String)]) -> String {
        var result = key
        for (old, new) in pairs where result.contains(old) {
            result = result.replacingFirst(old, with: new)
        }
        return result
    }

    /// Splits `key` into its dotted parts.
    static func parts(_ key: String) -> [String] { key.split(separator: ".", omittingEmptySubsequences: false).map(String.init) }

    // MARK: VAE

    /// `first_stage_model.*` → AutoencoderKL. The decoder's `up.k` is diffusers' `up_blocks.(n-1-k)`;
    /// mid-block attention q/k/v/proj_out are 1x1 convolutions there and linears here.
    public static func vae(_ keys: [String]) -> Mapping {
        let levels = Set(keys.compactMap { key -> Int? in
            let p = parts(key)
            return p.count > 2 && p[0] == "decoder" && p[1] == "up" ? Int(p[2]) : nil
        }).count
        var mapping: Mapping = [:]
        for key in keys {
            var p = parts(key)
            var transform = RenamedTensorSource.Transform.identity
            if p.count > 3, p[1] == "down", let level = Int(p[2]) {
                p.replaceSubrange(1...2, with: ["down_blocks", "\(level)"])
                if p[3] == "block" { p[3] = "resnets" } else if p[3] == "downsample" { p.replaceSubrange(3...3, with: ["downsamplers", "0"]) }
            } else if p.count > 3, p[1] == "up", let level = Int(p[2]) {
                p.replaceSubrange(1...2, with: ["up_blocks", "\(levels - 1 - level)"])
                if p[3] == "block" { p[3] = "resnets" } else if p[3] == "upsample" { p.replaceSubrange(3...3, with: ["upsamplers", "0"]) }
            } else if p.count > 3, p[1] == "mid" {
                switch p[2] {
                case "block_1": p.replaceSubrange(1...2, with: ["mid_block", "resnets", "0"])
                case "block_2": p.replaceSubrange(1...2, with: ["mid_block", "resnets", "1"])
                case "attn_1":
                    let names = ["norm": ["group_norm"], "q": ["to_q"], "k": ["to_k"], "v": ["to_v"], "proj_out": ["to_out", "0"]]
                    p.replaceSubrange(3...3, with: names[p[3]] ?? [p[3]])
                    p.replaceSubrange(1...2, with: ["mid_block", "attentions", "0"])
                    if p.last == "weight", p[p.count - 2] != "group_norm" { transform = .squeeze }
                default: break
                }
            } else if p.count > 2, p[1] == "norm_out" {
                p[1] = "conv_norm_out"
            }
            if let shortcut = p.firstIndex(of: "nin_shortcut") { p[shortcut] = "conv_shortcut" }
            mapping[p.joined(separator: ".")] = (key, transform)
        }
        return mapping
    }

    // MARK: U-Net

    /// `model.diffusion_model.*` → UNet2DConditionModel. The original numbers blocks in one flat
    /// list per direction; the configuration says how many resnets (and attentions) each level has.
    public static func unet(_ keys: [String], configuration c: UNetConfiguration) -> Mapping {
        let levels = c.blockOutChannels.count
        // input_blocks.k -> (level, layer) or a downsampler; output_blocks.k likewise for up blocks.
        var input: [Int: (level: Int, layer: Int?)] = [:]
        var index = 1
        for level in 0..<levels {
            for layer in 0..<c.layersPerBlock[level] { input[index] = (level, layer); index += 1 }
            if level < levels - 1 { input[index] = (level, nil); index += 1 }
        }
        var output: [Int: (level: Int, layer: Int)] = [:]
        index = 0
        for level in 0..<levels {
            for layer in 0...c.layersPerBlock[levels - 1 - level] { output[index] = (level, layer); index += 1 }
        }
        let resnetNames = [("in_layers.0.", "norm1."), ("in_layers.2.", "conv1."), ("emb_layers.1.", "time_emb_proj."),
                           ("out_layers.0.", "norm2."), ("out_layers.3.", "conv2."), ("skip_connection.", "conv_shortcut.")]
        var mapping: Mapping = [:]
        for key in keys {
            let p = parts(key)
            var name: String?
            switch p.first {
            case "time_embed": name = rename(key, [("time_embed.0.", "time_embedding.linear_1."), ("time_embed.2.", "time_embedding.linear_2.")])
            case "label_emb": name = rename(key, [("label_emb.0.0.", "add_embedding.linear_1."), ("label_emb.0.2.", "add_embedding.linear_2.")])
            case "out": name = rename(key, [("out.0.", "conv_norm_out."), ("out.2.", "conv_out.")])
            case "input_blocks" where p.count > 3:
                guard let block = Int(p[1]), let sub = Int(p[2]) else { break }
                let rest = p[3...].joined(separator: ".")
                if block == 0 { name = "conv_in.\(rest)"; break }
                guard let (level, layer) = input[block] else { break }
                if let layer {
                    name = sub == 0 ? "down_blocks.\(level).resnets.\(layer).\(rename(rest + ".", resnetNames).dropLast())"
                        : "down_blocks.\(level).attentions.\(layer).\(rest)"
                } else if p[3] == "op" {
                    name = "down_blocks.\(level).downsamplers.0.conv.\(p[4...].joined(separator: "."))"
                }
            case "middle_block" where p.count > 2:
                let rest = p[2...].joined(separator: ".")
                switch p[1] {
                case "0": name = "mid_block.resnets.0.\(rename(rest + ".", resnetNames).dropLast())"
                case "1": name = "mid_block.attentions.0.\(rest)"
                case "2": name = "mid_block.resnets.1.\(rename(rest + ".", resnetNames).dropLast())"
                default: break
                }
            case "output_blocks" where p.count > 3:
                guard let block = Int(p[1]), let sub = Int(p[2]), let (level, layer) = output[block] else { break }
                let rest = p[3...].joined(separator: ".")
                if sub == 0 {
                    name = "up_blocks.\(level).resnets.\(layer).\(rename(rest + ".", resnetNames).dropLast())"
                } else if p[3] == "conv" {
                    name = "up_blocks.\(level).upsamplers.0.conv.\(p[4...].joined(separator: "."))"
                } else {
                    name = "up_blocks.\(level).attentions.\(layer).\(rest)"
                }
            default: break
            }
            if let name { mapping[name] = (key, .identity) }
        }
        return mapping
    }

    // MARK: Text encoders

    /// A transformers CLIP text model stored under a prefix (SD1's and SDXL's CLIP-L).
    public static func clip(_ keys: [String]) -> Mapping {
        Dictionary(uniqueKeysWithValues: keys.filter { !$0.hasSuffix("position_ids") }.map { ($0, (stored: $0, transform: .identity)) })
    }

    /// OpenCLIP's text tower (SD2's ViT-H, SDXL's bigG): fused q/k/v, `[D, P]` projection.
    public static func openCLIP(_ keys: [String]) -> Mapping {
        var mapping: Mapping = [:]
        for key in keys {
            let p = parts(key)
            switch key {
            case "token_embedding.weight": mapping["text_model.embeddings.token_embedding.weight"] = (key, .identity)
            case "positional_embedding": mapping["text_model.embeddings.position_embedding.weight"] = (key, .identity)
            case "text_projection": mapping["text_projection.weight"] = (key, .transpose)
            case _ where p.first == "ln_final": mapping["text_model.final_layer_norm.\(p[1])"] = (key, .identity)
            case _ where p.count > 4 && p[0] == "transformer" && p[1] == "resblocks":
                let layer = "text_model.encoder.layers.\(p[2])."
                let rest = p[3...].joined(separator: ".")
                if rest == "attn.in_proj_weight" || rest == "attn.in_proj_bias" {
                    // Filled in below once the width is known.
                    mapping[layer + "self_attn.\(rest)"] = (key, .identity)
                } else {
                    let renamed = rename(rest, [("ln_1.", "layer_norm1."), ("ln_2.", "layer_norm2."), ("attn.out_proj.", "self_attn.out_proj."),
                                                ("mlp.c_fc.", "mlp.fc1."), ("mlp.c_proj.", "mlp.fc2.")])
                    mapping[layer + renamed] = (key, .identity)
                }
            default: break
            }
        }
        return mapping
    }

    /// Replaces each fused `in_proj` entry by q/k/v row blocks of `width` rows.
    static func splitFusedProjections(_ mapping: Mapping, width: Int) -> Mapping {
        var result: Mapping = [:]
        for (name, entry) in mapping {
            guard name.hasSuffix("self_attn.attn.in_proj_weight") || name.hasSuffix("self_attn.attn.in_proj_bias") else {
                result[name] = entry
                continue
            }
            let layer = name.components(separatedBy: "self_attn.")[0]
            let suffix = name.hasSuffix("weight") ? "weight" : "bias"
            for (index, projection) in ["q_proj", "k_proj", "v_proj"].enumerated() {
                result["\(layer)self_attn.\(projection).\(suffix)"] = (entry.stored, .rows(start: index * width, count: width))
            }
        }
        return result
    }
}

extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = range(of: target) else { return self }
        return replacingCharacters(in: range, with: replacement)
    }
}
