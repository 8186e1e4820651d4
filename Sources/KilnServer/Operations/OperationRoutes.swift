import Foundation
import Hummingbird
import Kiln

/// `GET /health`, `GET /metrics` (Prometheus text) and the web page at `/`.
struct OperationRoutes {
    let service: GenerationService

    func add(to router: Router<BasicRequestContext>) {
        router.get("health") { _, _ in
            let model = service.model
            return Response.json(.object([
                ("status", .string(model == nil ? "loading" : "ok")),
                ("model", .optional(model?.entry.name)),
                ("family", .optional(model?.family.rawValue)),
                ("device", .string(service.device.deviceName)),
                ("backend", .string(service.device.kind)),
                ("queue", .object([("pending", .integer(service.queue.pending.count)), ("running", .integer(service.queue.running == nil ? 0 : 1)),
                                   ("capacity", .integer(service.queue.capacity))])),
                ("uptime_seconds", .number(Date().timeIntervalSince(service.started))),
                ("version", .string(KilnVersion.string)),
            ]))
        }
        router.get("kiln/v1/model") { _, _ in
            guard let model = service.model else { throw APIError(.serviceUnavailable, field: nil, "no model is loaded") }
            let defaults = model.defaults
            return Response.json(.object([
                ("name", .string(model.entry.name)), ("family", .string(model.family.rawValue)), ("sha256", .optional(model.sha256)),
                ("device", .string(service.device.deviceName)), ("backend", .string(service.device.kind)), ("dtype", .string(model.dtype)),
                ("weight_bytes", .integer(model.weightBytes)),
                ("defaults", .object([
                    ("width", .integer(defaults.width)), ("height", .integer(defaults.height)), ("steps", .integer(defaults.steps)),
                    ("guidance_scale", .float(defaults.guidanceScale)), ("sampler", .string(defaults.sampler)),
                    ("takes_class_labels", .bool(defaults.takesClassLabels)),
                ])),
                ("samplers", .array(SamplerName.allCases.map { .string($0.rawValue) })),
            ]))
        }
        router.get("metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: service.metrics.text())))
        }
        router.get("/") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-cache"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: PackageResources.index_html)))
        }
    }
}
