import Foundation
import Kiln

/// The body of `POST /v1/images/generations` read into a plan for the loaded model `model`,
/// apart from the route so that it can be checked (and fuzzed) without a server.
struct OpenAIImageRequest {
    let plan: GenerationPlan
    /// `b64_json` or `url`.
    let responseFormat: String

    static func parse(_ body: JSONValue, model: ModelSummary, catalog: ModelCatalog, configuration: ServerConfiguration) throws -> OpenAIImageRequest {
        let fields = try FieldReader(body)
        guard let prompt = try fields.string("prompt"), !prompt.isEmpty else { throw APIError.invalid("prompt", "a prompt is required") }
        if prompt.count > A1111GenerationRequest.Limits.promptCharacters {
            throw APIError.invalid("prompt", "\(prompt.count) characters; at most \(A1111GenerationRequest.Limits.promptCharacters)")
        }
        let count = try fields.integer("n", default: 1, in: 1...min(10, configuration.maximumBatchSize))
        let format = try fields.string("response_format", default: "b64_json")
        guard format == "b64_json" || format == "url" else { throw APIError.invalid("response_format", "'\(format)': b64_json or url") }
        if let output = try fields.string("output_format"), output != "png" { throw APIError.invalid("output_format", "'\(output)': Kiln writes PNG") }
        // `model` names a catalogued model, or is another service's name (dall-e-3) and ignored.
        let entry = try fields.string("model").flatMap { catalog.find($0) }
        for key in ["quality", "style", "user", "background", "moderation"] { _ = try fields.string(key) }

        var generation = model.defaults.request(
            .prompt(prompt, negative: try fields.string("negative_prompt").flatMap { $0.isEmpty ? nil : $0 }),
            seed: try fields.integer("seed").map { UInt64(clamping: $0) } ?? UInt64.random(in: 0...UInt64(UInt32.max)))
        if let size = try fields.string("size"), size != "auto" {
            let sides = size.lowercased().split(separator: "x").compactMap { Int($0) }
            guard sides.count == 2, sides.allSatisfy({ (1...configuration.maximumSide).contains($0) }) else {
                throw APIError.invalid("size", "'\(size)' must be WIDTHxHEIGHT, each 1...\(configuration.maximumSide)")
            }
            generation.width = sides[0]
            generation.height = sides[1]
        }
        if let steps = try fields.integer("steps") {
            guard (1...GenerationRequest.Limits.steps).contains(steps) else { throw APIError.invalid("steps", "\(steps) is outside 1...\(GenerationRequest.Limits.steps)") }
            generation.steps = steps
        }
        if let scale = try fields.number("guidance_scale") { generation.guidanceScale = Float(scale) }
        generation.batchCount = count
        let plan = GenerationPlan(requests: [generation], model: entry == model.entry ? nil : entry, origin: "openai")
        return OpenAIImageRequest(plan: plan, responseFormat: format)
    }
}
