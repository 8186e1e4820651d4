import Foundation
import KilnGraph

/// A LoRA (or LoCon, LoHa, LoKr) `.safetensors` file read as its modules: each module's factor
/// tensors and alpha, grouped by module name, whichever trainer wrote it.
///
/// - kohya-ss / LyCORIS: `<module>.lora_down.weight`, `.lora_up.weight`, `.lora_mid.weight`,
///   `.alpha`, `.hada_w1_a` ..., `.lokr_w1` ... with module names such as
///   `lora_unet_down_blocks_0_attentions_0_proj_in` or `lora_te1_text_model_encoder_layers_0_mlp_fc1`.
/// - diffusers / PEFT: `<module>.lora_A.weight` and `.lora_B.weight` (or `.lora.down.weight` and
///   `.lora.up.weight`) with module names such as `unet.down_blocks.0.attentions.0.proj_in`;
///   alphas, `rank_pattern`, `alpha_pattern` and `use_rslora` from the `lora_adapter_metadata`
///   JSON in the safetensors header, per component prefix (`unet.lora_alpha`). Without metadata
///   a module's alpha is its rank (scale 1), unless the file has `.alpha` tensors.
/// - XLabs FLUX: `<module>.down.weight` and `.up.weight` (`double_blocks.0.processor.qkv_lora1`).
///
/// Memory-mapped; factors are read when a module's change is computed.
public struct LoRAFile: Sendable {
    public let url: URL
    public let tensors: SafeTensorsSource
    public let modules: [LoRAModule]

    /// The metadata key diffusers' `save_lora_weights` writes the adapters' configurations under.
    public static let adapterMetadataKey = "lora_adapter_metadata"

    public init(url: URL) throws {
        self.url = url
        let source: SafeTensorsSource
        do {
            source = try SafeTensorsSource(files: [url])
        } catch {
            throw LoRAError.unreadable(file: url.path, "\(error)")
        }
        tensors = source
        let metadata = try Self.adapterMetadata(source.files.first?.metadata ?? [:], file: url.path)
        modules = try Self.modules(of: source.names, file: url.path, metadata: metadata, alphaOf: { key in
            try source.load(key).scalars.first
        })
    }

    /// The file's name without `.safetensors`, as A1111 names a LoRA in prompts and metadata.
    public var name: String { url.deletingPathExtension().lastPathComponent }

    /// A1111's LoRA hash (its "addnet" hash): SHA-256 of the file after the safetensors header,
    /// so metadata edits do not change it. `Lora hashes` shows the first 12 hex digits.
    public func addnetHash() throws -> String {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        guard let sizeBytes = try handle.read(upToCount: 8), sizeBytes.count == 8 else {
            throw LoRAError.unreadable(file: url.path, "shorter than a safetensors header")
        }
        let headerLength = sizeBytes.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        try handle.seek(toOffset: 8 + headerLength)
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(Array(chunk)) }
        return hasher.finalizeHex()
    }

    // MARK: Grouping

    /// Factor suffixes by the part they fill, longest first so `.lora_up.weight` wins over `.up.weight`.
    static let suffixes: [(suffix: String, part: String)] = [
        (".lora_down.weight", "down"), (".lora_up.weight", "up"), (".lora_mid.weight", "mid"),
        (".lora_A.weight", "down"), (".lora_B.weight", "up"),
        (".lora.down.weight", "down"), (".lora.up.weight", "up"),
        (".lora_linear_layer.down.weight", "down"), (".lora_linear_layer.up.weight", "up"),
        (".hada_w1_a", "hada_w1_a"), (".hada_w1_b", "hada_w1_b"), (".hada_w2_a", "hada_w2_a"), (".hada_w2_b", "hada_w2_b"),
        (".lokr_w1_a", "lokr_w1_a"), (".lokr_w1_b", "lokr_w1_b"), (".lokr_w2_a", "lokr_w2_a"), (".lokr_w2_b", "lokr_w2_b"),
        (".lokr_w1", "lokr_w1"), (".lokr_w2", "lokr_w2"),
        (".down.weight", "down"), (".up.weight", "up"),
        (".alpha", "alpha"),
    ]

    /// The modules of a file with tensor keys `keys`; `alphaOf` reads an `.alpha` tensor.
    static func modules(
        of keys: [String], file: String, metadata: [String: AdapterConfiguration], alphaOf: (String) throws -> Float?
    ) throws -> [LoRAModule] {
        var parts: [String: [String: String]] = [:]
        var unsupported: [String] = []
        for key in keys {
            guard let (suffix, part) = suffixes.first(where: { key.hasSuffix($0.suffix) }) else {
                unsupported.append(key)
                continue
            }
            parts[String(key.dropLast(suffix.count)), default: [:]][part] = key
        }
        var modules: [LoRAModule] = []
        for (name, found) in parts.sorted(by: { $0.key < $1.key }) {
            let factors: LoRAModule.Factors
            if let up = found["up"], let down = found["down"] {
                factors = .lowRank(up: up, down: down, mid: found["mid"])
            } else if let w1a = found["hada_w1_a"], let w1b = found["hada_w1_b"], let w2a = found["hada_w2_a"], let w2b = found["hada_w2_b"] {
                factors = .hadamard(w1a: w1a, w1b: w1b, w2a: w2a, w2b: w2b)
            } else if let w1 = Self.kroneckerFactor(found, "lokr_w1"), let w2 = Self.kroneckerFactor(found, "lokr_w2") {
                factors = .kronecker(w1: w1, w2: w2)
            } else {
                unsupported += found.values.sorted()
                continue
            }
            let configuration = metadata.first { name.hasPrefix($0.key + ".") }
            let alpha = try found["alpha"].flatMap(alphaOf)
                ?? configuration.map { $0.value.alpha(forModule: String(name.dropFirst($0.key.count + 1))) }
            modules.append(LoRAModule(name: name, factors: factors, alpha: alpha, rankStabilized: configuration?.value.rankStabilized ?? false))
        }
        if !unsupported.isEmpty { throw LoRAError.unsupportedKeys(file: file, keys: unsupported.sorted()) }
        return modules
    }

    private static func kroneckerFactor(_ found: [String: String], _ name: String) -> LoRAModule.KroneckerFactor? {
        if let whole = found[name] { return .whole(whole) }
        if let a = found[name + "_a"], let b = found[name + "_b"] { return .factored(a: a, b: b) }
        return nil
    }

    // MARK: PEFT metadata

    /// One component's PEFT `LoraConfig` as far as scaling goes.
    struct AdapterConfiguration: Equatable {
        var alpha: Float
        /// Module-name patterns (regular expressions matched at the end of a dotted module path,
        /// as PEFT's `get_pattern_key`) with their alphas, in the order PEFT tries them.
        var alphaPattern: [(pattern: String, alpha: Float)]
        var rankStabilized: Bool

        static func == (lhs: Self, rhs: Self) -> Bool {
            lhs.alpha == rhs.alpha && lhs.rankStabilized == rhs.rankStabilized
                && lhs.alphaPattern.map(\.pattern) == rhs.alphaPattern.map(\.pattern) && lhs.alphaPattern.map(\.alpha) == rhs.alphaPattern.map(\.alpha)
        }

        /// The alpha of `module` (its path inside the component).
        func alpha(forModule module: String) -> Float {
            for (pattern, alpha) in alphaPattern where module.range(of: "^(.*\\.)?(\(pattern))$", options: .regularExpression) != nil {
                return alpha
            }
            return alpha
        }
    }

    /// `lora_adapter_metadata` split by component prefix: `{"unet.lora_alpha": 8, ...}`.
    static func adapterMetadata(_ header: [String: String], file: String) throws -> [String: AdapterConfiguration] {
        guard let text = header[adapterMetadataKey] else { return [:] }
        let parsed: Any
        do {
            parsed = try ExactJSONParser.parse(Array(text.utf8))
        } catch {
            throw LoRAError.unreadable(file: file, "\(adapterMetadataKey) is not JSON: \(error)")
        }
        guard let object = parsed as? [String: Any] else { throw LoRAError.unreadable(file: file, "\(adapterMetadataKey) is not a JSON object") }
        func number(_ value: Any?) -> Float? { (value as? JSONNumber)?.double.map(Float.init) }
        var configurations: [String: AdapterConfiguration] = [:]
        for key in object.keys where key.hasSuffix(".lora_alpha") || key.hasSuffix(".r") {
            let prefix = String(key[..<(key.lastIndex(of: ".") ?? key.endIndex)])
            if configurations[prefix] != nil { continue }
            guard let alpha = number(object[prefix + ".lora_alpha"]) ?? number(object[prefix + ".r"]) else { continue }
            let patterns = (object[prefix + ".alpha_pattern"] as? [String: Any]) ?? [:]
            configurations[prefix] = AdapterConfiguration(
                alpha: alpha,
                // json.dumps(sort_keys=True) wrote them sorted, the order PEFT then tries them in.
                alphaPattern: patterns.keys.sorted().compactMap { pattern in number(patterns[pattern]).map { (pattern, $0) } },
                rankStabilized: (object[prefix + ".use_rslora"] as? Bool) ?? false)
        }
        return configurations
    }
}
