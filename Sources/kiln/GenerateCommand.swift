import ArgumentParser
import Foundation
import Kiln

/// `kiln generate`: text-to-image, image-to-image and inpainting with a Stable Diffusion model,
/// or class-conditional images with a DiT (`--class-label`, see GenerateCommand+DiT.swift),
/// writing PNGs that carry their parameters. Bad input exits with code 2 before any work starts.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Make images from a prompt (and an init image and mask) with a Stable Diffusion model, or from class labels with a DiT.")

    @Option(help: "A diffusers model folder, or a single .safetensors checkpoint (then also --config).")
    var model: String
    @Option(help: "For a single-file checkpoint: a diffusers folder of the same family supplying configs, tokenizers and scheduler.")
    var config: String?
    @Option(help: "A VAE to use instead of the model's: a diffusers vae folder or a .safetensors file.")
    var vae: String?
    @Option(help: "A 9-channel inpainting U-Net folder used when --mask is given.")
    var inpaintingUnet: String?
    @Option(help: "The prompt (text-to-image models; required there).")
    var prompt: String?
    @Option(parsing: .upToNextOption, help: "DiT: class labels, one image per label (e.g. ImageNet ids 0-999).")
    var classLabel: [Int] = []
    @Option(help: "Without it: an empty negative prompt (zero embeddings for SDXL, as diffusers).")
    var negativePrompt: String?
    @Option(help: "Pixels, a multiple of 8 (default: the init image's width, else the model's native size).")
    var width: Int?
    @Option(help: "Pixels, a multiple of 8.")
    var height: Int?
    @Option(help: "Sampling steps (default as diffusers' pipeline: 50; SD3 and FLUX 28).")
    var steps: Int?
    @Option(help: "Classifier-free guidance scale (diffusers' guidance_scale; 1 turns guidance off). Default 7.5, SDXL 5, SD3 7, DiT 4. FLUX.1-dev: the embedded guidance, default 3.5.")
    var cfgScale: Float?
    @Option(help: "Guidance rescale in [0, 1] (txt2img).")
    var guidanceRescale: Float = 0
    @Option(help: "Sampler: \(SamplerName.allCases.map(\.rawValue).joined(separator: ", ")) (default: the model's scheduler).")
    var sampler: String?
    @Option(help: "Sigma spacing: default, karras or exponential (default: the model's scheduler config).")
    var scheduler: String?
    @Option(help: "Seed of torch.Generator(\"cpu\").manual_seed (default: random, recorded in the PNG).")
    var seed: UInt64?
    @Option(help: "Random number generator: torch (torch.randn on a CPU generator, bit for bit).")
    var rng = "torch"
    @Option(help: "img2img / inpainting source image (PNG).")
    var initImage: String?
    @Option(help: "How much of the schedule img2img/inpainting runs, in [0, 1] (default 0.8 img2img, 1.0 inpainting).")
    var strength: Float?
    @Option(help: "Inpainting mask (PNG, same size as the init image): white is repainted.")
    var mask: String?
    @Option(help: "Images generated together from one seed (diffusers' num_images_per_prompt).")
    var batchCount = 1
    @Option(help: "vulkan or cpu.")
    var backend = "vulkan"
    @OptionGroup var deviceOptions: DeviceOptions
    @Option(help: "Weights and activations on the device: f16 or f32 (the CPU backend computes in f32).")
    var dtype = "f16"
    @Option(help: "SD3 and FLUX: T5 prompt tokens (diffusers' max_sequence_length; default 256 for SD3 and FLUX.1-schnell, 512 for FLUX.1-dev).")
    var maxSequenceLength: Int?
    @Flag(help: "SD3: leave the T5 encoder out (T5's states zero, diffusers' text_encoder_3=None).")
    var withoutT5 = false
    @Option(help: "Output PNG; %d (or %03d) is replaced by the image's index in its batch.")
    var output = "kiln-%d.png"
    @Option(help: "Also write the final latents [B, C, h, w] (f32, tensor 'latents') to this .safetensors file.")
    var saveLatents: String?
    @Flag(help: "No progress on stderr.")
    var quiet = false
    @Flag(help: "Print a JSON summary on stdout.")
    var json = false

    func run() throws {
        do {
            try generate()
        } catch let error as CommandFailure {
            printError("kiln generate: \(error.message)")
            throw ExitCode(error.exitCode)
        } catch {
            printError("kiln generate: \(error)")
            throw ExitCode.failure
        }
    }

    private func generate() throws {
        let settings = try resolvedSettings()
        let (chosenBackend, device, driver) = try Self.backend(named: backend, selector: deviceOptions.device)
        let storage: DType = backend == "cpu" ? .float32 : settings.dtype

        let modelURL = URL(fileURLWithPath: model)
        if isDiTModel {
            return try generateDiT(settings, backend: chosenBackend, storage: storage, device: device, driver: driver)
        }
        if !classLabel.isEmpty {
            throw CommandFailure.badInput("--class-label is for class-conditional models (DiT); this model takes --prompt")
        }
        guard let prompt else { throw CommandFailure.badInput("--prompt is required for a text-to-image model") }
        if StableDiffusion3Folder.pipelineClass(of: config.map(URL.init(fileURLWithPath:)) ?? modelURL)?.hasPrefix("StableDiffusion3") == true {
            return try generateSD3(settings, prompt: prompt, modelURL: modelURL, backend: chosenBackend, storage: storage, device: device, driver: driver)
        }
        if let flux = try Self.fluxModel(model: modelURL, config: config.map(URL.init(fileURLWithPath:))) {
            if withoutT5 { throw CommandFailure.badInput("--without-t5 applies to SD3 models only (FLUX needs its T5)") }
            return try generateFlux(folder: flux.folder, transformerFile: flux.transformerFile, prompt: prompt, settings: settings,
                                    backend: chosenBackend, device: device, driver: driver)
        }
        try rejectSD3Options()
        let pipeline: StableDiffusionPipeline
        do {
            pipeline = try StableDiffusionPipeline(
                url: modelURL, configFolder: config.map(URL.init(fileURLWithPath:)), vae: vae.map(URL.init(fileURLWithPath:)),
                inpaintingUNet: inpaintingUnet.map(URL.init(fileURLWithPath:)), backend: chosenBackend, dtype: storage)
        } catch {
            throw CommandFailure.badInput("--model \(model): \(error)")
        }

        let request = try makeRequest(settings, prompt: prompt, pipeline: pipeline)
        do {
            try pipeline.check(request)
        } catch {
            throw CommandFailure.badInput("\(error)")
        }
        let outputs = (0..<request.batchCount).map { outputPath(index: $0) }
        let modelHash = try? ModelHashCache.sha256(of: modelURL)

        let result = try runWithProgress { report in try pipeline.generate(request, progress: report, isCancelled: { false }) }
        try saveLatentsIfAsked(result.latents)
        for (index, path) in outputs.enumerated() {
            let metadata = GenerationMetadata(
                prompt: request.prompt, negativePrompt: request.negativePrompt, mode: request.mode.rawValue,
                width: request.width, height: request.height, steps: request.steps, cfgScale: request.guidanceScale,
                guidanceRescale: request.guidanceRescale, sampler: samplerLabel(pipeline),
                scheduler: scheduler ?? "default", seed: request.seed, rng: rng, batchCount: request.batchCount, batchIndex: index,
                strength: request.mode == .textToImage ? nil : request.strength, model: Self.modelName(modelURL),
                modelSHA256: modelHash, backend: backend, dtype: storage.shortName, device: device, driver: driver)
            try ImageFiles.writeImage(result.images, index: index, to: URL(fileURLWithPath: path), metadata: metadata)
        }

        try finish(outputs: outputs, request: request, sampler: samplerLabel(pipeline), device: device,
                   stageSeconds: result.stageSeconds, denoisingSteps: result.timesteps.count)
    }

    // MARK: Settings

    struct Settings {
        var dtype: DType
        var sampler: SamplerName?
        var spacing: SigmaSpacing?
    }

    /// Everything that can be checked without opening the model.
    private func resolvedSettings() throws -> Settings {
        guard backend == "vulkan" || backend == "cpu" else { throw CommandFailure.badInput("--backend must be vulkan or cpu, got '\(backend)'") }
        guard let storage = DType.allCases.first(where: { $0.shortName == dtype }), storage == .float16 || storage == .float32 else {
            throw CommandFailure.badInput("--dtype must be f16 or f32, got '\(dtype)'")
        }
        guard rng == "torch" else { throw CommandFailure.badInput("--rng must be torch, got '\(rng)'") }
        let samplerName: SamplerName?
        let spacing: SigmaSpacing?
        do {
            samplerName = try sampler.map(SamplerName.init(parsing:))
        } catch {
            throw CommandFailure.badInput("--sampler '\(sampler ?? "")': \(error)")
        }
        do {
            spacing = try scheduler.map(SigmaSpacing.init(parsing:))
        } catch {
            throw CommandFailure.badInput("--scheduler '\(scheduler ?? "")': \(error)")
        }
        if let steps, steps <= 0 { throw CommandFailure.badInput("--steps \(steps): must be at least 1") }
        if batchCount <= 0 { throw CommandFailure.badInput("--batch-count \(batchCount): must be at least 1") }
        if let strength, !(0...1).contains(strength) { throw CommandFailure.badInput("--strength \(strength): must be in [0, 1]") }
        if strength != nil && initImage == nil { throw CommandFailure.badInput("--strength needs --init-image") }
        if mask != nil && initImage == nil { throw CommandFailure.badInput("--mask needs --init-image") }
        if batchCount > 1 && !output.contains("%") {
            throw CommandFailure.badInput("--output '\(output)' needs %d (the image's index) when --batch-count is \(batchCount)")
        }
        for (option, path) in [("--output", outputPath(index: 0)), ("--save-latents", saveLatents)] {
            guard let path else { continue }
            let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
            guard FileManager.default.isWritableFile(atPath: folder) else {
                throw CommandFailure.badInput("\(option) \(path): the folder \(folder) does not exist or is not writable")
            }
        }
        return Settings(dtype: storage, sampler: samplerName, spacing: spacing)
    }

    private func makeRequest(_ settings: Settings, prompt: String, pipeline: StableDiffusionPipeline) throws -> GenerationRequest {
        var initPixels: ShapedArray?
        var maskValues: ShapedArray?
        if let initImage {
            initPixels = try ImageFiles.readInitImage(URL(fileURLWithPath: initImage), option: "--init-image")
        }
        if let mask {
            maskValues = try ImageFiles.readMask(URL(fileURLWithPath: mask), option: "--mask")
        }
        // diffusers' default size: the U-Net's sample_size in pixels.
        let familySize = [StableDiffusionFamily.sd1: 512, .sd2: 768, .sdxl: 1024][pipeline.checkpoint.family] ?? 512
        let nativeSize = pipeline.checkpoint.unet.configuration.sampleSize.map { $0 * pipeline.downscaleFactor } ?? familySize
        let imageWidth = initPixels?.shape[3], imageHeight = initPixels?.shape[2]
        let requestWidth = width ?? imageWidth ?? nativeSize
        let requestHeight = height ?? imageHeight ?? nativeSize
        if let imageWidth, let imageHeight, imageWidth != requestWidth || imageHeight != requestHeight {
            throw CommandFailure.badInput("--init-image \(initImage!) is \(imageWidth)x\(imageHeight) but the size asked is \(requestWidth)x\(requestHeight)")
        }
        if let maskValues, let imageWidth, let imageHeight, maskValues.shape[3] != imageWidth || maskValues.shape[2] != imageHeight {
            throw CommandFailure.badInput("--mask \(mask!) is \(maskValues.shape[3])x\(maskValues.shape[2]); it must be the init image's size, \(imageWidth)x\(imageHeight)")
        }
        let mode: GenerationRequest.Mode = maskValues != nil ? .inpainting : (initPixels != nil ? .imageToImage : .textToImage)
        let defaultGuidance: Float = pipeline.checkpoint.family == .sdxl ? 5.0 : 7.5
        var request = GenerationRequest(
            prompt: prompt, negativePrompt: negativePrompt, width: requestWidth, height: requestHeight, steps: steps ?? 50,
            guidanceScale: cfgScale ?? defaultGuidance, guidanceRescale: guidanceRescale, sampler: settings.sampler,
            sigmaSpacing: settings.spacing, seed: seed ?? UInt64.random(in: 0...UInt64(UInt32.max)), batchCount: batchCount,
            mode: mode, strength: strength, initImage: initPixels, mask: maskValues)
        request.initImage = initPixels
        return request
    }

    /// `--output` with the batch index substituted for `%d` / `%0Nd`.
    func outputPath(index: Int) -> String {
        guard let range = output.range(of: #"%0?[0-9]*d"#, options: .regularExpression) else { return output }
        let pattern = String(output[range])
        let width = Int(pattern.dropFirst().dropLast()) ?? 0
        let digits = String(index)
        let padded = String(repeating: "0", count: max(0, width - digits.count)) + digits
        return output.replacingCharacters(in: range, with: padded)
    }

    /// The sampler's CLI name, also when it is the model's own scheduler class.
    func samplerLabel(_ pipeline: StableDiffusionPipeline) -> String {
        if let sampler { return sampler.lowercased() }
        let kind = try? SchedulerKind.named(in: pipeline.schedulerConfiguration)
        return SamplerName.allCases.first { $0.kind == kind }?.rawValue ?? pipeline.schedulerConfiguration.className ?? "unknown"
    }

    static func modelName(_ url: URL) -> String {
        url.deletingPathExtension().lastPathComponent
    }

    static func backend(named name: String, selector: String?) throws -> (Backend, String, String?) {
        if name == "cpu" { return (CPUBackend(), "cpu", nil) }
        do {
            let vulkan = try VulkanBackend(selector: selector)
            let info = vulkan.device.info
            return (vulkan, info.name, "\(info.driverName) \(info.driverInfo)")
        } catch {
            throw CommandFailure.badInput("--device \(selector ?? "(default)"): \(error)")
        }
    }

    struct Summary: Encodable {
        let outputs: [String]
        let latents: String?
        let seed: UInt64
        let steps: Int
        let width: Int
        let height: Int
        let sampler: String
        let device: String
        let seconds: [String: Double]
        let secondsPerStep: Double
        enum CodingKeys: String, CodingKey {
            case outputs, latents, seed, steps, width, height, sampler, device, seconds
            case secondsPerStep = "seconds_per_step"
        }
    }
}

/// A failure the command reports in one line and turns into its exit code: 2 for bad input
/// (checked before any work), 1 for a failure while working.
struct CommandFailure: Error {
    let message: String
    let exitCode: Int32

    static func badInput(_ message: String) -> CommandFailure { CommandFailure(message: message, exitCode: 2) }
    static func failed(_ message: String) -> CommandFailure { CommandFailure(message: message, exitCode: 1) }
}
