import Foundation
import Kiln
import KilnVerification
import Testing

/// A whole FluxPipeline (dev-style: CLIP pooled + T5 states, embedded guidance, 16-channel VAE
/// with shift factor) against diffusers' run on the same tiny models
/// (Tests/Fixtures/generate_flux_pipeline_fixtures.py, case `full`): CLIP and T5 ids, both text
/// encoders' outputs, the final latents `[B, 16, h, w]` and the decoded images, on the CPU and on
/// Vulkan with f32 storage (1e-3) and f16 (2e-2), relative to the largest magnitude.
@Suite(.serialized) struct FluxFullPipelineTests {
    static let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("flux/full")
    static let vulkan: Result<VulkanBackend, Error> = Result { try VulkanBackend() }

    struct Case: Decodable {
        let prompts: [String]
        let seed: UInt64
        let width: Int
        let height: Int
        let steps: Int
        let guidance: Float
        let maxSequenceLength: Int
        let img2imgSteps: Int
        let img2imgStrength: Float
        let inpaintSteps: Int
        let inpaintStrength: Float

        enum CodingKeys: String, CodingKey {
            case prompts, seed, width, height, steps, guidance
            case maxSequenceLength = "max_sequence_length"
            case img2imgSteps = "img2img_steps"
            case img2imgStrength = "img2img_strength"
            case inpaintSteps = "inpaint_steps"
            case inpaintStrength = "inpaint_strength"
        }
    }

    nonisolated(unsafe) private static var assembled: URL?
    private static let lock = NSLock()

    /// The `full` folder completed with SD1's tiny CLIP text encoder and its tokenizer (vocab.json
    /// and merges.txt follow from the committed CLIP merges) and the T5 tokenizer fixture, linked
    /// rather than copied.
    static func modelFolder() throws -> URL {
        lock.lock()
        defer { lock.unlock() }
        if let assembled { return assembled }
        let manager = FileManager.default
        let folder = manager.temporaryDirectory.appendingPathComponent("kiln-flux-full-\(UUID().uuidString)")
        try manager.createDirectory(at: folder, withIntermediateDirectories: true)
        for entry in try manager.contentsOfDirectory(atPath: fixtures.path) {
            try manager.createSymbolicLink(at: folder.appendingPathComponent(entry), withDestinationURL: fixtures.appendingPathComponent(entry))
        }
        try manager.createSymbolicLink(at: folder.appendingPathComponent("tokenizer_2"),
                                       withDestinationURL: PipelineFixtures.models.appendingPathComponent("t5_tokenizer/tokenizer"))
        let sd1 = PipelineFixtures.models.appendingPathComponent("sd/sd1/diffusers")
        try manager.createSymbolicLink(at: folder.appendingPathComponent("text_encoder"), withDestinationURL: sd1.appendingPathComponent("text_encoder"))
        let tokenizer = folder.appendingPathComponent("tokenizer")
        try manager.copyItem(at: sd1.appendingPathComponent("tokenizer"), to: tokenizer)
        let merges = PipelineFixtures.models.appendingPathComponent("clip/merges.txt")
        try manager.copyItem(at: merges, to: tokenizer.appendingPathComponent("merges.txt"))
        try JSONSerialization.data(withJSONObject: CLIPTokenizer.vocabulary(fromMerges: CLIPTokenizer.readMerges(at: merges)))
            .write(to: tokenizer.appendingPathComponent("vocab.json"))
        assembled = folder
        return folder
    }

    static func fixture() throws -> (Case, SafeTensorsFile) {
        (try JSONDecoder().decode(Case.self, from: Data(contentsOf: fixtures.appendingPathComponent("case.json"))),
         try SafeTensorsFile(url: fixtures.appendingPathComponent("records.safetensors")))
    }

    static func expectClose(_ actual: ShapedArray, _ expected: HostTensor, _ tolerance: Float, _ label: String) {
        #expect(actual.shape == expected.shape.dimensions, "\(label): shape \(actual.shape) vs \(expected.shape)")
        let error = Verification.compare(HostTensor(shape: Shape(actual.shape), scalars: actual.scalars), expected)
        print("flux full \(label): relative error \(error.relative)")
        #expect(error.relative <= tolerance, "\(label): relative error \(error.relative) > \(tolerance)")
    }

    /// The fixture's settings as a request for its first prompt.
    static func request(_ settings: Case, steps: Int? = nil, seed: UInt64? = nil, mode: GenerationRequest.Mode = .textToImage) -> GenerationRequest {
        GenerationRequest(prompt: settings.prompts[0], mode: mode, width: settings.width, height: settings.height, steps: steps ?? settings.steps,
                          guidanceScale: settings.guidance, seed: seed ?? settings.seed, batchCount: 2,
                          options: .init(maxSequenceLength: settings.maxSequenceLength))
    }

    @Test func tokenIDsMatchTransformers() throws {
        let (settings, records) = try Self.fixture()
        let pipeline = try FluxPipeline(folder: Self.modelFolder(), backend: CPUBackend(), dtype: .float32)
        let ids = try pipeline.tokenIDs(settings.prompts, maxSequenceLength: settings.maxSequenceLength)
        #expect(ids.clip == (try records.tensor("clip_ids")).integers)
        // The second prompt is longer than 16 T5 tokens: truncated with </s> kept.
        #expect(ids.t5 == (try records.tensor("t5_ids")).integers)
    }

    @Test func generateFromOnePromptMatchesNumImagesPerPrompt() throws {
        let (settings, records) = try Self.fixture()
        let folder = try Self.modelFolder()
        let gpu = try Self.vulkan.get()
        for (backend, dtype, tolerance) in [(CPUBackend() as Backend, DType.float32, Float(1e-3)), (gpu, .float16, 2e-2)] {
            let pipeline = try FluxPipeline(folder: folder, backend: backend, dtype: dtype)
            let result = try pipeline.generate(Self.request(settings))
            Self.expectClose(result.latents, try records.tensor("single_prompt_final_latents"), tolerance, "\(backend.name) \(dtype.shortName) one prompt x2")
            #expect(result.images.shape == [2, 3, settings.height, settings.width])
        }
        #expect(gpu.device.instance.validationMessages.all.isEmpty)
    }

    /// FluxImg2ImgPipeline: the SD pipelines' init image (as diffusers preprocessed it), its
    /// posterior sample and the noise drawn in diffusers' order, the schedule cut by strength.
    @Test func imageToImageMatchesFluxImg2ImgPipeline() throws {
        let (settings, records) = try Self.fixture()
        let folder = try Self.modelFolder()
        let initImage = ShapedArray(try PipelineFixtures.records().tensor("inputs.init_image"))
        let gpu = try Self.vulkan.get()
        for (backend, dtype, tolerance) in [(CPUBackend() as Backend, DType.float32, Float(1e-3)), (gpu, .float16, 2e-2)] {
            let pipeline = try FluxPipeline(folder: folder, backend: backend, dtype: dtype)
            let request = Self.request(settings, steps: settings.img2imgSteps,
                                       mode: .imageToImage(image: initImage, strength: settings.img2imgStrength))
            let result = try pipeline.generate(request)
            #expect(result.timesteps.count == 3, "int(4 - 4 * 0.6) = 1 step skipped")
            Self.expectClose(result.latents, try records.tensor("img2img_final_latents"), tolerance, "\(backend.name) \(dtype.shortName) img2img")
        }
        #expect(gpu.device.instance.validationMessages.all.isEmpty)
        let pipeline = try FluxPipeline(folder: folder, backend: CPUBackend(), dtype: .float32)
        for strength: Float in [0, -0.5, 1.5] {
            #expect(throws: PipelineError.self, "strength \(strength)") {
                try pipeline.check(Self.request(settings, steps: 4, mode: .imageToImage(image: initImage, strength: strength)))
            }
        }
    }

    /// FluxInpaintPipeline: the kept region re-noised to each next step's level and pasted back
    /// in packed form; the mask as the SD pipelines' fixtures recorded diffusers' preprocessing.
    @Test func inpaintingMatchesFluxInpaintPipeline() throws {
        let (settings, records) = try Self.fixture()
        let folder = try Self.modelFolder()
        let sdRecords = try PipelineFixtures.records()
        let (initImage, mask) = (ShapedArray(try sdRecords.tensor("inputs.init_image")), ShapedArray(try sdRecords.tensor("inputs.mask")))
        let gpu = try Self.vulkan.get()
        for (backend, dtype, tolerance) in [(CPUBackend() as Backend, DType.float32, Float(1e-3)), (gpu, .float16, 2e-2)] {
            let pipeline = try FluxPipeline(folder: folder, backend: backend, dtype: dtype)
            let request = Self.request(settings, steps: settings.inpaintSteps,
                                       mode: .inpainting(image: initImage, mask: mask, strength: settings.inpaintStrength))
            let result = try pipeline.generate(request)
            Self.expectClose(result.latents, try records.tensor("inpaint_final_latents"), tolerance, "\(backend.name) \(dtype.shortName) inpaint")
        }
        #expect(gpu.device.instance.validationMessages.all.isEmpty)
        // Without the mask it is image-to-image, a different result.
        let pipeline = try FluxPipeline(folder: folder, backend: CPUBackend(), dtype: .float32)
        let plain = try pipeline.generate(Self.request(settings, steps: settings.inpaintSteps,
                                                       mode: .imageToImage(image: initImage, strength: settings.inpaintStrength)))
        #expect(Verification.compare(HostTensor(shape: Shape(plain.latents.shape), scalars: plain.latents.scalars),
                                     try records.tensor("inpaint_final_latents")).relative > 1e-2)
    }

    /// Python multiplies the strength's decimal value in f64: 5 x 0.6 = 3.0 skips 2 steps (f32's
    /// 0.6000000238 would give 3.0000001 and skip 1); 4 x 0.6 = 2.4 skips 1.
    @Test func strengthCutsTheScheduleAsPythonDoes() throws {
        let (settings, _) = try Self.fixture()
        let pipeline = try FluxPipeline(folder: Self.modelFolder(), backend: CPUBackend(), dtype: .float32)
        let image = ShapedArray(repeating: 0, shape: [1, 3, settings.height, settings.width])
        for (steps, strength, skipped) in [(5, Float(0.6), 2), (4, 0.6, 1), (10, 0.3, 7), (28, 1, 0), (3, 0.1, 2)] {
            var reports = 0
            _ = try pipeline.generate(Self.request(settings, steps: steps, mode: .imageToImage(image: image, strength: strength)),
                                      progress: { if $0.stage == .denoising { reports += 1 } }, isCancelled: { false })
            #expect(reports == steps - skipped, "\(steps) steps at strength \(strength)")
        }
    }

    @Test func weightsThatCannotFitAreRefusedBeforeAnyWork() throws {
        let folder = try Self.modelFolder()
        let open = { (capacity: Int) in try FluxPipeline(folder: folder, backend: PipelineBehaviourTests.SmallBackend(capacity: capacity), dtype: .float16) }
        do {
            _ = try open(300_000)
            Issue.record("a 300 kB device accepted the model")
        } catch let PipelineError.insufficientMemory(message) {
            for part in ["transformer", "text encoders", "vae", "300000-byte test device"] { #expect(message.contains(part), "\(message)") }
        }
        // Sequential encoders and transformer fit where keeping both resident does not.
        #expect(try open(1 << 20).keepsTextEncodersResident == false)
        #expect(try open(1 << 30).keepsTextEncodersResident)
    }

    @Test func reportsEveryStageAndStopsWhenCancelled() throws {
        let (settings, _) = try Self.fixture()
        let folder = try Self.modelFolder()
        let backend = CPUBackend()
        let pipeline = try FluxPipeline(folder: folder, backend: backend, dtype: .float32)
        let request = Self.request(settings, steps: 3, seed: 1)
        var reports: [GenerationProgress] = []
        _ = try pipeline.generate(request, progress: { reports.append($0) }, isCancelled: { false })
        #expect(reports.map(\.stage) == [.encodingText, .denoising, .denoising, .denoising, .decoding])
        #expect(reports.filter { $0.stage == .denoising }.map(\.step) == [1, 2, 3])
        #expect(reports.allSatisfy { $0.stepCount == 3 })

        var steps = 0
        #expect(throws: PipelineError.cancelled) {
            _ = try pipeline.generate(request, progress: { if $0.stage == .denoising { steps += 1 } }, isCancelled: { steps >= 2 })
        }
        #expect(steps == 2)
    }

    @Test func aTransformerFileDecidesItsOwnConfiguration() throws {
        let folder = try Self.modelFolder()
        let schnell = Self.fixtures.deletingLastPathComponent().appendingPathComponent("schnell/transformer/diffusion_pytorch_model.safetensors")
        let pipeline = try FluxPipeline(folder: folder, singleFile: schnell, backend: CPUBackend(), dtype: .float32)
        #expect(!pipeline.model.configuration.guidanceEmbeds)
        #expect(pipeline.model.configuration.pooledProjectionDimension == 16)
        let original = try FluxPipeline(folder: folder, singleFile: folder.appendingPathComponent("all_in_one.safetensors"),
                                        backend: CPUBackend(), dtype: .float32)
        #expect(try original.model.configuration == FluxTransformerConfiguration.load(folder.appendingPathComponent("transformer/config.json")))
    }

    /// ComfyUI's all-in-one layout: every component the file carries reads, under the names the
    /// models use, exactly the folder's weights; CLIP-L, which it lacks, is nil.
    @Test func allInOneFileCarriesTransformerVAEAndT5() throws {
        let folder = try Self.modelFolder()
        let file = try FluxSingleFile(url: folder.appendingPathComponent("all_in_one.safetensors"))
        #expect(file.hasTransformer)
        #expect(file.clip == nil)
        let pairs: [(TensorSource, TensorSource, String)] = [
            (try file.transformer(), try SafeTensorsSource.component(folder: folder.appendingPathComponent("transformer"), baseName: "diffusion_pytorch_model"), "transformer"),
            (try #require(file.vae), try SafeTensorsSource.component(folder: folder.appendingPathComponent("vae"), baseName: "diffusion_pytorch_model"), "vae"),
            (try #require(file.t5), try SafeTensorsSource.component(folder: folder.appendingPathComponent("text_encoder_2"), baseName: "model"), "t5"),
        ]
        for (fromFile, fromFolder, label) in pairs {
            // transformers saves T5's tied embedding twice; the file keeps `shared.weight` only.
            #expect(Set(fromFile.names) == Set(fromFolder.names).subtracting(["encoder.embed_tokens.weight"]), "\(label)")
            for name in fromFile.names {
                let a = try fromFile.load(name), b = try fromFolder.load(name)
                #expect(a.shape == b.shape && a.scalars == b.scalars, "\(label) \(name)")
            }
        }
    }

    /// CLIP-L under `text_encoders.clip_l.transformer.` (the fixture file leaves it out for size):
    /// written here from SD1's tiny CLIP, read back under transformers' names.
    @Test func allInOneFileCarriesCLIP() throws {
        let folder = try Self.modelFolder()
        let clip = try SafeTensorsSource.component(folder: folder.appendingPathComponent("text_encoder"), baseName: "model")
        var tensors: [String: HostTensor] = [:]
        for name in clip.names { tensors["text_encoders.clip_l.transformer." + name] = try clip.load(name) }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-flux-clip-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: scratch) }
        try SafeTensorsFile.write(tensors, to: scratch)
        let file = try FluxSingleFile(url: scratch)
        #expect(!file.hasTransformer && file.vae == nil && file.t5 == nil)
        let read = try #require(file.clip)
        #expect(read.names == clip.names)
        for name in clip.names { #expect(try read.load(name).scalars == clip.load(name).scalars, "\(name)") }
        #expect(throws: ConfigurationError.self) { _ = try file.transformer() }
    }

    @Test func defaultSequenceLengthFollowsTheVariant() throws {
        let folder = try Self.modelFolder()
        let pipeline = try FluxPipeline(folder: folder, backend: CPUBackend(), dtype: .float32)
        #expect(pipeline.defaults.maxSequenceLength == 512)
        var request = pipeline.defaults.request(.prompt("x", negative: nil))
        request.options.maxSequenceLength = 513
        #expect(throws: PipelineError.self) { try pipeline.check(request) }
        request.options.maxSequenceLength = nil
        request.width = 1000
        #expect(throws: PipelineError.self) { try pipeline.check(request) }
        request.width = 1024
        request.conditioning = .prompt("x", negative: "y")
        #expect(throws: PipelineError.self) { try pipeline.check(request) }
    }

    @Test func textEncodersLoopAndDecoderMatchFluxPipeline() throws {
        let (settings, records) = try Self.fixture()
        let folder = try Self.modelFolder()
        let gpu = try Self.vulkan.get()
        for (backend, dtype, tolerance) in [(CPUBackend() as Backend, DType.float32, Float(1e-3)), (gpu, .float32, 1e-3), (gpu, .float16, 2e-2)] {
            let label = "\(backend.name) \(dtype.shortName)"
            let pipeline = try FluxPipeline(folder: folder, backend: backend, dtype: dtype)
            let (states, pooled) = try pipeline.encode(settings.prompts, maxSequenceLength: settings.maxSequenceLength)
            Self.expectClose(pooled, try records.tensor("pooled_prompt_embeds"), tolerance, "\(label) pooled")
            Self.expectClose(states, try records.tensor("prompt_embeds"), tolerance, "\(label) T5 states")

            let latents = try pipeline.denoise(Self.request(settings), textStates: states, pooled: pooled)
            Self.expectClose(latents, try records.tensor("final_latents"), tolerance, "\(label) final latents")

            // diffusers' "pt" output: [-1, 1] mapped to [0, 1] and clamped.
            let images = try pipeline.decode(latents).map { min(max($0 / 2 + 0.5, 0), 1) }
            Self.expectClose(images, try records.tensor("images"), tolerance, "\(label) images")
        }
        #expect(gpu.device.instance.validationMessages.all.isEmpty)
    }
}
