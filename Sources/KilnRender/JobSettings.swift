import Foundation

/// The settings of one render job as a manifest writes them, under AUTOMATIC1111's API names
/// where one exists. Every field is optional: what a job leaves out takes the model's defaults
/// when it is rendered (and a seed derived from the job's id, see `RenderJob.seed`).
public struct JobSettings: Sendable, Equatable, Codable {
    public var prompt: String?
    public var negativePrompt: String?
    /// Class-conditional models (DiT): the image's class.
    public var classLabel: Int?
    public var seed: UInt64?
    public var steps: Int?
    public var cfgScale: Float?
    /// Kiln's sampler names (`euler_a`, `dpm++2m`, ...).
    public var sampler: String?
    /// `default`, `karras` or `exponential`.
    public var scheduler: String?
    public var width: Int?
    public var height: Int?
    /// Paths relative to the manifest.
    public var initImage: String?
    public var mask: String?
    public var strength: Float?
    public var batchCount: Int?
    /// A model path relative to the manifest; nil uses the command's `--model`.
    public var model: String?
    /// LoRAs merged for the job, in order: `[{"path": "loras/ink.safetensors", "weight": 0.8}]`,
    /// paths relative to the manifest, weight 1 when left out.
    public var loras: [LoRA]?

    /// One entry of `loras`.
    public struct LoRA: Sendable, Equatable, Codable {
        public var path: String
        public var weight: Float?

        public init(path: String, weight: Float? = nil) {
            self.path = path
            self.weight = weight
        }
    }

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case prompt, seed, steps, sampler, scheduler, width, height, mask, strength, model, loras
        case negativePrompt = "negative_prompt"
        case classLabel = "class_label"
        case cfgScale = "cfg_scale"
        case initImage = "init_image"
        case batchCount = "batch_count"
    }

    /// The manifest's field names, in the order they are documented.
    public static let fieldNames = ["id"] + CodingKeys.allCases.map(\.rawValue)

    /// Images the job makes.
    public var imageCount: Int { batchCount ?? 1 }

    /// The settings as canonical JSON: sorted keys, only the fields that are set, floats as
    /// their shortest decimal, so equal settings hash equally whatever order a manifest wrote.
    public func canonicalJSON() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
