import Foundation
import Kiln

/// A `txt2img` or `img2img` body read as AUTOMATIC1111 reads it (same fields, same defaults),
/// turned into the Kiln requests it asks for: one per `n_iter`, each of `batch_size` images.
///
/// Clients send every A1111 field. A field Kiln does not implement is accepted at its neutral
/// value and refused with a 422 naming it when it asks for something Kiln cannot do
/// (`enable_hr: true`, `restore_faces: true`, a script, a variation seed); unknown fields are
/// ignored, as pydantic ignores them.
struct A1111GenerationRequest {
    var requests: [GenerationRequest]
    /// A1111's `parameters`: the request with every default filled in.
    var parameters: JSONValue
    var samplerName: String
    var scheduler: A1111Samplers.Scheduler
    var batchSize: Int
    var sendImages: Bool
    var model: ModelEntry?
    var restoresModel: Bool
    /// `include_init_images`: the init images (as sent) appended to the response's images.
    var returnedInitImages: [String]
    /// Fields accepted that change nothing in Kiln (A1111's own mask handling), listed in `info`.
    var ignored: [String]

    struct Limits {
        var maximumBatchSize: Int
        var maximumIterations: Int
        var maximumSide: Int
        static let promptCharacters = 20_000
    }

    /// A1111's field defaults (its `StableDiffusionProcessing` API models), echoed in `parameters`.
    static func defaults(img2img: Bool) -> [(String, JSONValue)] {
        var fields: [(String, JSONValue)] = [
            ("prompt", .string("")), ("negative_prompt", .string("")), ("styles", .array([])), ("seed", .integer(-1)),
            ("subseed", .integer(-1)), ("subseed_strength", .number(0)), ("seed_resize_from_h", .integer(-1)),
            ("seed_resize_from_w", .integer(-1)), ("sampler_name", .null), ("scheduler", .null), ("batch_size", .integer(1)),
            ("n_iter", .integer(1)), ("steps", .integer(50)), ("cfg_scale", .number(7)), ("width", .integer(512)),
            ("height", .integer(512)), ("restore_faces", .null), ("tiling", .null), ("do_not_save_samples", .bool(false)),
            ("do_not_save_grid", .bool(false)), ("eta", .null), ("denoising_strength", img2img ? .number(0.75) : .null),
            ("s_min_uncond", .null), ("s_churn", .null), ("s_tmax", .null), ("s_tmin", .null), ("s_noise", .null),
            ("override_settings", .null), ("override_settings_restore_afterwards", .bool(true)), ("refiner_checkpoint", .null),
            ("refiner_switch_at", .null), ("disable_extra_networks", .bool(false)), ("comments", .null),
        ]
        if img2img {
            fields += [
                ("init_images", .null), ("resize_mode", .integer(0)), ("image_cfg_scale", .null), ("mask", .null),
                ("mask_blur_x", .integer(4)), ("mask_blur_y", .integer(4)), ("mask_blur", .null), ("mask_round", .bool(true)),
                ("inpainting_fill", .integer(0)), ("inpaint_full_res", .bool(true)), ("inpaint_full_res_padding", .integer(0)),
                ("inpainting_mask_invert", .integer(0)), ("initial_noise_multiplier", .null), ("latent_mask", .null),
                ("include_init_images", .bool(false)),
            ]
        } else {
            fields += [
                ("enable_hr", .bool(false)), ("firstphase_width", .integer(0)), ("firstphase_height", .integer(0)), ("hr_scale", .number(2)),
                ("hr_upscaler", .null), ("hr_second_pass_steps", .integer(0)), ("hr_resize_x", .integer(0)), ("hr_resize_y", .integer(0)),
                ("hr_checkpoint_name", .null), ("hr_sampler_name", .null), ("hr_scheduler", .null), ("hr_prompt", .string("")),
                ("hr_negative_prompt", .string("")),
            ]
        }
        fields += [
            ("sampler_index", .string("Euler")), ("script_name", .null), ("script_args", .array([])), ("send_images", .bool(true)),
            ("save_images", .bool(false)), ("alwayson_scripts", .object([])), ("force_task_id", .null), ("infotext", .null),
        ]
        return fields
    }

    /// Reads `body` for the loaded model `model`.
    /// `loraDirectory` is where `<lora:name:weight>` tags in the prompt are looked up (A1111's
    /// models/Lora); without one, a tag is refused.
    static func parse(
        _ body: JSONValue, img2img: Bool, model: ModelSummary, catalog: ModelCatalog, limits: Limits, loraDirectory: URL? = nil
    ) throws -> A1111GenerationRequest {
        let fields = try FieldReader(body)
        var ignored: [String] = []

        // Text.
        let prompt = try fields.text("prompt", default: "", maximumLength: Limits.promptCharacters)
        let negative = try fields.text("negative_prompt", default: "", maximumLength: Limits.promptCharacters)
        if let styles = try fields.array("styles"), !styles.isEmpty {
            throw APIError.invalid("styles", "prompt styles are A1111's saved styles; Kiln has none (send [])")
        }

        // Seeds.
        let seedField = try fields.integer("seed", default: -1, in: -1...9_007_199_254_740_991)
        let seed = seedField == -1 ? UInt64.random(in: 0...UInt64(UInt32.max)) : UInt64(seedField)
        try fields.requireNeutral("subseed_strength", 0, because: "variation seeds")
        for key in ["seed_resize_from_h", "seed_resize_from_w"] {
            if let value = try fields.integer(key), value > 0 { throw APIError.invalid(key, "\(value) asks for seed resizing, which Kiln does not do (send -1 or 0)") }
        }
        _ = try fields.integer("subseed")

        // Sampler and schedule.
        let samplerField = fields.has("sampler_name") ? "sampler_name" : "sampler_index"
        let samplerText = try fields.string("sampler_name") ?? fields.string("sampler_index") ?? "Euler"
        let choice = try A1111Samplers.resolve(sampler: samplerText, scheduler: try fields.string("scheduler"), samplerField: samplerField)
        var kilnSampler = choice.sampler.kiln
        // Flow-matching models (SD3, FLUX) run A1111's "Euler" as their flow-matching Euler.
        if kilnSampler == .euler, model.family == .stableDiffusion3 || model.family == .flux { kilnSampler = .flowEuler }

        // Sizes and counts.
        let batchSize = try fields.integer("batch_size", default: 1, in: 1...limits.maximumBatchSize)
        let iterations = try fields.integer("n_iter", default: 1, in: 1...limits.maximumIterations)
        let steps = try fields.integer("steps", default: 50, in: 1...GenerationRequest.Limits.steps)
        let cfgScale = try fields.number("cfg_scale", default: 7, in: 0...100)
        let width = try fields.integer("width", default: 512, in: 1...limits.maximumSide)
        let height = try fields.integer("height", default: 512, in: 1...limits.maximumSide)

        // Features Kiln lacks: neutral values pass, others are refused by name.
        try fields.requireFalse("restore_faces", because: "face restoration")
        try fields.requireFalse("tiling", because: "tiling")
        if !img2img { try fields.requireFalse("enable_hr", because: "the hires fix (a second, upscaled pass)") }
        _ = try fields.bool("do_not_save_samples")
        _ = try fields.bool("do_not_save_grid")
        if try fields.bool("save_images") == true {
            throw APIError.invalid("save_images", "true asks the server to save files; Kiln's server keeps none (the PNGs are in the response)")
        }
        let sendImages = try fields.bool("send_images", default: true)
        if let script = try fields.string("script_name"), !script.isEmpty, script.lowercased() != "none" {
            throw APIError.invalid("script_name", "'\(script)' is an A1111 script; Kiln runs none")
        }
        if let scripts = try fields.object("alwayson_scripts"), case .object(let pairs) = scripts.object, !pairs.isEmpty {
            throw APIError.invalid("alwayson_scripts", "\(pairs.map(\.0).joined(separator: ", ")): A1111 extensions; Kiln runs none (send {})")
        }
        if let refiner = try fields.string("refiner_checkpoint"), !refiner.isEmpty, refiner != "None" {
            throw APIError.invalid("refiner_checkpoint", "a refiner pass; Kiln does not run one")
        }
        try checkSamplerExtras(fields, sampler: kilnSampler, prefix: "")

        // Settings overridden for this request.
        var overrideModel: ModelEntry?
        if let overrides = try fields.object("override_settings") {
            if let checkpoint = try overrides.string("sd_model_checkpoint") {
                guard let entry = catalog.find(checkpoint) else {
                    throw APIError.invalid("override_settings.sd_model_checkpoint", "no model '\(checkpoint)'; GET /sdapi/v1/sd-models lists them")
                }
                overrideModel = entry == model.entry ? nil : entry
            }
            try overrides.requireNeutral("CLIP_stop_at_last_layers", 1, because: "CLIP skip")
            try overrides.requireNeutral("eta_noise_seed_delta", 0, because: "an ancestral noise seed offset")
            if let vae = try overrides.string("sd_vae"), !["automatic", "none", ""].contains(vae.lowercased()) {
                throw APIError.invalid("override_settings.sd_vae", "'\(vae)': Kiln uses the model's own VAE")
            }
            if let format = try overrides.string("samples_format"), format.lowercased() != "png" {
                throw APIError.invalid("override_settings.samples_format", "'\(format)': Kiln writes PNG")
            }
            if kilnSampler == .ddim { try overrides.requireNeutral("eta_ddim", 0, because: "DDIM with eta > 0 (Kiln's DDIM is deterministic, eta 0)") }
            if kilnSampler == .eulerAncestral { try overrides.requireNeutral("eta_ancestral", 1, because: "Euler a with eta other than 1") }
        }
        let restoresModel = try fields.bool("override_settings_restore_afterwards", default: true)

        // The Kiln request, built as `kiln generate` builds it from the same settings.
        var text = prompt
        var loras: [LoRARequest] = []
        if try !LoRAPromptTags.extract(from: prompt).tags.isEmpty {
            guard let loraDirectory else { throw APIError.invalid("prompt", "<lora:...> tags need a server started with --lora-dir") }
            do {
                (text, loras) = try LoRAPromptTags.requests(from: prompt, folder: loraDirectory)
            } catch {
                throw APIError.invalid("prompt", "\(error)")
            }
        }
        let conditioning = GenerationRequest.Conditioning.prompt(text, negative: negative.isEmpty ? nil : negative)
        var base = model.defaults.request(conditioning, seed: seed)
        // A1111 clients write A1111's emphasis syntax: (word:1.2), [word], BREAK.
        base.options.promptSyntax = .a1111
        base.options.loras = loras
        base.width = width
        base.height = height
        base.steps = steps
        base.guidanceScale = Float(cfgScale)
        base.sampler = kilnSampler
        base.sigmaSpacing = choice.scheduler.spacing
        base.batchCount = batchSize

        var returnedInitImages: [String] = []
        if img2img {
            let strength = try fields.number("denoising_strength", default: 0.75, in: 0...1)
            guard let initImages = try fields.array("init_images"), !initImages.isEmpty else {
                throw APIError.invalid("init_images", "img2img needs one init image (base64 PNG)")
            }
            guard initImages.count == 1 else {
                throw APIError.invalid("init_images", "\(initImages.count) images; Kiln takes one init image per request")
            }
            guard case .string(let imageText) = initImages[0] else { throw APIError.invalid("init_images[0]", "must be a base64 string") }
            let image = try Base64Image.png(imageText, field: "init_images[0]", maximumSide: limits.maximumSide)
            if image.width != width || image.height != height {
                throw APIError.invalid(
                    fields.has("width") ? "width" : "init_images[0]",
                    "the init image is \(image.width)x\(image.height) but the request asks for \(width)x\(height); Kiln does not resize init images (resize_mode): send width \(image.width) and height \(image.height)")
            }
            _ = try fields.integer("resize_mode", default: 0, in: 0...3)
            try fields.requireNeutral("initial_noise_multiplier", 1, because: "scaled img2img noise")
            _ = try fields.number("image_cfg_scale")
            let initTensor = try InputImages.initImage(image)
            if let maskText = try fields.string("mask"), !maskText.isEmpty {
                var mask = try Base64Image.png(maskText, field: "mask", maximumSide: limits.maximumSide)
                guard mask.width == image.width, mask.height == image.height else {
                    throw APIError.invalid("mask", "the mask is \(mask.width)x\(mask.height); the init image is \(image.width)x\(image.height)")
                }
                let invert = try fields.integer("inpainting_mask_invert", default: 0, in: 0...1)
                if invert == 1 { mask = try inverted(mask) }
                // A1111 blurs, crops ("only masked") and fills the mask region its own way; Kiln
                // inpaints the whole picture with the binary mask as diffusers does.
                for key in ["mask_blur", "mask_blur_x", "mask_blur_y", "inpainting_fill", "inpaint_full_res", "inpaint_full_res_padding", "mask_round"]
                where fields.has(key) {
                    ignored.append(key)
                }
                base.mode = model.defaults.inpainting(initTensor, mask: try InputImages.mask(mask), strength: Float(strength))
            } else {
                base.mode = model.defaults.imageToImage(initTensor, strength: Float(strength))
            }
            if try fields.bool("include_init_images", default: false) { returnedInitImages = [imageText] }
        }

        let requests = (0..<iterations).map { iteration -> GenerationRequest in
            var request = base
            // A1111 gives image k of a run the seed `seed + k`; one Kiln run of `batch_size`
            // images shares one generator, so each run starts `batch_size` seeds on.
            request.seed = seed &+ UInt64(iteration * batchSize)
            return request
        }

        var parameters = JSONValue.object(defaults(img2img: img2img))
        if case .object(let given) = body {
            for (key, value) in given where parameters[key] != nil { parameters = parameters.setting(key, to: value) }
        }
        parameters = parameters.setting("sampler_name", to: .string(choice.sampler.name))
        parameters = parameters.setting("scheduler", to: .string(choice.scheduler.name))
        if img2img, parameters["init_images"] != nil, fields.has("init_images") {
            // The images are the client's own; echoing megabytes of base64 back helps no one.
            parameters = parameters.setting("init_images", to: .array([]))
            if fields.has("mask") { parameters = parameters.setting("mask", to: .null) }
        }

        return A1111GenerationRequest(
            requests: requests, parameters: parameters, samplerName: choice.sampler.name, scheduler: choice.scheduler,
            batchSize: batchSize, sendImages: sendImages, model: overrideModel, restoresModel: restoresModel,
            returnedInitImages: returnedInitImages, ignored: ignored)
    }

    /// `eta`, `s_churn`, `s_noise` and friends, honoured where the sampler has them: Kiln's DDIM
    /// is eta 0, its Euler a eta 1 with unit noise, its Euler and Heun churn-free; elsewhere
    /// they mean nothing and are ignored, as A1111 ignores them.
    static func checkSamplerExtras(_ fields: FieldReader, sampler: SamplerName, prefix: String) throws {
        let eta = try fields.number("eta")
        _ = try fields.number("s_tmin")
        _ = try fields.number("s_tmax")
        _ = try fields.number("s_min_uncond")
        switch sampler {
        case .ddim:
            if let eta, eta != 0 {
                throw APIError.invalid("eta", "\(FieldReader.format(eta)) asks for stochastic DDIM; Kiln's DDIM is diffusers' with eta 0 (send 0 or leave it out)")
            }
        case .eulerAncestral:
            if let eta, eta != 1 { throw APIError.invalid("eta", "\(FieldReader.format(eta)): Kiln's Euler a is diffusers' with eta 1 (send 1 or leave it out)") }
            try fields.requireNeutral("s_noise", 1, because: "scaled ancestral noise")
        case .euler, .heun:
            try fields.requireNeutral("s_churn", 0, because: "stochastic churn")
        default:
            _ = try fields.number("s_churn")
            _ = try fields.number("s_noise")
        }
    }

    /// `mask` with white and black swapped (A1111's `inpainting_mask_invert`).
    static func inverted(_ mask: PNGImage) throws -> PNGImage {
        let gray = mask.grayscale()
        return try PNGImage(width: gray.width, height: gray.height, layout: gray.layout, pixels: gray.pixels.map { 255 - $0 })
    }
}
