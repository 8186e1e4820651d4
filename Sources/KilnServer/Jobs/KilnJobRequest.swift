import Foundation
import Kiln

/// `POST /kiln/v1/jobs`: a `GenerationRequest` as JSON, with `kiln generate`'s option names in
/// snake case; anything left out takes the model's default, as `kiln generate` does.
///
/// ```json
/// {"prompt": "a lighthouse", "negative_prompt": "blurry", "width": 512, "height": 512, "steps": 25,
///  "guidance_scale": 7.5, "sampler": "dpm++2m", "scheduler": "karras", "seed": 42, "batch_count": 1}
/// ```
/// Also: `class_labels` (DiT), `init_image` and `mask` (base64 PNG), `strength`,
/// `max_sequence_length`, `without_t5`, `guidance_rescale`, `model` (a catalogued model's name).
enum KilnJobRequest {
    static func parse(_ body: JSONValue, model: ModelSummary, catalog: ModelCatalog, configuration: ServerConfiguration) throws -> GenerationPlan {
        let fields = try FieldReader(body)
        let limit = A1111GenerationRequest.Limits.promptCharacters
        let conditioning: GenerationRequest.Conditioning
        if let labels = try fields.array("class_labels") {
            if fields.has("prompt") { throw APIError.invalid("class_labels", "give prompt or class_labels, not both") }
            conditioning = .classLabels(try labels.enumerated().map { index, value in
                guard case .number(let number) = value, number == number.rounded(), (0...1_000_000).contains(number) else {
                    throw APIError.invalid("class_labels[\(index)]", "must be a non-negative integer")
                }
                return Int(number)
            })
        } else if let prompt = try fields.string("prompt") {
            if prompt.count > limit { throw APIError.invalid("prompt", "\(prompt.count) characters; at most \(limit)") }
            let negative = try fields.text("negative_prompt", default: "", maximumLength: limit)
            conditioning = .prompt(prompt, negative: fields.has("negative_prompt") ? negative : nil)
        } else {
            throw APIError.invalid(model.defaults.takesClassLabels ? "class_labels" : "prompt", "is required")
        }
        let seed = try fields.integer("seed").map { value -> UInt64 in
            guard value >= 0 else { throw APIError.invalid("seed", "\(value) must be at least 0 (leave it out for a random seed)") }
            return UInt64(value)
        } ?? UInt64.random(in: 0...UInt64(UInt32.max))
        var request = model.defaults.request(conditioning, seed: seed)

        if let imageText = try fields.string("init_image") {
            let image = try Base64Image.png(imageText, field: "init_image", maximumSide: configuration.maximumSide)
            let tensor = try InputImages.initImage(image)
            request.width = image.width
            request.height = image.height
            let strength = try fields.number("strength").map { Float($0) }
            if let maskText = try fields.string("mask") {
                let mask = try Base64Image.png(maskText, field: "mask", maximumSide: configuration.maximumSide)
                request.mode = model.defaults.inpainting(tensor, mask: try InputImages.mask(mask), strength: strength)
            } else {
                request.mode = model.defaults.imageToImage(tensor, strength: strength)
            }
        } else {
            for key in ["mask", "strength"] where fields.has(key) { throw APIError.invalid(key, "needs init_image") }
        }
        request.width = try fields.integer("width", default: request.width, in: 1...configuration.maximumSide)
        request.height = try fields.integer("height", default: request.height, in: 1...configuration.maximumSide)
        request.steps = try fields.integer("steps", default: request.steps, in: 1...GenerationRequest.Limits.steps)
        request.guidanceScale = Float(try fields.number("guidance_scale", default: Double(request.guidanceScale), in: 0...100))
        if let sampler = try fields.string("sampler") {
            if let kiln = SamplerName(rawValue: sampler.lowercased()) {
                request.sampler = kiln
            } else if let a1111 = A1111Samplers.findSampler(sampler) {
                request.sampler = a1111.kiln
            } else {
                throw APIError.invalid("sampler", "unknown sampler '\(sampler)'; Kiln's: \(SamplerName.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        if let scheduler = try fields.string("scheduler") {
            guard let spacing = SigmaSpacing(rawValue: scheduler.lowercased()) else {
                throw APIError.invalid("scheduler", "unknown sigma spacing '\(scheduler)'; default, karras or exponential")
            }
            request.sigmaSpacing = spacing
        }
        request.batchCount = try fields.integer("batch_count", default: 1, in: 1...configuration.maximumBatchSize)
        request.options = GenerationRequest.Options(
            maxSequenceLength: try fields.integer("max_sequence_length"), withoutT5: try fields.bool("without_t5", default: false),
            guidanceRescale: Float(try fields.number("guidance_rescale", default: 0, in: 0...1)))
        var entry: ModelEntry?
        if let name = try fields.string("model") {
            guard let found = catalog.find(name) else { throw APIError.invalid("model", "no model '\(name)'; GET /sdapi/v1/sd-models lists them") }
            entry = found == model.entry ? nil : found
        }
        return GenerationPlan(requests: [request], model: entry, origin: "jobs")
    }
}
