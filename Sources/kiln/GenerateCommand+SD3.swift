import ArgumentParser
import Foundation
import Kiln

/// `kiln generate` for Stable Diffusion 3 / 3.5 folders (model_index.json `_class_name`
/// "StableDiffusion3Pipeline"): text-to-image with diffusers' SD3 defaults (guidance 7.0, the
/// transformer's sample_size in pixels, max_sequence_length 256).
extension GenerateCommand {
    func generateSD3(_ settings: Settings, prompt: String, modelURL: URL, backend chosenBackend: Backend, storage: DType, device: String, driver: String?) throws {
        for (option, value) in [("--vae", vae), ("--inpainting-unet", inpaintingUnet), ("--init-image", initImage),
                                ("--mask", mask), ("--scheduler", scheduler)] where value != nil {
            throw CommandFailure.badInput("\(option) is not supported with SD3 models (text-to-image with the model's own components)")
        }
        if strength != nil { throw CommandFailure.badInput("--strength is not supported with SD3 models (text-to-image only)") }
        if guidanceRescale != 0 { throw CommandFailure.badInput("--guidance-rescale is not part of diffusers' StableDiffusion3Pipeline") }
        let sequenceLength = maxSequenceLength ?? StableDiffusion3Pipeline.defaultMaxSequenceLength
        if sequenceLength <= 0 { throw CommandFailure.badInput("--max-sequence-length \(sequenceLength): must be at least 1") }

        let pipeline: StableDiffusion3Pipeline
        do {
            pipeline = try StableDiffusion3Pipeline(
                url: modelURL, configFolder: config.map(URL.init(fileURLWithPath:)), backend: chosenBackend, dtype: storage, withoutT5: withoutT5)
        } catch {
            throw CommandFailure.badInput("--model \(model): \(error)")
        }
        // diffusers' default size: the transformer's sample_size latent pixels.
        let nativeSize = pipeline.folder.transformer.configuration.sampleSize * pipeline.downscaleFactor
        let request = GenerationRequest(
            prompt: prompt, negativePrompt: negativePrompt, width: width ?? nativeSize, height: height ?? nativeSize, steps: steps ?? 28,
            guidanceScale: cfgScale ?? 7.0, sampler: settings.sampler, seed: seed ?? UInt64.random(in: 0...UInt64(UInt32.max)),
            batchCount: batchCount)
        do {
            try pipeline.check(request, maxSequenceLength: sequenceLength)
        } catch {
            throw CommandFailure.badInput("\(error)")
        }
        let outputs = (0..<request.batchCount).map { outputPath(index: $0) }
        let modelHash = try? ModelHashCache.sha256(of: modelURL)

        let result = try runWithProgress { report in try pipeline.generate(request, maxSequenceLength: sequenceLength, progress: report, isCancelled: { false }) }
        try saveLatentsIfAsked(result.latents)
        let samplerName = SamplerName.flowEuler.rawValue
        for (index, path) in outputs.enumerated() {
            let metadata = GenerationMetadata(
                prompt: request.prompt, negativePrompt: request.negativePrompt, mode: request.mode.rawValue,
                width: request.width, height: request.height, steps: request.steps, cfgScale: request.guidanceScale,
                guidanceRescale: 0, sampler: samplerName, scheduler: "default", seed: request.seed, rng: rng,
                batchCount: request.batchCount, batchIndex: index, strength: nil, model: Self.modelName(modelURL),
                modelSHA256: modelHash, backend: backend, dtype: storage.shortName, device: device, driver: driver)
            try ImageFiles.writeImage(result.images, index: index, to: URL(fileURLWithPath: path), metadata: metadata)
        }
        try finish(outputs: outputs, request: request, sampler: samplerName, device: device,
                   stageSeconds: result.stageSeconds, denoisingSteps: result.timesteps.count)
    }

    /// The SD3-only options, refused for other families rather than silently ignored.
    func rejectSD3Options() throws {
        if maxSequenceLength != nil { throw CommandFailure.badInput("--max-sequence-length applies to SD3 and FLUX models only") }
        if withoutT5 { throw CommandFailure.badInput("--without-t5 applies to SD3 models only") }
    }
}
