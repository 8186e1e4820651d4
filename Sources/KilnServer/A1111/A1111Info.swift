import Foundation
import Kiln

/// The `info` string of A1111's txt2img/img2img responses: a JSON object with A1111's keys,
/// filled from what Kiln ran, so clients that parse it (seeds, infotexts, model hash) work.
enum A1111Info {
    static func json(job: Job, request: A1111GenerationRequest, model: ModelSummary?, images: [JobImage]) -> JSONValue {
        let first = request.requests[0]
        let strings: ([String]) -> JSONValue = { .array($0.map { .string($0) }) }
        let seeds = images.map { JSONValue.integer($0.metadata.seed) }
        let timestamp: String = {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.dateFormat = "yyyyMMddHHmmss"
            return formatter.string(from: job.created)
        }()
        var extra: [(String, JSONValue)] = []
        if request.scheduler.name != "automatic" { extra.append(("Schedule type", .string(request.scheduler.label))) }
        if !request.ignored.isEmpty { extra.append(("Kiln ignored", strings(request.ignored))) }
        let shortHash: String? = model?.sha256.map { hash in String(hash.prefix(10)) }
        return .object([
            ("prompt", .string(first.prompt ?? "")),
            ("all_prompts", strings(images.map(\.metadata.prompt))),
            ("negative_prompt", .string(first.negativePrompt ?? "")),
            ("all_negative_prompts", strings(images.map { $0.metadata.negativePrompt ?? "" })),
            ("seed", .integer(first.seed)),
            ("all_seeds", .array(seeds)),
            ("subseed", .integer(first.seed)),
            ("all_subseeds", .array(seeds)),
            ("subseed_strength", .number(0)),
            ("width", .integer(first.width)),
            ("height", .integer(first.height)),
            ("sampler_name", .string(request.samplerName)),
            ("cfg_scale", .float(first.guidanceScale)),
            ("steps", .integer(first.steps)),
            ("batch_size", .integer(request.batchSize)),
            ("restore_faces", .bool(false)),
            ("face_restoration_model", .null),
            ("sd_model_name", .optional(model?.entry.name)),
            ("sd_model_hash", .optional(shortHash)),
            ("sd_vae_name", .null),
            ("sd_vae_hash", .null),
            ("seed_resize_from_w", .integer(-1)),
            ("seed_resize_from_h", .integer(-1)),
            ("denoising_strength", first.mode == .textToImage ? .null : .float(first.mode.strength)),
            ("extra_generation_params", .object(extra)),
            ("index_of_first_image", .integer(0)),
            ("infotexts", strings(images.map(\.infotext))),
            ("styles", .array([])),
            ("job_timestamp", .string(timestamp)),
            ("clip_skip", .integer(1)),
            ("is_using_inpainting_conditioning", .bool(first.mode.mask != nil)),
            ("version", .string("kiln \(KilnVersion.string)")),
            ("scheduler", .string(request.scheduler.label)),
            ("kiln_job", .string(job.id)),
        ])
    }
}
