import KilnGraph

/// Where one module's weight change lands: a weight of a component under the key names Kiln's
/// model code reads, optionally only some rows of the change (a fused q/k/v change split in
/// three, as diffusers splits it), with its two halves swapped where the checkpoint's are.
public struct LoRAPlacement: Sendable, Equatable {
    /// The weight's key (`down_blocks.0.attentions.0.proj_in.weight`).
    public let key: String
    /// Rows of the module's change that go to this weight; nil: all of it.
    public let rows: Range<Int>?
    public let swapsHalves: Bool

    public init(key: String, rows: Range<Int>? = nil, swapsHalves: Bool = false) {
        self.key = key
        self.rows = rows
        self.swapsHalves = swapsHalves
    }
}

/// One model component LoRA modules may change (a U-Net, a transformer, a text encoder): its
/// weights and the names trainers give its modules.
///
/// - Kohya names: a prefix (`lora_unet_`, `lora_te1_`) and the module path with `.` written `_`,
///   in Kiln's (diffusers' / transformers') names, looked up exactly; or in the original
///   checkpoint's names (SDXL's `input_blocks_4_1_...`, FLUX's `double_blocks_0_img_attn_qkv`,
///   SD3's `joint_blocks_0_x_block_attn_qkv`), read back through the checkpoint's own key mapping.
/// - Diffusers / PEFT names: a prefix (`unet.`, `transformer.`, `text_encoder_2.`) and the dotted path.
/// - Original dotted names (Black Forest Labs' and ComfyUI's `diffusion_model.double_blocks.0...`).
public struct LoRAComponent: Sendable {
    /// How a component's original checkpoint names its modules, for files written in them.
    public struct OriginalNames: Sendable {
        /// Dotted-name prefixes (`diffusion_model.`); `""` accepts bare names whose first part is in `roots`.
        public let prefixes: [String]
        public let roots: Set<String>
        /// Underscored words of the original names (`input_blocks`, `img_attn`), so an
        /// underscored kohya name can be read back as a dotted path.
        public let compounds: Set<String>
        /// Each original weight key (with the change's shape) -> where its change lands.
        public let place: @Sendable ([String: Shape]) throws -> [String: [LoRAPlacement]]
    }

    /// `unet`, `transformer`, `text_encoder`, ...: the label of the component's resident weights.
    public let label: String
    public let weights: TensorSource
    public let kohyaPrefixes: [String]
    public let diffusersPrefixes: [String]
    public let original: OriginalNames?
    /// Whether diffusers-style names without any prefix belong here (the denoiser's).
    public let takesBareNames: Bool

    public init(
        label: String, weights: TensorSource, kohyaPrefixes: [String], diffusersPrefixes: [String], original: OriginalNames? = nil,
        takesBareNames: Bool = false
    ) {
        self.label = label
        self.weights = weights
        self.kohyaPrefixes = kohyaPrefixes
        self.diffusersPrefixes = diffusersPrefixes
        self.original = original
        self.takesBareNames = takesBareNames
    }

    /// Module paths (weight keys without `.weight`) of every weight with a change LoRA can name.
    var modulePaths: Set<String> {
        Set(weights.names.filter { $0.hasSuffix(".weight") }.map { String($0.dropLast(".weight".count)) })
    }

    // MARK: Families

    /// A Stable Diffusion U-Net (diffusers' names); kohya's SDXL files name it as the original
    /// (`input_blocks`, `middle_block`, `output_blocks`).
    public static func unet(_ component: ModelComponent<UNetConfiguration>, label: String = "unet") -> LoRAComponent {
        let configuration = component.configuration
        return LoRAComponent(
            label: label, weights: component.weights, kohyaPrefixes: ["lora_unet_"], diffusersPrefixes: ["unet."],
            original: OriginalNames(
                prefixes: ["model.diffusion_model.", "diffusion_model."], roots: [],
                compounds: ["input_blocks", "middle_block", "output_blocks", "time_embed", "label_emb", "in_layers", "emb_layers",
                            "out_layers", "skip_connection", "transformer_blocks", "proj_in", "proj_out", "to_q", "to_k", "to_v", "to_out"],
                place: { shapes in
                    let mapping = OriginalKeyNames.unet(Array(shapes.keys), configuration: configuration)
                    return Dictionary(grouping: mapping.map { ($0.value.stored, LoRAPlacement(key: $0.key)) }, by: \.0).mapValues { $0.map(\.1) }
                }),
            takesBareNames: true)
    }

    /// A CLIP or T5 text encoder (transformers' names).
    public static func textEncoder(label: String, weights: TensorSource, kohyaPrefixes: [String]) -> LoRAComponent {
        LoRAComponent(label: label, weights: weights, kohyaPrefixes: kohyaPrefixes, diffusersPrefixes: [label + "."])
    }

    /// SD3's MMDiT (diffusers' names); kohya's SD3 files use Stability's (`joint_blocks_0_x_block_attn_qkv`).
    public static func sd3Transformer(weights: TensorSource) -> LoRAComponent {
        let layers = Self.blockCount(weights, "transformer_blocks.")
        let width = weights.shape(of: "pos_embed.proj.weight") ?? [1, 1, 1, 1]
        return LoRAComponent(
            label: "transformer", weights: weights, kohyaPrefixes: ["lora_unet_", "lora_transformer_"], diffusersPrefixes: ["transformer."],
            original: OriginalNames(
                prefixes: ["model.diffusion_model.", "diffusion_model."], roots: [],
                compounds: ["joint_blocks", "x_block", "context_block", "adaLN_modulation", "x_embedder", "t_embedder", "y_embedder",
                            "context_embedder", "final_layer", "pos_embed"],
                place: { shapes in
                    // The embedder's weight tells the mapping this is an SD3 transformer; the last
                    // block's, which block's context modulation is stored the other way round.
                    var all = shapes
                    all["x_embedder.proj.weight"] = all["x_embedder.proj.weight"] ?? width
                    all["joint_blocks.\(layers - 1).context_block.adaLN_modulation.1.weight"] = all["joint_blocks.\(layers - 1).context_block.adaLN_modulation.1.weight"] ?? [1, 1]
                    return Self.placements(of: try SD3OriginalKeyNames.transformer(ShapeOnlyTensors(all)), storedIn: Set(shapes.keys))
                }))
    }

    /// FLUX.1's transformer (diffusers' names); kohya's and Black Forest Labs' files use BFL's
    /// (`double_blocks`, `single_blocks`, fused `qkv` and `linear1`), XLabs' their processors'.
    public static func fluxTransformer(weights: TensorSource) -> LoRAComponent {
        let embedder = weights.shape(of: "x_embedder.weight") ?? [1, 1]
        let width = embedder[0]
        let singleBlocks = Self.blockCount(weights, "single_transformer_blocks.")
        let mlpWidth = weights.shape(of: "single_transformer_blocks.0.proj_mlp.weight")?[0] ?? 0
        return LoRAComponent(
            label: "transformer", weights: weights, kohyaPrefixes: ["lora_unet_", "lora_transformer_"], diffusersPrefixes: ["transformer."],
            original: OriginalNames(
                prefixes: ["model.diffusion_model.", "diffusion_model.", ""], roots: ["double_blocks", "single_blocks"],
                compounds: ["double_blocks", "single_blocks", "img_attn", "txt_attn", "img_mlp", "txt_mlp", "img_mod", "txt_mod", "img_in",
                            "txt_in", "time_in", "vector_in", "guidance_in", "final_layer", "in_layer", "out_layer", "query_norm", "key_norm",
                            "adaLN_modulation"],
                place: { shapes in
                    var placements = Self.xlabsPlacements(Array(shapes.keys), width: width)
                    var all = shapes.filter { placements[$0.key] == nil }
                    if all.isEmpty { return placements }
                    // The split of fused weights needs the model width and each single block's linear1.
                    all["img_in.weight"] = embedder
                    for index in 0..<singleBlocks { all["single_blocks.\(index).linear1.weight"] = all["single_blocks.\(index).linear1.weight"] ?? [3 * width + mlpWidth, width] }
                    placements.merge(Self.placements(of: try FluxOriginalKeyNames.transformer(ShapeOnlyTensors(all)), storedIn: Set(shapes.keys))) { $1 }
                    return placements
                }),
            takesBareNames: true)
    }

    // MARK: Helpers

    /// XLabs' FLUX processors: a double block's `qkv_lora1` / `proj_lora1` (image stream) and
    /// `qkv_lora2` / `proj_lora2` (text stream), a single block's `qkv_lora` / `proj_lora`; q/k/v
    /// changes split in three as diffusers' XLabs converter splits them.
    static func xlabsPlacements(_ keys: [String], width: Int) -> [String: [LoRAPlacement]] {
        var placements: [String: [LoRAPlacement]] = [:]
        for key in keys where key.contains(".processor.") {
            let parts = key.split(separator: ".").map(String.init)
            guard parts.count == 5, let index = Int(parts[1]) else { continue }
            func split(_ names: [String]) -> [LoRAPlacement] {
                names.enumerated().map { LoRAPlacement(key: $1 + ".weight", rows: ($0 * width)..<(($0 + 1) * width)) }
            }
            let double = "transformer_blocks.\(index).attn.", single = "single_transformer_blocks.\(index)."
            switch (parts[0], parts[3]) {
            case ("double_blocks", "qkv_lora1"): placements[key] = split(["to_q", "to_k", "to_v"].map { double + $0 })
            case ("double_blocks", "qkv_lora2"): placements[key] = split(["add_q_proj", "add_k_proj", "add_v_proj"].map { double + $0 })
            case ("double_blocks", "proj_lora1"): placements[key] = [LoRAPlacement(key: double + "to_out.0.weight")]
            case ("double_blocks", "proj_lora2"): placements[key] = [LoRAPlacement(key: double + "to_add_out.weight")]
            case ("single_blocks", "qkv_lora"): placements[key] = split(["to_q", "to_k", "to_v"].map { single + "attn." + $0 })
            case ("single_blocks", "proj_lora"): placements[key] = [LoRAPlacement(key: single + "proj_out.weight")]
            default: continue
            }
        }
        return placements
    }

    /// Where each of `stored`'s weights lands in a renamed view of them (`RenamedTensorSource`,
    /// possibly inside a `HalvesSwappedTensorSource`).
    static func placements(of presented: TensorSource, storedIn stored: Set<String>) -> [String: [LoRAPlacement]] {
        var source = presented, swapped: Set<String> = []
        if let halves = source as? HalvesSwappedTensorSource {
            swapped = halves.swapped
            source = halves.base
        }
        guard let renamed = source as? RenamedTensorSource else { return [:] }
        var placements: [String: [LoRAPlacement]] = [:]
        for (key, entry) in renamed.mapping where stored.contains(entry.stored) {
            var rows: Range<Int>?
            if case .rows(let start, let count) = entry.transform { rows = start..<(start + count) }
            placements[entry.stored, default: []].append(LoRAPlacement(key: key, rows: rows, swapsHalves: swapped.contains(key)))
        }
        return placements.mapValues { $0.sorted { ($0.rows?.lowerBound ?? 0, $0.key) < ($1.rows?.lowerBound ?? 0, $1.key) } }
    }

    /// One past the highest `N` of keys `<prefix>N.*`.
    static func blockCount(_ weights: TensorSource, _ prefix: String) -> Int {
        (weights.names.compactMap { name -> Int? in
            guard name.hasPrefix(prefix) else { return nil }
            return Int(name.dropFirst(prefix.count).prefix { $0 != "." })
        }.max() ?? -1) + 1
    }
}

/// Shapes without values: what key mappings read to lay out a renamed view.
struct ShapeOnlyTensors: TensorSource {
    let shapes: [String: Shape]
    init(_ shapes: [String: Shape]) { self.shapes = shapes }
    var origin: String { "LoRA module shapes" }
    var names: [String] { shapes.keys.sorted() }
    func shape(of name: String) -> Shape? { shapes[name] }
    func load(_ name: String) throws -> HostTensor { throw WeightError.missing(origin: origin, name: name, expected: shapes[name]) }
}
