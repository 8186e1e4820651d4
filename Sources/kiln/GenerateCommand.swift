import ArgumentParser
import Foundation
import Kiln

/// `kiln generate`: one request through any model's pipeline — open, defaults, request, check,
/// generate, write — with PNGs that carry their parameters. What a model cannot do is refused
/// by its pipeline's check; bad input exits 2 before any work, a failure while working exits 1.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Make images from a prompt (and an init image and mask), or from class labels with a class-conditional model.")

    @Option(help: "A diffusers model folder, or a single .safetensors checkpoint (then usually also --config). Default: Kiln's built-in model (kiln models).")
    var model: String?
    @Option(help: "For a single-file checkpoint: a diffusers folder of the same family supplying configs, tokenizers and scheduler.")
    var config: String?
    @Option(help: "Stable Diffusion: a VAE to use instead of the model's (a diffusers vae folder or a .safetensors file).")
    var vae: String?
    @Option(help: "Stable Diffusion: a 9-channel inpainting U-Net folder used when --mask is given.")
    var inpaintingUnet: String?
    @Option(help: "The prompt (text-to-image models).")
    var prompt: String?
    @Option(parsing: .upToNextOption, help: "Class-conditional models (DiT): class labels, one image per label (e.g. ImageNet ids 0-999).")
    var classLabel: [Int] = []
    @Option(help: "Without it: diffusers' negative_prompt=None (an empty prompt; zero embeddings for SDXL).")
    var negativePrompt: String?
    @Option(help: "Pixels (default: the init image's width, else the model's native size).")
    var width: Int?
    @Option(help: "Pixels (default: the init image's height, else the model's native size).")
    var height: Int?
    @Option(help: "Sampling steps (default: the family's, as diffusers' pipeline: 50; SD3 and FLUX 28).")
    var steps: Int?
    @Option(help: "Guidance scale (diffusers' guidance_scale; 1 turns classifier-free guidance off). Default 7.5, SDXL 5, SD3 7, DiT 4; FLUX.1-dev's embedded guidance, default 3.5.")
    var cfgScale: Float?
    @Option(help: "Guidance rescale in [0, 1] (Stable Diffusion text-to-image).")
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
    @Option(help: "How much of the schedule img2img/inpainting runs, in [0, 1] (default: the family's, as diffusers).")
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
    @Option(help: "A LoRA (kohya, diffusers/PEFT, LoCon, LoHa, LoKr, FLUX's BFL and XLabs files) merged at WEIGHT (default 1): PATH[:WEIGHT], repeatable.")
    var lora: [String] = []
    @Option(help: "A folder of LoRAs: <lora:name:weight> tags in the prompt name files in it (A1111's syntax; without it tags are prompt text).")
    var loraDir: String?
    @Option(help: "How the prompt is read: literal (as diffusers) or a1111 ((word), (word:1.3), [word], BREAK, more than 75 tokens).")
    var promptSyntax = "literal"
    @Option(help: "Decode the final image (and previews) with this tiny autoencoder instead of the VAE: much faster, lower quality. TAESD: a diffusers AutoencoderTiny folder or a taesd*_decoder.safetensors file (taesd, taesdxl, taesd3, taef1).")
    var taesd: String?
    @Option(help: "Write a preview PNG of the image being denoised to this path (TAESD with --taesd, else the latents' linear RGB projection).")
    var preview: String?
    @Option(help: "With --preview: write it every N steps (and after the last).")
    var previewEvery = 1
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
        let device = try CommandFailure.mapping { try BackendChoice.open(backend, device: deviceOptions.device) }
        let pipeline = try CommandFailure.mapping {
            try Pipelines.open(
                model.map(URL.init(fileURLWithPath:)) ?? DefaultModel.requiredLocation(), config: config.map(URL.init(fileURLWithPath:)), vae: vae.map(URL.init(fileURLWithPath:)),
                inpaintingUNet: inpaintingUnet.map(URL.init(fileURLWithPath:)), tinyAutoencoder: taesd.map(URL.init(fileURLWithPath:)),
                backend: device.backend, dtype: device.storage(settings.dtype))
        }
        let request = try makeRequest(settings, defaults: pipeline.defaults)
        try CommandFailure.mapping { try pipeline.check(request) }
        if request.imageCount > 1 && !output.contains("%") {
            throw CommandFailure.badInput("--output '\(output)' needs %d (the image's index) for \(request.imageCount) images")
        }
        let outputs = (0..<request.imageCount).map { outputPath(index: $0) }
        let origin = GenerationMetadata.Origin(pipeline: pipeline, device: device)

        let bar = ProgressBar(enabled: !quiet)
        let previews = preview.map { PreviewWriter(path: $0, every: previewEvery) }
        let result = try CommandFailure.mapping {
            defer { bar.finish() }
            return try pipeline.generate(request, progress: { progress in
                bar.report(progress)
                previews?.report(progress)
            }, isCancelled: { false })
        }
        if let problem = previews?.problem { printError("kiln generate: \(problem)") }
        // Run under KILN_VALIDATE, a reported problem makes the result untrusted: nothing is written.
        let messages = ValidationReport.print(device.backend)
        if messages > 0 { throw CommandFailure.failed("the validation layer reported \(messages) messages; no image written") }
        if let saveLatents {
            let tensor = HostTensor(shape: Shape(result.latents.shape), scalars: result.latents.scalars)
            try SafeTensorsFile.write(["latents": tensor], to: URL(fileURLWithPath: saveLatents))
        }
        for (index, path) in outputs.enumerated() {
            var metadata = GenerationMetadata(result: result, index: index, pipeline: pipeline, origin: origin)
            // The prompt as written, LoRA tags included (the pipeline got it without them).
            if let prompt, loraDir != nil { metadata.prompt = prompt }
            try GeneratedImages.write(result, index: index, metadata: metadata, to: URL(fileURLWithPath: path))
        }
        try summarise(outputs: outputs, result: result, sampler: pipeline.samplerName(for: result.request), device: device.deviceName)
    }

    // MARK: Settings

    struct Settings {
        var dtype: DType
        var sampler: SamplerName?
        var spacing: SigmaSpacing?
        var loras: [LoRARequest]
        var promptSyntax: PromptSyntax
    }

    /// Everything that can be checked without opening the model.
    private func resolvedSettings() throws -> Settings {
        guard BackendChoice.kinds.contains(backend) else {
            throw CommandFailure.badInput("--backend must be \(BackendChoice.kinds.joined(separator: " or ")), got '\(backend)'")
        }
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
        let loras: [LoRARequest], syntax: PromptSyntax
        do {
            loras = try lora.map(LoRARequest.init(parsing:))
            syntax = try PromptSyntax(parsing: promptSyntax)
        } catch {
            throw CommandFailure.badInput("\(error)")
        }
        if let loraDir { _ = try CommandFailure.existingFolder(loraDir, option: "--lora-dir") }
        if previewEvery < 1 { throw CommandFailure.badInput("--preview-every must be at least 1, got \(previewEvery)") }
        if strength != nil && initImage == nil { throw CommandFailure.badInput("--strength needs --init-image") }
        if mask != nil && initImage == nil { throw CommandFailure.badInput("--mask needs --init-image") }
        if prompt != nil && !classLabel.isEmpty { throw CommandFailure.badInput("give --prompt or --class-label, not both") }
        for (option, path) in [("--output", outputPath(index: 0)), ("--save-latents", saveLatents), ("--preview", preview)] {
            guard let path else { continue }
            let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
            guard FileManager.default.isWritableFile(atPath: folder) else {
                throw CommandFailure.badInput("\(option) \(path): the folder \(folder) does not exist or is not writable")
            }
        }
        return Settings(dtype: storage, sampler: samplerName, spacing: spacing, loras: loras, promptSyntax: syntax)
    }

    /// The request from the options, every unset one at the model's default.
    private func makeRequest(_ settings: Settings, defaults: GenerationDefaults) throws -> GenerationRequest {
        let conditioning: GenerationRequest.Conditioning
        var loraTags: [LoRARequest] = []
        if !classLabel.isEmpty {
            conditioning = .classLabels(classLabel)
        } else if var prompt {
            var tagged: [LoRARequest] = []
            if let loraDir {
                do {
                    (prompt, tagged) = try LoRAPromptTags.requests(from: prompt, folder: URL(fileURLWithPath: loraDir))
                } catch {
                    throw CommandFailure.badInput("\(error)")
                }
            }
            conditioning = .prompt(prompt, negative: negativePrompt)
            loraTags = tagged
        } else {
            throw CommandFailure.badInput(defaults.takesClassLabels
                ? "this model is class-conditional: give --class-label N [N ...]" : "--prompt is required")
        }
        var request = defaults.request(conditioning, seed: seed ?? UInt64.random(in: 0...UInt64(UInt32.max)))
        if let initImage {
            let image = try ImageFiles.read(initImage, option: "--init-image", as: InputImages.initImage)
            request.width = image.shape[3]
            request.height = image.shape[2]
            if let mask {
                request.mode = defaults.inpainting(image, mask: try ImageFiles.read(mask, option: "--mask", as: InputImages.mask), strength: strength)
            } else {
                request.mode = defaults.imageToImage(image, strength: strength)
            }
        }
        request.width = width ?? request.width
        request.height = height ?? request.height
        request.steps = steps ?? request.steps
        request.guidanceScale = cfgScale ?? request.guidanceScale
        request.sampler = settings.sampler
        request.sigmaSpacing = settings.spacing
        request.batchCount = batchCount
        request.options = GenerationRequest.Options(
            maxSequenceLength: maxSequenceLength, withoutT5: withoutT5, guidanceRescale: guidanceRescale, loras: settings.loras + loraTags,
            promptSyntax: settings.promptSyntax, decodesWithTinyAutoencoder: taesd != nil)
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

    // MARK: Summary

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
        let loras: [AppliedLoRA]
        enum CodingKeys: String, CodingKey {
            case outputs, latents, seed, steps, width, height, sampler, device, seconds, loras
            case secondsPerStep = "seconds_per_step"
        }
    }

    /// One JSON object on stdout with `--json`, else one line on stderr unless `--quiet`.
    private func summarise(outputs: [String], result: GenerationResult, sampler: String, device: String) throws {
        let request = result.request
        let summary = Summary(
            outputs: outputs, latents: saveLatents, seed: request.seed, steps: request.steps, width: request.width, height: request.height,
            sampler: sampler, device: device, seconds: result.stageSeconds.reduce(into: [:]) { $0[$1.key.rawValue] = $1.value },
            secondsPerStep: (result.stageSeconds[.denoising] ?? 0) / Double(max(result.timesteps.count, 1)), loras: result.loras)
        if json {
            try printJSON(summary)
        } else if !quiet {
            printError("wrote \(outputs.joined(separator: ", ")) (seed \(request.seed))")
        }
    }
}
