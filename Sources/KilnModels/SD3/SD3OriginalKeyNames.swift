import KilnGraph

/// The key names of Stability's original SD3 / SD3.5 single files (`model.diffusion_model.joint_blocks.N.*`)
/// presented as diffusers' `SD3Transformer2DModel` names, as diffusers'
/// `convert_sd3_transformer_checkpoint_to_diffusers` renames them:
///
/// - fused `attn.qkv` / `attn2.qkv` rows split into `to_q`, `to_k`, `to_v` (image stream) and
///   `add_q_proj`, `add_k_proj`, `add_v_proj` (context stream);
/// - `attn.ln_q`/`ln_k` -> `norm_q`/`norm_k` (context: `norm_added_q`/`norm_added_k`);
/// - the final layer's and the last block's context adaLN store (shift, scale) where diffusers
///   has (scale, shift): those two are read with their halves swapped.
public enum SD3OriginalKeyNames {
    /// The prefix of the transformer's keys inside a whole-pipeline single file.
    public static let transformerPrefix = "model.diffusion_model."

    /// True when `source` holds an original-layout SD3 transformer (with or without the prefix).
    public static func holdsTransformer(_ source: TensorSource) -> Bool {
        source.shape(of: transformerPrefix + "x_embedder.proj.weight") != nil || source.shape(of: "x_embedder.proj.weight") != nil
    }

    /// `source`'s transformer under diffusers' names; the prefix is optional (a bare transformer file has none).
    public static func transformer(_ source: TensorSource) throws -> TensorSource {
        let prefix = source.shape(of: transformerPrefix + "x_embedder.proj.weight") != nil ? transformerPrefix : ""
        let stored = source.names.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
        guard stored.contains("x_embedder.proj.weight") else {
            throw WeightError.missing(origin: source.origin, name: prefix + "x_embedder.proj.weight", expected: nil)
        }
        let layerCount = Self.layerCount(stored)
        var mapping: OriginalKeyNames.Mapping = [:]
        var swapped: Set<String> = []
        func add(_ presented: String, _ original: String, _ transform: RenamedTensorSource.Transform = .identity) {
            mapping[presented] = (prefix + original, transform)
        }
        for key in stored {
            guard let (presented, isSwapped) = rename(key, layerCount: layerCount) else { continue }
            if case .fusedProjection(let names) = presented {
                guard let rows = source.shape(of: prefix + key)?[0], rows % 3 == 0 else {
                    throw WeightError.wrongShape(origin: source.origin, name: prefix + key, expected: [3, 0], found: source.shape(of: prefix + key) ?? [])
                }
                for (index, name) in names.enumerated() { add(name, key, .rows(start: index * rows / 3, count: rows / 3)) }
            } else if case .single(let name) = presented {
                add(name, key)
                if isSwapped { swapped.insert(name) }
            }
        }
        let renamed = RenamedTensorSource(base: source, mapping: mapping, origin: source.origin)
        return HalvesSwappedTensorSource(base: renamed, swapped: swapped)
    }

    /// Number of joint blocks: one past the highest `joint_blocks.N`.
    static func layerCount(_ keys: [String]) -> Int {
        (keys.compactMap { key -> Int? in
            let parts = key.split(separator: ".")
            return parts.count > 1 && parts[0] == "joint_blocks" ? Int(parts[1]) : nil
        }.max() ?? -1) + 1
    }

    enum Presented {
        case single(String)
        /// A fused q/k/v weight or bias: three presented keys, one third of the rows each.
        case fusedProjection([String])
    }

    /// The diffusers name(s) of one stored key, and whether its halves are swapped; nil for keys
    /// diffusers' converter does not read.
    static func rename(_ key: String, layerCount: Int) -> (Presented, Bool)? {
        let topLevel: [String: String] = [
            "x_embedder.proj": "pos_embed.proj",
            "t_embedder.mlp.0": "time_text_embed.timestep_embedder.linear_1",
            "t_embedder.mlp.2": "time_text_embed.timestep_embedder.linear_2",
            "y_embedder.mlp.0": "time_text_embed.text_embedder.linear_1",
            "y_embedder.mlp.2": "time_text_embed.text_embedder.linear_2",
            "context_embedder": "context_embedder",
            "final_layer.linear": "proj_out",
            "final_layer.adaLN_modulation.1": "norm_out.linear",
        ]
        if key == "pos_embed" { return (.single("pos_embed.pos_embed"), false) }
        let parts = key.split(separator: ".").map(String.init)
        guard let parameter = parts.last else { return nil }
        let module = parts.dropLast().joined(separator: ".")
        if let renamed = topLevel[module] {
            return (.single("\(renamed).\(parameter)"), module == "final_layer.adaLN_modulation.1")
        }
        guard parts.count > 4, parts[0] == "joint_blocks", let index = Int(parts[1]) else { return nil }
        let block = "transformer_blocks.\(index)."
        let isContext = parts[2] == "context_block"
        guard isContext || parts[2] == "x_block" else { return nil }
        let inner = parts[3..<(parts.count - 1)].joined(separator: ".")
        switch inner {
        case "attn.qkv":
            let names = isContext ? ["attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"] : ["attn.to_q", "attn.to_k", "attn.to_v"]
            return (.fusedProjection(names.map { "\(block)\($0).\(parameter)" }), false)
        case "attn2.qkv" where !isContext:
            return (.fusedProjection(["attn2.to_q", "attn2.to_k", "attn2.to_v"].map { "\(block)\($0).\(parameter)" }), false)
        case "attn.proj": return (.single("\(block)attn.\(isContext ? "to_add_out" : "to_out.0").\(parameter)"), false)
        case "attn2.proj" where !isContext: return (.single("\(block)attn2.to_out.0.\(parameter)"), false)
        case "attn.ln_q": return (.single("\(block)attn.\(isContext ? "norm_added_q" : "norm_q").\(parameter)"), false)
        case "attn.ln_k": return (.single("\(block)attn.\(isContext ? "norm_added_k" : "norm_k").\(parameter)"), false)
        case "attn2.ln_q" where !isContext: return (.single("\(block)attn2.norm_q.\(parameter)"), false)
        case "attn2.ln_k" where !isContext: return (.single("\(block)attn2.norm_k.\(parameter)"), false)
        case "adaLN_modulation.1":
            // The last block's context modulation is (shift, scale) only, stored the other way round.
            return (.single("\(block)\(isContext ? "norm1_context" : "norm1").linear.\(parameter)"), isContext && index == layerCount - 1)
        case "mlp.fc1": return (.single("\(block)\(isContext ? "ff_context" : "ff").net.0.proj.\(parameter)"), false)
        case "mlp.fc2": return (.single("\(block)\(isContext ? "ff_context" : "ff").net.2.\(parameter)"), false)
        default: return nil
        }
    }
}

extension SD3OriginalKeyNames {
    /// The prefix of the VAE's keys (Stability's original names) in a whole-pipeline file.
    public static let vaePrefix = "first_stage_model."
    static let clipLPrefix = "text_encoders.clip_l.transformer."
    static let clipGPrefix = "text_encoders.clip_g.transformer."
    static let t5Prefix = "text_encoders.t5xxl.transformer."

    /// The file's VAE (`first_stage_model.*`) under diffusers' names.
    public static func vae(_ file: TensorSource) -> TensorSource {
        let keys = file.names.filter { $0.hasPrefix(vaePrefix) }.map { String($0.dropFirst(vaePrefix.count)) }
        return RenamedTensorSource(
            base: file, mapping: OriginalKeyNames.vae(keys).mapValues { (stored: vaePrefix + $0.stored, transform: $0.transform) },
            origin: file.origin)
    }

    /// The file's CLIP-L (`text_encoders.clip_l.transformer.*`, already in transformers' names),
    /// or nil when it carries none. Its pooled output is used unprojected: diffusers presents
    /// `text_projection.weight` as the identity for it, whatever the file holds.
    public static func clipL(_ file: TensorSource) throws -> TensorSource? {
        guard let source = stripped(file, prefix: clipLPrefix) else { return nil }
        let positions = clipLPrefix + "text_model.embeddings.position_embedding.weight"
        guard let width = file.shape(of: positions)?.last else {
            throw WeightError.missing(origin: file.origin, name: positions, expected: nil)
        }
        var identity = [Float](repeating: 0, count: width * width)
        for index in 0..<width { identity[index * width + index] = 1 }
        return AddedTensorsSource(base: source, added: ["text_projection.weight": HostTensor(shape: [width, width], scalars: identity)])
    }

    /// The file's CLIP-G (`text_encoders.clip_g.transformer.*`, transformers' names, with its
    /// projection), or nil when it carries none.
    public static func clipG(_ file: TensorSource) -> TensorSource? { stripped(file, prefix: clipGPrefix) }

    /// The file's T5 encoder (`text_encoders.t5xxl.transformer.*`, transformers' names), or nil
    /// when it carries none (diffusers looks for `shared.weight`).
    public static func t5(_ file: TensorSource) -> TensorSource? {
        file.shape(of: t5Prefix + "shared.weight") == nil ? nil : stripped(file, prefix: t5Prefix)
    }

    private static func stripped(_ file: TensorSource, prefix: String) -> TensorSource? {
        let keys = file.names.filter { $0.hasPrefix(prefix) }
        guard !keys.isEmpty else { return nil }
        var mapping: OriginalKeyNames.Mapping = [:]
        for key in keys { mapping[String(key.dropFirst(prefix.count))] = (key, .identity) }
        return RenamedTensorSource(base: file, mapping: mapping, origin: file.origin)
    }
}

/// A tensor source with a few tensors added (or replaced) in memory.
public struct AddedTensorsSource: TensorSource {
    public let base: TensorSource
    public let added: [String: HostTensor]

    public init(base: TensorSource, added: [String: HostTensor]) {
        self.base = base
        self.added = added
    }

    public var names: [String] { Array(Set(base.names).union(added.keys)).sorted() }
    public var origin: String { base.origin }
    public func shape(of name: String) -> Shape? { added[name]?.shape ?? base.shape(of: name) }
    public func load(_ name: String) throws -> HostTensor { try added[name] ?? base.load(name) }
}
