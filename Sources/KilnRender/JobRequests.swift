import Foundation
import Kiln

/// Turns a job's settings into the request its model runs: what the job leaves out takes the
/// model's defaults, as `kiln generate` fills them; images are read relative to the manifest.
enum JobRequests {
    static func request(for job: RenderJob, defaults: GenerationDefaults, manifest: URL) throws -> GenerationRequest {
        let settings = job.settings
        func fail(_ field: String, _ message: String) -> ManifestError {
            ManifestError(file: manifest.path, line: job.line, field: field, message: message)
        }
        let conditioning: GenerationRequest.Conditioning
        if let label = settings.classLabel {
            if settings.prompt != nil || settings.negativePrompt != nil { throw fail("class_label", "a job takes a prompt or a class label, not both") }
            conditioning = .classLabels([label])
        } else {
            conditioning = .prompt(settings.prompt ?? "", negative: settings.negativePrompt)
        }
        var request = defaults.request(conditioning, seed: job.seed)
        if let path = settings.initImage {
            let image = try readImage(path, field: "init_image", manifest: manifest, job: job, convert: InputImages.initImage)
            (request.width, request.height) = (image.shape[3], image.shape[2])
            if let maskPath = settings.mask {
                let mask = try readImage(maskPath, field: "mask", manifest: manifest, job: job, convert: InputImages.mask)
                request.mode = defaults.inpainting(image, mask: mask, strength: settings.strength)
            } else {
                request.mode = defaults.imageToImage(image, strength: settings.strength)
            }
        } else if settings.strength != nil {
            throw fail("strength", "strength needs an init_image")
        }
        request.width = settings.width ?? request.width
        request.height = settings.height ?? request.height
        request.steps = settings.steps ?? request.steps
        request.guidanceScale = settings.cfgScale ?? request.guidanceScale
        request.batchCount = settings.batchCount ?? 1
        request.options.loras = (settings.loras ?? []).map { lora in
            LoRARequest(url: URL(fileURLWithPath: lora.path, relativeTo: manifest.deletingLastPathComponent()).standardizedFileURL,
                        weight: lora.weight ?? 1)
        }
        for lora in request.options.loras where !FileManager.default.fileExists(atPath: lora.url.path) {
            throw fail("loras", "\(lora.url.path): no such file")
        }
        do {
            request.sampler = try settings.sampler.map(SamplerName.init(parsing:))
        } catch {
            throw fail("sampler", "\(error)")
        }
        do {
            request.sigmaSpacing = try settings.scheduler.map(SigmaSpacing.init(parsing:))
        } catch {
            throw fail("scheduler", "\(error)")
        }
        return request
    }

    /// The model a job runs: its own `model` (relative to the manifest) or the command's.
    static func modelURL(for job: RenderJob, manifest: URL, defaultModel: URL?) throws -> URL {
        if let path = job.settings.model { return URL(fileURLWithPath: path, relativeTo: manifest.deletingLastPathComponent()).standardizedFileURL }
        guard let defaultModel else {
            throw ManifestError(file: manifest.path, line: job.line, field: "model", message: "the job names no model, no --model was given and Kiln's default model is not installed")
        }
        return defaultModel
    }

    private static func readImage(
        _ path: String, field: String, manifest: URL, job: RenderJob, convert: (PNGImage) throws -> ShapedArray
    ) throws -> ShapedArray {
        let url = URL(fileURLWithPath: path, relativeTo: manifest.deletingLastPathComponent()).standardizedFileURL
        do {
            return try convert(PNGImage(contentsOf: url))
        } catch {
            let message = "\(error)"
            throw ManifestError(file: manifest.path, line: job.line, field: field, message: message.contains(url.path) ? message : "\(url.path): \(message)")
        }
    }
}
