import Foundation
import Hummingbird
import Kiln

/// Kiln's own asynchronous jobs: submit (202 with the queue position), poll, cancel, and a
/// Server-Sent Events stream of progress with previews. Finished results are kept for
/// `--result-ttl` seconds, then answer 410.
struct JobRoutes {
    let service: GenerationService

    func add(to router: Router<BasicRequestContext>) {
        let jobs = router.group("kiln/v1/jobs")
        jobs.post { request, _ in
            let body = try await request.jsonBody(maximumBytes: service.configuration.maximumBodyBytes)
            guard let model = service.model else { throw APIError(.serviceUnavailable, field: nil, "no model is loaded") }
            let plan = try KilnJobRequest.parse(body, model: model, catalog: service.catalog, configuration: service.configuration)
            try service.precheck(plan)
            let job = try service.submit(.generate(plan))
            var response = Response.json(summary(job), status: .accepted)
            response.headers[.location] = "/kiln/v1/jobs/\(job.id)"
            return response
        }
        jobs.get { _, _ in Response.json(.object([("jobs", .array(service.queue.all.map(summary)))])) }
        jobs.get(":id") { _, context in Response.json(details(try job(context))) }
        jobs.delete(":id") { _, context in
            let job = try job(context)
            guard service.queue.cancel(job) else {
                throw APIError(.conflict, field: nil, "job \(job.id) already finished (\(job.status.rawValue))")
            }
            await waitBriefly(for: job)
            return Response.json(summary(job))
        }
        jobs.get(":id/events") { _, context in events(try job(context)) }
        jobs.get(":id/images/:index") { _, context in
            let job = try job(context)
            let images = job.state.current.images
            guard let index = context.parameters.get("index", as: Int.self), images.indices.contains(index) else {
                throw APIError(.notFound, field: nil, "job \(job.id) has no image \(context.parameters.get("index") ?? "")")
            }
            return Response(status: .ok, headers: [.contentType: "image/png"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: images[index].png)))
        }
        jobs.get(":id/preview") { _, context in
            guard let png = try job(context).previewPNG() else { return Response(status: .noContent) }
            return Response(status: .ok, headers: [.contentType: "image/png"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: png)))
        }
    }

    private func job(_ context: BasicRequestContext) throws -> Job {
        try service.queue.job(context.parameters.get("id") ?? "")
    }

    /// A running job stops at its next step; waits up to a second so the answer usually says so.
    private func waitBriefly(for job: Job) async {
        for _ in 0..<20 where !job.status.isFinished { try? await Task.sleep(for: .milliseconds(50)) }
    }

    func summary(_ job: Job) -> JSONValue {
        let state = job.state.current
        var fields: [(String, JSONValue)] = [("id", .string(job.id)), ("status", .string(state.status.rawValue))]
        // 0 while running (or handed to the worker), null once finished.
        let position: JSONValue = state.position.map { .integer($0) } ?? (state.status == .running ? .integer(0) : .null)
        fields.append(("position", position))
        fields += [
            ("origin", .string(job.origin)), ("created", .number(job.created.timeIntervalSince1970)),
            ("step", .integer(state.step)), ("steps", .integer(state.steps)),
            ("iteration", .integer(state.iteration)), ("iterations", .integer(job.iterationCount)),
        ]
        if let request = job.firstRequest {
            fields += [("prompt", .optional(request.prompt)), ("width", .integer(request.width)), ("height", .integer(request.height))]
        }
        if case .loadModel(let entry) = job.work { fields.append(("model", .string(entry.name))) }
        return .object(fields)
    }

    func details(_ job: Job) -> JSONValue {
        let state = job.state.current
        guard case .object(var fields) = summary(job) else { return summary(job) }
        if let started = state.started { fields.append(("started", .number(started.timeIntervalSince1970))) }
        if let finished = state.finished { fields.append(("finished", .number(finished.timeIntervalSince1970))) }
        if state.status == .done || state.interrupted {
            fields.append(("images", .array(state.images.map { .string($0.png.base64EncodedString()) })))
            fields.append(("infotexts", .array(state.images.map { .string($0.infotext) })))
            fields.append(("parameters", .array(state.images.compactMap { image in
                (try? image.metadata.json()).flatMap { try? JSONValue.parse(Data($0.utf8)) }
            })))
        }
        if let error = state.error { fields.append(("error", error.body)) }
        return .object(fields)
    }

    /// The job's events as Server-Sent Events: `queued` (position), `started`, `progress` (step,
    /// steps and the preview as a data URL), then `done` (image URLs and infotexts), `failed`
    /// (the error) or `cancelled`; the stream ends with the job.
    private func events(_ job: Job) -> Response {
        let stream = job.events()
        let body = ResponseBody { writer in
            for await event in stream {
                let (name, data) = describe(event, job: job)
                try await writer.write(ByteBuffer(string: "event: \(name)\ndata: \(data.serialized())\n\n"))
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: body)
    }

    private func describe(_ event: JobEvent, job: Job) -> (String, JSONValue) {
        switch event {
        case .queued(let position): return ("queued", .object([("id", .string(job.id)), ("position", .integer(position))]))
        case .started: return ("started", .object([("id", .string(job.id))]))
        case .progress(let iteration, let iterations, let step, let steps):
            let preview = job.previewPNG().map { "data:image/png;base64," + $0.base64EncodedString() }
            return ("progress", .object([
                ("id", .string(job.id)), ("step", .integer(step)), ("steps", .integer(steps)), ("iteration", .integer(iteration)),
                ("iterations", .integer(iterations)), ("preview", .optional(preview)),
            ]))
        case .done:
            let images = job.state.current.images
            return ("done", .object([
                ("id", .string(job.id)),
                ("images", .array(images.indices.map { .string("/kiln/v1/jobs/\(job.id)/images/\($0)") })),
                ("infotexts", .array(images.map { .string($0.infotext) })),
            ]))
        case .failed(let error): return ("failed", .object([("id", .string(job.id)), ("error", error.body)]))
        case .cancelled: return ("cancelled", .object([("id", .string(job.id))]))
        }
    }
}
