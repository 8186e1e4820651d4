import Foundation
import Hummingbird
import Kiln

/// AUTOMATIC1111's `/sdapi/v1` API over Kiln's queue: what `webuiapi`, Krita plugins, bots and
/// scripts speak. Generations wait their turn in the one queue; a client that disconnects
/// cancels its job; `interrupt` and `skip` act on the running job only.
struct A1111Routes {
    let service: GenerationService

    /// The route names under `/sdapi/v1`, for metrics labels.
    static let names: Set<String> = [
        "txt2img", "img2img", "progress", "interrupt", "skip", "options", "sd-models", "samplers", "schedulers", "png-info", "memory",
        "refresh-checkpoints", "scripts", "script-info", "sd-vae", "upscalers", "latent-upscale-modes", "loras", "hypernetworks",
        "face-restorers", "realesrgan-models", "prompt-styles", "embeddings", "cmd-flags",
    ]

    func add(to router: Router<BasicRequestContext>) {
        let api = router.group("sdapi/v1")
        api.post("txt2img") { request, _ in try await generate(request, img2img: false) }
        api.post("img2img") { request, _ in try await generate(request, img2img: true) }
        api.get("progress") { request, _ in progress(skipImage: request.uri.queryParameters["skip_current_image"].map { $0 == "true" || $0 == "1" } ?? false) }
        api.post("interrupt") { _, _ in
            _ = service.queue.interruptRunning()
            return Response.json(.object([]))
        }
        api.post("skip") { _, _ in
            _ = service.queue.skipRunning()
            return Response.json(.object([]))
        }
        api.get("options") { _, _ in Response.json(options()) }
        api.post("options") { request, _ in try await setOptions(try await request.jsonBody(maximumBytes: service.configuration.maximumBodyBytes)) }
        api.get("sd-models") { _, _ in Response.json(models()) }
        api.post("refresh-checkpoints") { _, _ in
            service.catalog.refresh()
            return Response.json(.null)
        }
        api.get("samplers") { _, _ in Response.json(samplers()) }
        api.get("schedulers") { _, _ in Response.json(schedulers()) }
        api.post("png-info") { request, _ in try pngInfo(try await request.jsonBody(maximumBytes: service.configuration.maximumBodyBytes)) }
        api.get("memory") { _, _ in Response.json(memory()) }
        api.get("scripts") { _, _ in Response.json(.object([("txt2img", .array([])), ("img2img", .array([]))])) }
        api.get("cmd-flags") { _, _ in
            Response.json(.object([("api", .bool(true)), ("listen", .bool(service.configuration.host != "127.0.0.1")), ("port", .integer(service.configuration.port))]))
        }
        api.get("embeddings") { _, _ in Response.json(.object([("loaded", .object([])), ("skipped", .object([]))])) }
        // What Kiln has none of: empty lists, so clients that enumerate them carry on.
        for empty in ["script-info", "sd-vae", "upscalers", "latent-upscale-modes", "loras", "hypernetworks", "face-restorers", "realesrgan-models", "prompt-styles"] {
            api.get(RouterPath(stringLiteral: empty)) { _, _ in Response.json(.array([])) }
        }
    }

    // MARK: Generation

    private func generate(_ request: Request, img2img: Bool) async throws -> Response {
        let service = self.service
        return try await request.withJSONBody(maximumBytes: service.configuration.maximumBodyBytes) { body in
            guard let model = service.model else { throw APIError(.serviceUnavailable, field: nil, "no model is loaded") }
            let limits = A1111GenerationRequest.Limits(
                maximumBatchSize: service.configuration.maximumBatchSize, maximumIterations: service.configuration.maximumIterations,
                maximumSide: service.configuration.maximumSide)
            let parsed = try A1111GenerationRequest.parse(body, img2img: img2img, model: model, catalog: service.catalog, limits: limits,
                                                         loraDirectory: service.configuration.loraDirectory)
            let plan = GenerationPlan(requests: parsed.requests, model: parsed.model, restoresModel: parsed.restoresModel, origin: "a1111")
            let job = try await service.runToCompletion(plan)
            defer { service.queue.forget(job) }
            let state = job.state.current
            switch state.status {
            case .failed: throw state.error ?? APIError(.internalServerError, field: nil, "failed")
            case .cancelled: throw APIError.from(.cancelled)
            default: break
            }
            let encoded = state.images.map { JSONValue.string($0.png.base64EncodedString()) }
            let images = parsed.sendImages ? encoded + parsed.returnedInitImages.map { .string($0) } : []
            let info = A1111Info.json(job: job, request: parsed, model: service.model, images: state.images)
            return Response.json(.object([("images", .array(images)), ("parameters", parsed.parameters), ("info", .string(info.serialized()))]))
        }
    }

    // MARK: Progress

    /// A1111's progress: the running job's share done (across its `n_iter` runs), seconds
    /// left, sampling step, and the latest preview as base64 PNG.
    private func progress(skipImage: Bool) -> Response {
        guard let job = service.queue.running else {
            return Response.json(.object([
                ("progress", .number(0)), ("eta_relative", .number(0)), ("state", idleState()), ("current_image", .null),
                ("textinfo", .null), ("current_task", .null),
            ]))
        }
        let state = job.state.current
        let iterations = Double(max(job.iterationCount, 1))
        let stepShare = state.steps > 0 ? Double(state.step) / Double(state.steps) : 0
        let done = min((Double(state.iteration) + stepShare) / iterations, 1)
        let perIteration = state.secondsPerIteration ?? service.queue.averageJobSeconds.map { $0 / iterations } ?? 0
        let remaining = Double(job.iterationCount - state.iteration - 1)
        let eta = state.secondsLeftInIteration + max(remaining, 0) * perIteration
        let preview = skipImage ? nil : job.previewPNG()
        let stateObject: JSONValue = .object([
            ("skipped", .bool(state.skippedIteration == state.iteration)), ("interrupted", .bool(state.interrupted)),
            ("stopping_generation", .bool(false)), ("job", .string(job.id)), ("job_count", .integer(job.iterationCount)),
            ("job_timestamp", .string(Self.timestamp(job.created))), ("job_no", .integer(state.iteration)),
            ("sampling_step", .integer(state.step)), ("sampling_steps", .integer(state.steps)),
            ("queued", .integer(service.queue.pending.count)),
        ])
        return Response.json(.object([
            ("progress", .number(done)), ("eta_relative", .number(eta)), ("state", stateObject),
            ("current_image", .optional(preview?.base64EncodedString())), ("textinfo", .optional(state.stage?.activity)),
            ("current_task", .string(job.id)),
        ]))
    }

    private func idleState() -> JSONValue {
        .object([
            ("skipped", .bool(false)), ("interrupted", .bool(false)), ("stopping_generation", .bool(false)), ("job", .string("")),
            ("job_count", .integer(0)), ("job_timestamp", .string("0")), ("job_no", .integer(0)), ("sampling_step", .integer(0)),
            ("sampling_steps", .integer(0)), ("queued", .integer(service.queue.pending.count)),
        ])
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyyMMddHHmmss"
        return formatter.string(from: date)
    }

    // MARK: Options and models

    private func options() -> JSONValue {
        let model = service.model
        var fields: [(String, JSONValue)] = [
            ("sd_model_checkpoint", .optional(model.map { service.catalog.displayTitle(of: $0.entry) })),
            ("sd_checkpoint_hash", .optional(model?.sha256)),
            ("samples_format", .string("png")), ("CLIP_stop_at_last_layers", .integer(1)), ("eta_ddim", .number(0)),
            ("eta_ancestral", .number(1)), ("eta_noise_seed_delta", .integer(0)), ("sd_vae", .string("Automatic")),
            ("live_previews_enable", .bool(true)), ("show_progress_every_n_steps", .integer(1)), ("live_preview_content", .string("Prompt")),
            ("show_progress_type", .string("Approx cheap")),
        ]
        for (key, value) in service.storedOptions.current {
            if let index = fields.firstIndex(where: { $0.0 == key }) { fields[index].1 = value } else { fields.append((key, value)) }
        }
        return .object(fields)
    }

    /// Sets options: `sd_model_checkpoint` loads that model (queued behind the jobs before it,
    /// answered once loaded); settings Kiln cannot honour are refused; others are kept.
    private func setOptions(_ body: JSONValue) async throws -> Response {
        let fields = try FieldReader(body)
        try fields.requireNeutral("CLIP_stop_at_last_layers", 1, because: "CLIP skip")
        try fields.requireNeutral("eta_ddim", 0, because: "DDIM with eta > 0")
        try fields.requireNeutral("eta_ancestral", 1, because: "ancestral sampling with eta other than 1")
        try fields.requireNeutral("eta_noise_seed_delta", 0, because: "an ancestral noise seed offset")
        if let format = try fields.string("samples_format"), format.lowercased() != "png" {
            throw APIError.invalid("samples_format", "'\(format)': Kiln writes PNG")
        }
        if let vae = try fields.string("sd_vae"), !["automatic", "none", ""].contains(vae.lowercased()) {
            throw APIError.invalid("sd_vae", "'\(vae)': Kiln uses the model's own VAE")
        }
        if let checkpoint = try fields.string("sd_model_checkpoint") {
            guard let entry = service.catalog.find(checkpoint) else {
                throw APIError.invalid("sd_model_checkpoint", "no model '\(checkpoint)'; GET /sdapi/v1/sd-models lists them")
            }
            if entry != service.model?.entry {
                let job = try service.submit(.loadModel(entry))
                await job.waitUntilFinished()
                service.queue.forget(job)
                if let error = job.state.current.error { throw error }
            }
        }
        if case .object(let pairs) = body {
            service.storedOptions.withLock { stored in
                for (key, value) in pairs where key != "sd_model_checkpoint" {
                    if let index = stored.firstIndex(where: { $0.0 == key }) { stored[index].1 = value } else { stored.append((key, value)) }
                }
            }
        }
        return Response.json(.null)
    }

    private func models() -> JSONValue {
        .array(service.catalog.all.map { entry in
            let sha256 = service.catalog.sha256(of: entry)
            return .object([
                ("title", .string(service.catalog.displayTitle(of: entry))), ("model_name", .string(entry.name)),
                ("hash", .optional(sha256.map { String($0.prefix(10)) })), ("sha256", .optional(sha256)),
                ("filename", .string(entry.fileName)), ("config", .null),
            ])
        })
    }

    private func samplers() -> JSONValue {
        .array(A1111Samplers.samplers.map { sampler in
            .object([
                ("name", .string(sampler.name)), ("aliases", .array(sampler.aliases.map { .string($0) })),
                ("options", .object([("kiln", .string(sampler.kiln.rawValue))])),
            ])
        })
    }

    private func schedulers() -> JSONValue {
        .array(A1111Samplers.schedulers.map { scheduler in
            .object([
                ("name", .string(scheduler.name)), ("label", .string(scheduler.label)), ("aliases", .null),
                ("default_rho", scheduler.defaultRho.map { .number($0) } ?? .integer(-1)), ("need_inner_model", .bool(false)),
            ])
        })
    }

    // MARK: PNG info and memory

    private func pngInfo(_ body: JSONValue) throws -> Response {
        let fields = try FieldReader(body)
        guard let text = try fields.string("image"), !text.isEmpty else { throw APIError.invalid("image", "a base64 PNG is required") }
        let image = try Base64Image.png(text, field: "image", maximumSide: max(service.configuration.maximumSide, 8192))
        let parameters = image.text(forKeyword: "parameters") ?? ""
        var items: [(String, JSONValue)] = []
        for chunk in image.text where chunk.keyword != "parameters" { items.append((chunk.keyword, .string(chunk.text))) }
        return Response.json(.object([
            ("info", .string(parameters)), ("items", .object(items)), ("parameters", InfotextParser.parse(parameters)),
        ]))
    }

    private func memory() -> JSONValue {
        let system = ProcessMemory.system()
        let ram: JSONValue = system.map { system in
            .object([
                ("free", .integer(system.available)), ("used", .integer(system.total - system.available)), ("total", .integer(system.total)),
                ("process_resident", .integer(MemoryUse.residentSetBytes())),
            ])
        } ?? .object([("error", .string("no /proc/meminfo"))])
        let device = service.device
        let capacity = device.backend.memoryCapacityBytes
        let weights = service.model?.weightBytes ?? 0
        return .object([
            ("ram", ram),
            ("cuda", .object([("error", .string("Kiln runs on \(device.kind == "vulkan" ? "Vulkan" : "the CPU backend"), not CUDA: see 'device'"))])),
            ("device", .object([
                ("name", .string(device.deviceName)), ("backend", .string(device.kind)), ("capacity", .integer(capacity)),
                ("weights", .integer(weights)),
            ])),
        ])
    }
}

/// Reads A1111's infotext (`parameters` text) into its fields, as A1111's png-info returns them:
/// `Prompt`, `Negative prompt`, then each `Key: value` of the last line (quoted values
/// unquoted), with `Size` also split into `Size-1` and `Size-2`.
enum InfotextParser {
    static func parse(_ text: String) -> JSONValue {
        guard !text.isEmpty else { return .object([]) }
        var lines = text.components(separatedBy: "\n")
        let settings = lines.count > 1 || text.contains("Steps: ") ? lines.removeLast() : ""
        var prompt: [String] = []
        var negative: [String] = []
        var inNegative = false
        for line in lines {
            if line.hasPrefix("Negative prompt:") {
                inNegative = true
                negative.append(String(line.dropFirst("Negative prompt:".count)).trimmingCharacters(in: .whitespaces))
            } else if inNegative {
                negative.append(line)
            } else {
                prompt.append(line)
            }
        }
        var fields: [(String, JSONValue)] = [("Prompt", .string(prompt.joined(separator: "\n"))), ("Negative prompt", .string(negative.joined(separator: "\n")))]
        for (key, value) in pairs(settings) {
            fields.append((key, .string(value)))
            if key == "Size" {
                let sides = value.split(separator: "x")
                if sides.count == 2 { fields += [("Size-1", .string(String(sides[0]))), ("Size-2", .string(String(sides[1])))] }
            }
        }
        return .object(fields)
    }

    /// `Key: value, Key: "quoted, value"` pairs.
    static func pairs(_ line: String) -> [(String, String)] {
        var result: [(String, String)] = []
        var index = line.startIndex
        while index < line.endIndex {
            while index < line.endIndex, line[index] == " " || line[index] == "," { index = line.index(after: index) }
            guard let colon = line[index...].firstIndex(of: ":") else { break }
            let key = String(line[index..<colon]).trimmingCharacters(in: .whitespaces)
            index = line.index(after: colon)
            while index < line.endIndex, line[index] == " " { index = line.index(after: index) }
            var value = ""
            if index < line.endIndex, line[index] == "\"" {
                index = line.index(after: index)
                while index < line.endIndex, line[index] != "\"" {
                    if line[index] == "\\", line.index(after: index) < line.endIndex {
                        index = line.index(after: index)
                        value.append(line[index] == "n" ? "\n" : line[index])
                    } else {
                        value.append(line[index])
                    }
                    index = line.index(after: index)
                }
                if index < line.endIndex { index = line.index(after: index) }
            } else {
                let end = line[index...].firstIndex(of: ",") ?? line.endIndex
                value = String(line[index..<end])
                index = end
            }
            if !key.isEmpty { result.append((key, value)) }
        }
        return result
    }
}
