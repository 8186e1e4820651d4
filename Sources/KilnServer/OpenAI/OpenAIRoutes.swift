import Foundation
import Hummingbird
import Kiln

/// The OpenAI images API: `POST /v1/images/generations` and `GET /v1/models`, so the `openai`
/// client (`images.generate(..., response_format="b64_json")`) works against Kiln.
struct OpenAIRoutes {
    let service: GenerationService

    func add(to router: Router<BasicRequestContext>) {
        router.post("v1/images/generations") { request, _ in try await generate(request) }
        router.get("v1/models") { _, _ in
            let created = Int(service.started.timeIntervalSince1970)
            return Response.json(.object([
                ("object", .string("list")),
                ("data", .array(service.catalog.all.map { entry in
                    .object([("id", .string(entry.name)), ("object", .string("model")), ("created", .integer(created)), ("owned_by", .string("kiln"))])
                })),
            ]))
        }
    }

    private func generate(_ request: Request) async throws -> Response {
        let service = self.service
        let host = request.head.authority ?? "\(service.configuration.host):\(service.configuration.port)"
        return try await request.withJSONBody(maximumBytes: service.configuration.maximumBodyBytes) { body in
            guard let model = service.model else { throw APIError(.serviceUnavailable, field: nil, "no model is loaded") }
            let fields = try FieldReader(body)
            guard let prompt = try fields.string("prompt"), !prompt.isEmpty else { throw APIError.invalid("prompt", "a prompt is required") }
            if prompt.count > A1111GenerationRequest.Limits.promptCharacters {
                throw APIError.invalid("prompt", "\(prompt.count) characters; at most \(A1111GenerationRequest.Limits.promptCharacters)")
            }
            let count = try fields.integer("n", default: 1, in: 1...min(10, service.configuration.maximumBatchSize))
            let format = try fields.string("response_format", default: "b64_json")
            guard format == "b64_json" || format == "url" else { throw APIError.invalid("response_format", "'\(format)': b64_json or url") }
            if let output = try fields.string("output_format"), output != "png" { throw APIError.invalid("output_format", "'\(output)': Kiln writes PNG") }
            // `model` names a catalogued model, or is another service's name (dall-e-3) and ignored.
            let entry = try fields.string("model").flatMap { service.catalog.find($0) }
            for key in ["quality", "style", "user", "background", "moderation"] { _ = try fields.string(key) }

            var generation = model.defaults.request(
                .prompt(prompt, negative: try fields.string("negative_prompt").flatMap { $0.isEmpty ? nil : $0 }),
                seed: try fields.integer("seed").map { UInt64(clamping: $0) } ?? UInt64.random(in: 0...UInt64(UInt32.max)))
            if let size = try fields.string("size"), size != "auto" {
                let sides = size.lowercased().split(separator: "x").compactMap { Int($0) }
                guard sides.count == 2, sides.allSatisfy({ (1...service.configuration.maximumSide).contains($0) }) else {
                    throw APIError.invalid("size", "'\(size)' must be WIDTHxHEIGHT, each 1...\(service.configuration.maximumSide)")
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
            let job = try await service.runToCompletion(plan)
            let state = job.state.current
            // URLs point at the job's images, served while the job is kept; b64 answers need nothing kept.
            if format == "b64_json" { service.queue.forget(job) }
            switch state.status {
            case .failed: throw state.error ?? APIError(.internalServerError, field: nil, "failed")
            case .cancelled: throw APIError.from(.cancelled)
            default: break
            }
            let data: [JSONValue] = state.images.enumerated().map { index, image in
                format == "url"
                    ? .object([("url", .string("http://\(host)/kiln/v1/jobs/\(job.id)/images/\(index)")), ("revised_prompt", .null)])
                    : .object([("b64_json", .string(image.png.base64EncodedString())), ("revised_prompt", .null)])
            }
            return Response.json(.object([("created", .integer(Int(Date().timeIntervalSince1970))), ("data", .array(data))]))
        }
    }
}
