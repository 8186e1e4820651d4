import KilnGraph

/// FLUX.1 transformer weights in Black Forest Labs' original key names (`double_blocks.*`,
/// `single_blocks.*`, `img_in`, `txt_in`, `time_in`, `vector_in`, `guidance_in`, `final_layer`), as
/// the single `.safetensors` files carry them, presented under diffusers' names; the inverse of
/// nothing but the reading side of diffusers' convert_flux_transformer_checkpoint_to_diffusers.
///
/// - fused `qkv` (double blocks) is read as three row blocks `to_q`, `to_k`, `to_v`;
/// - a single block's `linear1 [3D + 4D, D]` is read as `to_q`, `to_k`, `to_v` and `proj_mlp`;
/// - `final_layer.adaLN_modulation.1` stores `[shift; scale]`, diffusers' `norm_out.linear`
///   `[scale; shift]`: its halves are swapped on load.
///
/// Files saved from ComfyUI carry every key behind `model.diffusion_model.`; that prefix is
/// recognised and dropped.
public enum FluxOriginalKeyNames {
    /// Key prefix some single files put before every transformer key.
    public static let diffusionModelPrefix = "model.diffusion_model."

    /// True if `source` holds a FLUX transformer under the original names (with or without the prefix).
    public static func isOriginal(_ source: TensorSource) -> Bool {
        source.shape(of: "double_blocks.0.img_attn.qkv.weight") != nil
            || source.shape(of: diffusionModelPrefix + "double_blocks.0.img_attn.qkv.weight") != nil
    }

    /// `source`'s transformer presented under diffusers' names. Widths are read from the file:
    /// the single blocks' split needs the model width `D` (rows of `img_in.weight`).
    public static func transformer(_ source: TensorSource) throws -> TensorSource {
        let prefix = source.shape(of: diffusionModelPrefix + "img_in.weight") != nil ? diffusionModelPrefix : ""
        guard let embedder = source.shape(of: prefix + "img_in.weight"), embedder.rank == 2 else {
            throw WeightError.missing(origin: source.origin, name: prefix + "img_in.weight", expected: nil)
        }
        let width = embedder[0]
        var mapping: OriginalKeyNames.Mapping = [:]
        func map(_ presented: String, _ stored: String, _ transform: RenamedTensorSource.Transform = .identity) {
            mapping[presented] = (prefix + stored, transform)
        }
        func mapLinear(_ presented: String, _ stored: String) {
            for kind in ["weight", "bias"] { map("\(presented).\(kind)", "\(stored).\(kind)") }
        }
        for (ours, theirs) in [("timestep_embedder", "time_in"), ("text_embedder", "vector_in"), ("guidance_embedder", "guidance_in")]
        where source.shape(of: prefix + theirs + ".in_layer.weight") != nil {
            mapLinear("time_text_embed.\(ours).linear_1", "\(theirs).in_layer")
            mapLinear("time_text_embed.\(ours).linear_2", "\(theirs).out_layer")
        }
        mapLinear("context_embedder", "txt_in")
        mapLinear("x_embedder", "img_in")

        for index in blockIndices(source, prefix + "double_blocks.") {
            let (ours, theirs) = ("transformer_blocks.\(index).", "double_blocks.\(index).")
            mapLinear(ours + "norm1.linear", theirs + "img_mod.lin")
            mapLinear(ours + "norm1_context.linear", theirs + "txt_mod.lin")
            for kind in ["weight", "bias"] {
                for (part, (image, text)) in [("to_q", "add_q_proj"), ("to_k", "add_k_proj"), ("to_v", "add_v_proj")].enumerated() {
                    map("\(ours)attn.\(image).\(kind)", "\(theirs)img_attn.qkv.\(kind)", .rows(start: part * width, count: width))
                    map("\(ours)attn.\(text).\(kind)", "\(theirs)txt_attn.qkv.\(kind)", .rows(start: part * width, count: width))
                }
            }
            map(ours + "attn.norm_q.weight", theirs + "img_attn.norm.query_norm.scale")
            map(ours + "attn.norm_k.weight", theirs + "img_attn.norm.key_norm.scale")
            map(ours + "attn.norm_added_q.weight", theirs + "txt_attn.norm.query_norm.scale")
            map(ours + "attn.norm_added_k.weight", theirs + "txt_attn.norm.key_norm.scale")
            mapLinear(ours + "attn.to_out.0", theirs + "img_attn.proj")
            mapLinear(ours + "attn.to_add_out", theirs + "txt_attn.proj")
            mapLinear(ours + "ff.net.0.proj", theirs + "img_mlp.0")
            mapLinear(ours + "ff.net.2", theirs + "img_mlp.2")
            mapLinear(ours + "ff_context.net.0.proj", theirs + "txt_mlp.0")
            mapLinear(ours + "ff_context.net.2", theirs + "txt_mlp.2")
        }

        for index in blockIndices(source, prefix + "single_blocks.") {
            let (ours, theirs) = ("single_transformer_blocks.\(index).", "single_blocks.\(index).")
            mapLinear(ours + "norm.linear", theirs + "modulation.lin")
            guard let fused = source.shape(of: prefix + theirs + "linear1.weight"), fused.rank == 2, fused[0] > 3 * width else {
                throw WeightError.missing(origin: source.origin, name: prefix + theirs + "linear1.weight", expected: [7 * width, width])
            }
            let mlpWidth = fused[0] - 3 * width
            for kind in ["weight", "bias"] {
                for (part, name) in ["to_q", "to_k", "to_v"].enumerated() {
                    map("\(ours)attn.\(name).\(kind)", "\(theirs)linear1.\(kind)", .rows(start: part * width, count: width))
                }
                map("\(ours)proj_mlp.\(kind)", "\(theirs)linear1.\(kind)", .rows(start: 3 * width, count: mlpWidth))
            }
            map(ours + "attn.norm_q.weight", theirs + "norm.query_norm.scale")
            map(ours + "attn.norm_k.weight", theirs + "norm.key_norm.scale")
            mapLinear(ours + "proj_out", theirs + "linear2")
        }

        mapLinear("proj_out", "final_layer.linear")
        mapLinear("norm_out.linear", "final_layer.adaLN_modulation.1")
        let renamed = RenamedTensorSource(base: source, mapping: mapping, origin: source.origin)
        return HalvesSwappedTensorSource(base: renamed, swapped: ["norm_out.linear.weight", "norm_out.linear.bias"])
    }

    /// The distinct block numbers `N` of keys `<prefix>N.*`, ascending.
    static func blockIndices(_ source: TensorSource, _ prefix: String) -> [Int] {
        Set(source.names.compactMap { name -> Int? in
            guard name.hasPrefix(prefix) else { return nil }
            return Int(name.dropFirst(prefix.count).prefix { $0 != "." })
        }).sorted()
    }

    /// The configuration a FLUX single file implies. Head width and rotary axes are not stored
    /// anywhere in the weights: `headDimension` defaults to FLUX.1's 128 (it must match the q/k
    /// norm scales' length) and `axesDimensionsRope` to FLUX.1's `[16, 56, 56]`.
    public static func inferConfiguration(_ source: TensorSource, axesDimensionsRope: [Int] = [16, 56, 56]) throws -> FluxTransformerConfiguration {
        let presented = isOriginal(source) ? try transformer(source) : source
        func shape(_ name: String) throws -> Shape {
            guard let found = presented.shape(of: name) else { throw WeightError.missing(origin: source.origin, name: name, expected: nil) }
            return found
        }
        let embedder = try shape("x_embedder.weight")
        let headDimension = try shape("transformer_blocks.0.attn.norm_q.weight")[0]
        guard embedder[0] % headDimension == 0 else {
            throw ConfigurationError(file: source.origin, message: "model width \(embedder[0]) is not a multiple of the head width \(headDimension)")
        }
        let configuration = FluxTransformerConfiguration(
            patchSize: 1, inChannels: embedder[1], outChannels: try shape("proj_out.weight")[0],
            doubleBlockCount: blockIndices(presented, "transformer_blocks.").count,
            singleBlockCount: blockIndices(presented, "single_transformer_blocks.").count,
            headDimension: headDimension, headCount: embedder[0] / headDimension,
            jointAttentionDimension: try shape("context_embedder.weight")[1],
            pooledProjectionDimension: try shape("time_text_embed.text_embedder.linear_1.weight")[1],
            guidanceEmbeds: presented.shape(of: "time_text_embed.guidance_embedder.linear_1.weight") != nil,
            axesDimensionsRope: axesDimensionsRope)
        try configuration.validate(file: source.origin)
        return configuration
    }
}
