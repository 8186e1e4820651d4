import Foundation
import Kiln

/// `kiln generate` for FLUX.1 (dev and schnell): a diffusers FluxPipeline folder (model_index.json
/// `_class_name` "FluxPipeline"), or a single file (a transformer in diffusers' or the original key
/// names, or ComfyUI's all-in-one checkpoint) with `--config <FluxPipeline folder>` for the rest. `--cfg-scale` is FLUX.1-dev's
/// embedded guidance (default 3.5); there is no negative prompt and no classifier-free batch.
extension GenerateCommand {
    /// The FluxPipeline folder and optional transformer file `--model`/`--config` name, or nil
    /// when the model is not FLUX. A FLUX transformer file without a FLUX `--config` folder is
    /// refused (exit 2): it holds neither text encoders nor VAE.
    static func fluxModel(model: URL, config: URL?) throws -> (folder: URL, transformerFile: URL?)? {
        func isFlux(_ folder: URL) -> Bool {
            guard let data = try? Data(contentsOf: folder.appendingPathComponent("model_index.json")),
                  let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return false }
            return json["_class_name"] as? String == "FluxPipeline"
        }
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: model.path, isDirectory: &isDirectory)
        if exists, isDirectory.boolValue { return isFlux(model) ? (model, nil) : nil }
        if let config, isFlux(config) { return (config, model) }
        if exists, let file = try? FluxSingleFile(url: model), file.hasTransformer {
            throw CommandFailure.badInput("--model \(model.path) is a FLUX transformer alone: pass --config <a FluxPipeline folder> for its text encoders, tokenizers, VAE and scheduler")
        }
        return nil
    }

    func generateFlux(folder: URL, transformerFile: URL?, prompt: String, settings: Settings, backend chosenBackend: Backend,
                      device: String, driver: String?) throws {
        // Options FLUX does not have: refused by name before any work.
        let unsupported: [(String, Bool)] = [
            ("--negative-prompt", negativePrompt != nil), ("--guidance-rescale", guidanceRescale != 0), ("--vae", vae != nil),
            ("--inpainting-unet", inpaintingUnet != nil),
            ("--sampler (only flow_euler)", settings.sampler.map { $0 != .flowEuler } ?? false),
            ("--scheduler (FLUX's sigmas are fixed)", settings.spacing != nil && scheduler != "default"),
        ]
        if let (option, _) = unsupported.first(where: \.1) {
            throw CommandFailure.badInput("\(option) is not supported for FLUX (text-to-image, image-to-image and inpainting with embedded guidance)")
        }
        let initPixels = try initImage.map { try ImageFiles.readInitImage(URL(fileURLWithPath: $0), option: "--init-image") }
        let maskValues = try mask.map { try ImageFiles.readMask(URL(fileURLWithPath: $0), option: "--mask") }
        if let maskValues, let initPixels, maskValues.shape.dropFirst(2) != initPixels.shape.dropFirst(2) {
            throw CommandFailure.badInput("--mask \(mask ?? "") is \(maskValues.shape[3])x\(maskValues.shape[2]); it must be the init image's size, \(initPixels.shape[3])x\(initPixels.shape[2])")
        }
        let storage: DType = backend == "cpu" ? .float32 : settings.dtype
        let pipeline: FluxPipeline, promptEncoder: FluxPromptEncoder, autoencoder: FluxAutoencoder
        do {
            // A single file supplies its transformer and whatever else it carries (ComfyUI's
            // all-in-one files: VAE, CLIP-L, T5); the folder the rest.
            let file = try transformerFile.map(FluxSingleFile.init(url:))
            pipeline = try FluxPipeline(folder: folder, singleFile: file, backend: chosenBackend, dtype: storage)
            promptEncoder = try FluxPromptEncoder(folder: folder, singleFile: file, backend: chosenBackend, dtype: storage)
            autoencoder = try FluxAutoencoder(folder: folder, singleFile: file, backend: chosenBackend, dtype: storage)
        } catch {
            throw CommandFailure.badInput("--model \(model): \(error)")
        }
        // diffusers' default size: the init image's, else the transformer's default_sample_size
        // 128 in latent pixels.
        let requestWidth = width ?? initPixels?.shape[3] ?? 1024, requestHeight = height ?? initPixels?.shape[2] ?? 1024
        if let initPixels, initPixels.shape[3] != requestWidth || initPixels.shape[2] != requestHeight {
            throw CommandFailure.badInput("--init-image \(initImage ?? "") is \(initPixels.shape[3])x\(initPixels.shape[2]) but the size asked is \(requestWidth)x\(requestHeight)")
        }
        let request = FluxGenerationRequest(
            prompt: prompt, width: requestWidth, height: requestHeight, steps: steps ?? 28, guidance: cfgScale ?? 3.5,
            seed: seed ?? UInt64.random(in: 0...UInt64(UInt32.max)), batchCount: batchCount, maxSequenceLength: maxSequenceLength,
            initImage: initPixels, mask: maskValues, strength: strength ?? 0.6)
        do {
            try pipeline.check(request)
        } catch {
            throw CommandFailure.badInput("\(error)")
        }
        let modelURL = transformerFile ?? folder
        let modelHash = try? ModelHashCache.sha256(of: modelURL)
        let outputs = (0..<request.batchCount).map { outputPath(index: $0) }

        let result = try runWithProgress { report in
            try pipeline.generate(request, promptEncoder: promptEncoder, autoencoder: autoencoder, progress: report)
        }
        // Unpacked [B, 16, h, w], as FluxPipeline's _unpack_latents leaves them before the VAE.
        try saveLatentsIfAsked(result.latents)
        let sampler = "flow_euler"
        // schnell has no guidance at all: recorded as 1, the scale that means "no guidance".
        let recordedGuidance = pipeline.model.configuration.guidanceEmbeds ? request.guidance : 1
        for (index, path) in outputs.enumerated() {
            let metadata = GenerationMetadata(
                prompt: request.prompt, negativePrompt: nil, mode: maskValues != nil ? "inpaint" : (initPixels == nil ? "txt2img" : "img2img"),
                width: request.width, height: request.height, steps: request.steps, cfgScale: recordedGuidance,
                guidanceRescale: 0, sampler: sampler, scheduler: "default", seed: request.seed, rng: rng,
                batchCount: request.batchCount, batchIndex: index, strength: initPixels == nil ? nil : request.strength,
                model: Self.modelName(modelURL),
                modelSHA256: modelHash, backend: backend, dtype: storage.shortName, device: device, driver: driver)
            try ImageFiles.writeImage(result.images, index: index, to: URL(fileURLWithPath: path), metadata: metadata)
        }
        try finish(outputs: outputs, seed: request.seed, steps: request.steps, width: request.width, height: request.height,
                   sampler: sampler, device: device, denoisingSteps: result.stepCount,
                   stageSeconds: [.encodingText: result.textSeconds, .denoising: result.denoisingSeconds, .decoding: result.decodingSeconds])
    }
}
