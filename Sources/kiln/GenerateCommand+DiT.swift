import ArgumentParser
import Foundation
import Kiln

/// `kiln generate --class-label N [N ...]` with a DiT: one image per label from one seed, as
/// diffusers' `DiTPipeline(class_labels=[...])` makes them; `--cfg-scale` is its guidance_scale
/// (default 4), `--steps` its num_inference_steps (default 50). The size is the model's own
/// (`sample_size` x 8); `--width`/`--height` may only repeat it.
extension GenerateCommand {
    /// A DiT folder (model_index.json names DiTPipeline), a single file whose `--config` is one,
    /// or a file under facebookresearch/DiT's names (which then still needs `--config`).
    var isDiTModel: Bool {
        if [Optional(model), config].compactMap({ $0 }).contains(where: { DiTCheckpoint.isDiTFolder(URL(fileURLWithPath: $0)) }) {
            return true
        }
        guard model.hasSuffix(".safetensors"), let file = try? SafeTensorsFile(url: URL(fileURLWithPath: model)) else { return false }
        return file.entries[DiTOriginalKeyNames.marker] != nil
    }

    func generateDiT(_ settings: Settings, backend chosenBackend: Backend, storage: DType, device: String, driver: String?) throws {
        if prompt != nil || negativePrompt != nil {
            throw CommandFailure.badInput("--prompt and --negative-prompt are for text-to-image models; a DiT model is class-conditional: use --class-label N [N ...]")
        }
        guard !classLabel.isEmpty else {
            throw CommandFailure.badInput("a DiT model needs --class-label N [N ...] (one image per label)")
        }
        for (option, value) in [("--init-image", initImage), ("--mask", mask), ("--vae", vae), ("--inpainting-unet", inpaintingUnet)] where value != nil {
            throw CommandFailure.badInput("\(option) is not supported with a DiT model (DiTPipeline generates from class labels only)")
        }
        if guidanceRescale != 0 { throw CommandFailure.badInput("--guidance-rescale is not part of DiTPipeline") }
        if batchCount != 1 {
            throw CommandFailure.badInput("--batch-count \(batchCount): a DiT batch is one image per --class-label")
        }
        if classLabel.count > 1 && !output.contains("%") {
            throw CommandFailure.badInput("--output '\(output)' needs %d (the image's index) for \(classLabel.count) class labels")
        }

        let modelURL = URL(fileURLWithPath: model)
        let pipeline: DiTPipeline
        do {
            pipeline = try DiTPipeline(url: modelURL, configFolder: config.map(URL.init(fileURLWithPath:)), backend: chosenBackend, dtype: storage)
        } catch {
            throw CommandFailure.badInput("--model \(model): \(error)")
        }
        var request = GenerationRequest(
            prompt: "", width: width ?? pipeline.imageSize, height: height ?? pipeline.imageSize, steps: steps ?? 50,
            guidanceScale: cfgScale ?? 4.0, sampler: settings.sampler, sigmaSpacing: settings.spacing,
            seed: seed ?? UInt64.random(in: 0...UInt64(UInt32.max)))
        request.classLabels = classLabel
        do {
            try pipeline.check(request)
        } catch {
            throw CommandFailure.badInput("\(error)")
        }
        let outputs = classLabel.indices.map { outputPath(index: $0) }
        let modelHash = try? ModelHashCache.sha256(of: modelURL)
        let samplerName = sampler?.lowercased() ?? Self.samplerLabel(pipeline.schedulerConfiguration)

        let result = try runWithProgress { report in try pipeline.generate(request, progress: report, isCancelled: { false }) }
        try saveLatentsIfAsked(result.latents)
        for (index, path) in outputs.enumerated() {
            var metadata = GenerationMetadata(
                prompt: "", negativePrompt: nil, mode: "class2img", width: request.width, height: request.height, steps: request.steps,
                cfgScale: request.guidanceScale, guidanceRescale: 0, sampler: samplerName, scheduler: scheduler ?? "default",
                seed: request.seed, rng: rng, batchCount: classLabel.count, batchIndex: index, strength: nil,
                model: Self.modelName(modelURL), modelSHA256: modelHash, backend: backend, dtype: storage.shortName, device: device,
                driver: driver)
            metadata.classLabel = classLabel[index]
            try ImageFiles.writeImage(result.images, index: index, to: URL(fileURLWithPath: path), metadata: metadata)
        }

        try finish(outputs: outputs, request: request, sampler: samplerName, device: device,
                   stageSeconds: result.stageSeconds, denoisingSteps: result.timesteps.count)
    }

    /// The CLI name of the scheduler class a configuration names.
    static func samplerLabel(_ configuration: SchedulerConfiguration) -> String {
        let kind = try? SchedulerKind.named(in: configuration)
        return SamplerName.allCases.first { $0.kind == kind }?.rawValue ?? configuration.className ?? "unknown"
    }
}
