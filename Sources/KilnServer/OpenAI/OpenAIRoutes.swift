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
            let parsed = try OpenAIImageRequest.parse(body, model: model, catalog: service.catalog, configuration: service.configuration)
            let plan = parsed.plan
            let format = parsed.responseFormat
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
