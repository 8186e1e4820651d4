import CKiln
import Foundation
import Kiln

/// A `kiln_request` as the `GenerationRequest` `kiln generate` would build from the same
/// settings: every zero or NULL field at the model's default, exactly as an option left off the
/// command line, so the same settings give the same images and the same PNG bytes.
enum RequestTranslation {
    /// The sizes `kiln_request` had in earlier headers: the fields up to `batch_count` alone.
    static let olderSizes = [MemoryLayout<kiln_request>.offset(of: \kiln_request.class_labels) ?? 0]

    /// Reads the caller's struct, whatever header it came from (see `VersionedStruct`).
    static func read(_ pointer: UnsafePointer<kiln_request>) throws -> kiln_request {
        try VersionedStruct.read(pointer, name: "kiln_request", olderSizes: olderSizes, zero: kiln_request())
    }

    /// The request `settings` describe, on a model with `defaults`.
    static func request(from settings: kiln_request, defaults: GenerationDefaults) throws -> GenerationRequest {
        let prompt = try CStrings.optional(settings.prompt, field: "prompt")
        let negativePrompt = try CStrings.optional(settings.negative_prompt, field: "negative_prompt")
        let labels = try classLabels(settings)
        let sampler = try CStrings.optional(settings.sampler, field: "sampler").map { name in
            do { return try SamplerName(parsing: name) } catch { throw EmbeddingError("sampler '\(name)': \(error)") }
        }
        let spacing = try CStrings.optional(settings.scheduler, field: "scheduler").map { name in
            do { return try SigmaSpacing(parsing: name) } catch { throw EmbeddingError("scheduler '\(name)': \(error)") }
        }
        if settings.strength != 0 && settings.init_image == nil { throw EmbeddingError("strength needs init_image") }
        if settings.mask_image != nil && settings.init_image == nil { throw EmbeddingError("mask_image needs init_image") }
        if prompt != nil && !labels.isEmpty { throw EmbeddingError("give prompt or class_labels, not both") }

        let conditioning: GenerationRequest.Conditioning
        if !labels.isEmpty {
            conditioning = .classLabels(labels)
        } else if let prompt {
            conditioning = .prompt(prompt, negative: negativePrompt)
        } else {
            throw EmbeddingError(defaults.takesClassLabels ? "this model is class-conditional: set class_labels" : "prompt is required")
        }
        var request = defaults.request(conditioning, seed: settings.seed)
        if let initImage = settings.init_image {
            let image = try InputImages.initImage(try InputImage.read(initImage.pointee, field: "init_image"))
            request.width = image.shape[3]
            request.height = image.shape[2]
            let strength = settings.strength == 0 ? nil : settings.strength
            if let mask = settings.mask_image {
                request.mode = defaults.inpainting(image, mask: try InputImages.mask(try InputImage.read(mask.pointee, field: "mask_image")), strength: strength)
            } else {
                request.mode = defaults.imageToImage(image, strength: strength)
            }
        }
        if settings.width != 0 { request.width = Int(settings.width) }
        if settings.height != 0 { request.height = Int(settings.height) }
        if settings.steps != 0 { request.steps = Int(settings.steps) }
        if settings.cfg_scale != 0 { request.guidanceScale = settings.cfg_scale }
        request.sampler = sampler
        request.sigmaSpacing = spacing
        request.batchCount = settings.batch_count == 0 ? 1 : Int(settings.batch_count)
        request.options = GenerationRequest.Options(
            maxSequenceLength: settings.max_sequence_length == 0 ? nil : Int(settings.max_sequence_length),
            withoutT5: settings.without_t5 != 0, guidanceRescale: settings.guidance_rescale)
        return request
    }

    private static func classLabels(_ settings: kiln_request) throws -> [Int] {
        let count = settings.class_label_count
        guard count > 0 else { return [] }
        guard count <= GenerationRequest.Limits.images else {
            throw EmbeddingError("class_label_count \(count): at most \(GenerationRequest.Limits.images)")
        }
        guard let labels = settings.class_labels else { throw EmbeddingError("class_labels is NULL but class_label_count is \(count)") }
        return UnsafeBufferPointer(start: labels, count: count).map(Int.init)
    }
}

/// A caller's `kiln_image` as an input image, its pixels copied and checked.
enum InputImage {
    static func read(_ image: kiln_image, field: String) throws -> PNGImage {
        let side = GenerationRequest.Limits.side
        guard image.width > 0, image.height > 0, image.width <= side, image.height <= side else {
            throw EmbeddingError("\(field) is \(image.width)x\(image.height): each side must be in 1...\(side)")
        }
        guard let layout = PNGImage.ChannelLayout(channels: Int(image.channels)) else {
            throw EmbeddingError("\(field).channels is \(image.channels): 1 (gray), 2 (gray, alpha), 3 (RGB) or 4 (RGBA)")
        }
        guard let pixels = image.pixels else { throw EmbeddingError("\(field).pixels is NULL") }
        let count = Int(image.width) * Int(image.height) * layout.channels
        do {
            return try PNGImage(width: Int(image.width), height: Int(image.height), layout: layout,
                                pixels: Array(UnsafeBufferPointer(start: pixels, count: count)))
        } catch {
            throw EmbeddingError("\(field): \(error)")
        }
    }
}
