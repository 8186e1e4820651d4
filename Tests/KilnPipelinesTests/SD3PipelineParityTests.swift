import Foundation
import Kiln
import KilnVerification
import Testing

/// Whole SD3 generations against diffusers' `StableDiffusion3Pipeline` on the tiny model
/// Tests/Fixtures/generate_sd3_pipeline_fixtures.py recorded, with T5 (negative prompt; a batch of
/// two with the prompt truncated to 8 T5 tokens) and without it (`text_encoder_3=None`: negative
/// prompt, batch of two with a short sequence, no guidance with a non-square latent). Final
/// latents (--save-latents) and decoded images are compared relative to diffusers' largest magnitude.
@Suite(.serialized) struct SD3PipelineParityTests {
    struct Case: Decodable, CustomStringConvertible, Sendable {
        let name: String
        let prompt: String
        let negativePrompt: String?
        let width: Int
        let height: Int
        let steps: Int
        let cfgScale: Float
        let seed: UInt64
        let batchCount: Int
        let maxSequenceLength: Int
        /// Whether diffusers ran with the T5 encoder (else `text_encoder_3=None`).
        let t5: Bool
        let latentShape: [Int]

        var description: String { name }

        enum CodingKeys: String, CodingKey {
            case name, prompt, width, height, steps, seed, t5
            case negativePrompt = "negative_prompt"
            case cfgScale = "cfg_scale"
            case batchCount = "batch_count"
            case maxSequenceLength = "max_sequence_length"
            case latentShape = "latent_shape"
        }

        var request: GenerationRequest {
            GenerationRequest(prompt: prompt, negativePrompt: negativePrompt, width: width, height: height, steps: steps,
                              guidanceScale: cfgScale, seed: seed, batchCount: batchCount,
                              options: .init(maxSequenceLength: maxSequenceLength, withoutT5: !t5))
        }
    }

    static let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("sd3")
    static let cases: [Case] = PipelineFixtures.cases(in: fixtures)
    static let vulkan: Result<VulkanBackend, Error> = Result { try VulkanBackend() }
    nonisolated(unsafe) static var pipelines: [String: StableDiffusion3Pipeline] = [:]
    nonisolated(unsafe) static var assembled: URL?

    /// The fixture's model folder made loadable: tokenizer vocabularies follow from the committed
    /// CLIP merges, text_encoder_2 is the SDXL fixture's CLIP-G and tokenizer_3 the T5 tokenizer
    /// fixture (linked, as the generator assembles them).
    static func modelFolder() throws -> URL {
        if let assembled { return assembled }
        let manager = FileManager.default
        let copy = manager.temporaryDirectory.appendingPathComponent("kiln-sd3-\(UUID().uuidString)")
        try manager.createDirectory(at: copy, withIntermediateDirectories: true)
        let source = fixtures.appendingPathComponent("model")
        let merges = PipelineFixtures.models.appendingPathComponent("clip/merges.txt")
        let vocabulary = try JSONSerialization.data(withJSONObject: CLIPTokenizer.vocabulary(fromMerges: try CLIPTokenizer.readMerges(at: merges)))
        for entry in try manager.contentsOfDirectory(atPath: source.path) {
            let from = source.appendingPathComponent(entry), to = copy.appendingPathComponent(entry)
            if entry.hasPrefix("tokenizer") {
                try manager.copyItem(at: from, to: to)
                try manager.copyItem(at: merges, to: to.appendingPathComponent("merges.txt"))
                try vocabulary.write(to: to.appendingPathComponent("vocab.json"))
            } else {
                try manager.createSymbolicLink(at: to, withDestinationURL: from)
            }
        }
        try manager.createSymbolicLink(
            at: copy.appendingPathComponent("text_encoder_2"),
            withDestinationURL: PipelineFixtures.models.appendingPathComponent("sd/sdxl/diffusers/text_encoder_2"))
        try manager.createSymbolicLink(
            at: copy.appendingPathComponent("tokenizer_3"),
            withDestinationURL: PipelineFixtures.models.appendingPathComponent("t5_tokenizer/tokenizer"))
        assembled = copy
        return copy
    }

    static func pipeline(backend: Backend, dtype: DType) throws -> StableDiffusion3Pipeline {
        let key = "\(backend.name)-\(dtype.shortName)"
        if let pipeline = pipelines[key] { return pipeline }
        let pipeline = try StableDiffusion3Pipeline(url: try modelFolder(), backend: backend, dtype: dtype)
        pipelines[key] = pipeline
        return pipeline
    }

    static func errors(_ testCase: Case, backend: Backend, dtype: DType) throws -> (latents: Float, decoded: Float) {
        let result = try pipeline(backend: backend, dtype: dtype).generate(testCase.request, isCancelled: { false })
        let records = try SafeTensorsFile(url: fixtures.appendingPathComponent("latents.safetensors"))
        let latents = try records.tensor("\(testCase.name).latents"), decoded = try records.tensor("\(testCase.name).decoded")
        #expect(result.latents.shape == latents.shape.dimensions, "\(testCase.name): latent shape \(result.latents.shape)")
        #expect(result.images.shape == decoded.shape.dimensions, "\(testCase.name): image shape \(result.images.shape)")
        let latentError = Verification.compare(HostTensor(shape: latents.shape, scalars: result.latents.scalars), latents).relative
        let imageError = Verification.compare(HostTensor(shape: decoded.shape, scalars: result.images.scalars), decoded).relative
        print("SD3 \(testCase.name) \(backend.name) \(dtype.shortName): latent error \(latentError), decoded error \(imageError)")
        return (latentError, imageError)
    }

    @Test("CPU: final latents and decoded images within 1e-3", arguments: cases)
    func cpu(_ testCase: Case) throws {
        let (latents, decoded) = try Self.errors(testCase, backend: CPUBackend(), dtype: .float32)
        #expect(latents <= 1e-3, "\(testCase.name): CPU latents off by \(latents)")
        #expect(decoded <= 1e-3, "\(testCase.name): CPU decoded image off by \(decoded)")
    }

    @Test("Vulkan: final latents and decoded images within 1e-3 (f32) and 2e-2 (f16)", arguments: cases)
    func vulkan(_ testCase: Case) throws {
        let gpu = try Self.vulkan.get()
        for (dtype, tolerance) in [(DType.float32, Float(1e-3)), (.float16, 2e-2)] {
            let (latents, decoded) = try Self.errors(testCase, backend: gpu, dtype: dtype)
            #expect(latents <= tolerance, "\(testCase.name): Vulkan \(dtype.shortName) latents off by \(latents)")
            #expect(decoded <= tolerance, "\(testCase.name): Vulkan \(dtype.shortName) decoded image off by \(decoded)")
        }
        #expect(gpu.device.instance.validationMessages.all.isEmpty, "validation messages: \(gpu.device.instance.validationMessages.all)")
    }

    /// The async form stops at the first step boundary once its task is cancelled.
    @Test func cancellation() async throws {
        let pipeline = try Self.pipeline(backend: CPUBackend(), dtype: .float32)
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await pipeline.generate(GenerationRequest(prompt: "x", width: 32, height: 24, steps: 2, options: .init(maxSequenceLength: 4)))
        }
        await #expect(throws: PipelineError.cancelled) { _ = try await task.value }
    }

    @Test func refusesWhatDiffusersWouldNot() throws {
        let pipeline = try Self.pipeline(backend: CPUBackend(), dtype: .float32)
        // 8 px is one latent pixel: not a whole 2x2 patch.
        #expect(throws: PipelineError.self) { try pipeline.check(GenerationRequest(prompt: "x", width: 34, height: 24, steps: 2)) }
        var request = GenerationRequest(prompt: "x", width: 32, height: 24, steps: 2)
        request.sampler = .eulerAncestral
        #expect(throws: PipelineError.self) { try pipeline.check(request) }
        #expect(throws: PipelineError.self) {
            try pipeline.check(GenerationRequest(prompt: "x", width: 32, height: 24, steps: 2, options: .init(maxSequenceLength: 0)))
        }
        #expect(throws: PipelineError.self) {
            try pipeline.check(GenerationRequest(prompt: "x", width: 32, height: 24, steps: 2, options: .init(guidanceRescale: 0.5)))
        }
        #expect(throws: PipelineError.self) {
            try pipeline.check(GenerationRequest(prompt: "x", mode: .imageToImage(image: ShapedArray(repeating: 0, shape: [1, 3, 24, 32]), strength: 0.5),
                                                 width: 32, height: 24, steps: 2))
        }
        // The position grid is 12 patches of 4 px.
        #expect(throws: PipelineError.self) { try pipeline.check(GenerationRequest(prompt: "x", width: 52, height: 24, steps: 2)) }
        try pipeline.check(GenerationRequest(prompt: "x", width: 48, height: 24, steps: 2))
    }
}
