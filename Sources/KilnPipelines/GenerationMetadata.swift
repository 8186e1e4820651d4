import Foundation

/// Kiln's release, written into every image it makes.
public enum KilnVersion {
    public static let string = "0.4.0"
}

/// What made one image, as stored in its PNG: every setting needed to make it again, plus where
/// it was made. Encodes to the `kiln` chunk's JSON and to the A1111 `parameters` text that
/// image browsers and web UIs read.
public struct GenerationMetadata: Codable, Sendable, Equatable {
    public var prompt: String
    public var negativePrompt: String?
    public var mode: String
    public var width: Int
    public var height: Int
    public var steps: Int
    public var cfgScale: Float
    public var guidanceRescale: Float
    /// `--sampler` name, or the scheduler class the model's config names.
    public var sampler: String
    /// `--scheduler`: default, karras or exponential.
    public var scheduler: String
    public var seed: UInt64
    public var rng: String
    public var batchCount: Int
    /// This image's position in its batch (0-based).
    public var batchIndex: Int
    public var strength: Float?
    public var model: String
    public var modelSHA256: String?
    public var backend: String
    public var dtype: String
    public var device: String
    public var driver: String?
    public var kilnVersion: String
    /// Class-conditional models (DiT): this image's class label; nil for prompted models.
    public var classLabel: Int?
    /// The LoRAs merged into the weights, with their weights and hashes; nil without any.
    public var loras: [AppliedLoRA]?
    /// `a1111` when the prompt was read with AUTOMATIC1111's syntax; nil for literal prompts.
    public var promptSyntax: String?
    /// The tiny autoencoder (TAESD file or folder name) that decoded the image instead of the
    /// VAE; nil for the VAE's decode.
    public var tinyAutoencoder: String?

    public init(
        prompt: String, negativePrompt: String?, mode: String, width: Int, height: Int, steps: Int, cfgScale: Float,
        guidanceRescale: Float, sampler: String, scheduler: String, seed: UInt64, rng: String, batchCount: Int,
        batchIndex: Int, strength: Float?, model: String, modelSHA256: String?, backend: String, dtype: String,
        device: String, driver: String?, kilnVersion: String = KilnVersion.string
    ) {
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.mode = mode
        self.width = width
        self.height = height
        self.steps = steps
        self.cfgScale = cfgScale
        self.guidanceRescale = guidanceRescale
        self.sampler = sampler
        self.scheduler = scheduler
        self.seed = seed
        self.rng = rng
        self.batchCount = batchCount
        self.batchIndex = batchIndex
        self.strength = strength
        self.model = model
        self.modelSHA256 = modelSHA256
        self.backend = backend
        self.dtype = dtype
        self.device = device
        self.driver = driver
        self.kilnVersion = kilnVersion
    }

    enum CodingKeys: String, CodingKey {
        case prompt, mode, width, height, steps, sampler, scheduler, seed, rng, strength, model, backend, dtype, device, driver
        case negativePrompt = "negative_prompt"
        case cfgScale = "cfg_scale"
        case guidanceRescale = "guidance_rescale"
        case batchCount = "batch_count"
        case batchIndex = "batch_index"
        case modelSHA256 = "model_sha256"
        case kilnVersion = "kiln_version"
        case classLabel = "class_label"
        case loras
        case promptSyntax = "prompt_syntax"
        case tinyAutoencoder = "taesd"
    }

    /// The JSON of the `kiln` chunk: sorted keys, so equal settings give equal bytes.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// AUTOMATIC1111's `parameters` text: the prompt, `Negative prompt: ...`, then one line of
    /// `Key: value` pairs.
    public var a1111Parameters: String {
        var lines = [promptWithLoRATags]
        if let negativePrompt, !negativePrompt.isEmpty { lines.append("Negative prompt: \(negativePrompt)") }
        var pairs: [(String, String)] = [
            ("Steps", "\(steps)"), ("Sampler", Self.a1111SamplerName(sampler)),
        ]
        if let classLabel { pairs.insert(("Class label", "\(classLabel)"), at: 0) }
        if scheduler != "default" { pairs.append(("Schedule type", scheduler.capitalized)) }
        pairs += [("CFG scale", Self.number(cfgScale)), ("Seed", "\(seed)"), ("Size", "\(width)x\(height)")]
        if let modelSHA256 { pairs.append(("Model hash", String(modelSHA256.prefix(10)))) }
        pairs.append(("Model", model))
        if let strength, mode != "txt2img" { pairs.append(("Denoising strength", Self.number(strength))) }
        if guidanceRescale > 0 { pairs.append(("CFG rescale", Self.number(guidanceRescale))) }
        if batchCount > 1 { pairs += [("Batch size", "\(batchCount)"), ("Batch pos", "\(batchIndex)")] }
        if let loras, !loras.isEmpty {
            pairs.append(("Lora hashes", loras.map { "\($0.name): \($0.sha256.prefix(12))" }.joined(separator: ", ")))
        }
        pairs.append(("RNG", rng))
        pairs.append(("Version", "kiln \(kilnVersion)"))
        lines.append(pairs.map { "\($0): \(Self.quotedIfNeeded($1))" }.joined(separator: ", "))
        return lines.joined(separator: "\n")
    }

    /// The prompt with a `<lora:name:weight>` tag for each LoRA it does not name already, so
    /// A1111 (and the sites that read its parameters) apply the same LoRAs.
    var promptWithLoRATags: String {
        let missing = (loras ?? []).filter { !prompt.contains("<lora:\($0.name):") && !prompt.contains("<lora:\($0.name)>") }
        let tags = missing.map { lora in
            "<lora:\(lora.name):\(lora.textEncoderWeight.map { "\(Self.number($0)):" } ?? "")\(Self.number(lora.weight))>"
        }
        return ([prompt] + tags).filter { !$0.isEmpty }.joined(separator: " ")
    }

    /// The names A1111 shows for the samplers Kiln shares with it.
    static func a1111SamplerName(_ sampler: String) -> String {
        [
            "euler": "Euler", "euler_a": "Euler a", "heun": "Heun", "dpm++2m": "DPM++ 2M", "ddim": "DDIM",
            "pndm": "PLMS", "lcm": "LCM", "ddpm": "DDPM", "flow_euler": "Euler (flow matching)",
        ][sampler] ?? sampler
    }

    /// `7.5` -> "7.5", `7` -> "7", as A1111 prints its floats.
    static func number(_ value: Float) -> String {
        value == value.rounded() && abs(value) < 1e7 ? String(Int(value)) : String(value)
    }

    /// A1111 quotes a value holding a comma, colon or quote so its parser keeps it whole.
    static func quotedIfNeeded(_ value: String) -> String {
        guard value.contains(where: { $0 == "," || $0 == ":" || $0 == "\"" || $0 == "\n" }) else { return value }
        let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
        return "\"\(escaped)\""
    }
}

extension GenerationMetadata {
    /// Where an image was made, as front ends know it.
    public struct Origin: Sendable, Equatable {
        /// The model's name (its folder or file name) and the SHA-256 of its weights, if known.
        public var model: String
        public var modelSHA256: String?
        /// `vulkan` or `cpu`, the device's name and its driver.
        public var backend: String
        public var device: String
        public var driver: String?

        public init(model: String, modelSHA256: String?, backend: String, device: String, driver: String?) {
            self.model = model
            self.modelSHA256 = modelSHA256
            self.backend = backend
            self.device = device
            self.driver = driver
        }
    }

    /// What made image `index` of `result` on `pipeline`: the request as it ran, the sampler it
    /// used and where.
    public init(result: GenerationResult, index: Int, pipeline: any DiffusionPipeline, origin: Origin) {
        let request = result.request
        let labels = request.classLabels?.flatMap { Array(repeating: $0, count: request.batchCount) }
        self.init(
            prompt: request.prompt ?? "", negativePrompt: request.negativePrompt, mode: labels == nil ? request.mode.name : "class2img",
            width: request.width, height: request.height, steps: request.steps, cfgScale: request.guidanceScale,
            guidanceRescale: request.options.guidanceRescale, sampler: pipeline.samplerName(for: request),
            scheduler: request.sigmaSpacing?.rawValue ?? "default", seed: result.seeds.indices.contains(index) ? result.seeds[index] : request.seed,
            rng: "torch", batchCount: result.imageCount, batchIndex: index,
            strength: request.mode == .textToImage ? nil : request.mode.strength, model: origin.model, modelSHA256: origin.modelSHA256,
            backend: origin.backend, dtype: pipeline.dtype.shortName, device: origin.device, driver: origin.driver)
        classLabel = labels.flatMap { $0.indices.contains(index) ? $0[index] : nil }
        loras = result.loras.isEmpty ? nil : result.loras
        promptSyntax = request.options.promptSyntax == .literal ? nil : request.options.promptSyntax.rawValue
        tinyAutoencoder = result.tinyAutoencoder
    }
}
