import Foundation
import Kiln
import KilnVerification
import Testing

/// Whole DiT generations against diffusers' DiTPipeline on the tiny DiT, recorded by
/// Tests/Fixtures/generate_dit_fixtures.py: guidance on (scale > 1) and off, batches of two class
/// labels, the folder's own DDIM and samplers swapped in (dpm++2m, euler, euler_a). Latent errors
/// are relative to diffusers' largest magnitude.
@Suite(.serialized) struct DiTPipelineParityTests {
    struct Case: Decodable, CustomStringConvertible, Sendable {
        let name: String
        let sampler: String?
        let scheduler: String
        let classLabels: [Int]
        let steps: Int
        let cfgScale: Float
        let seed: UInt64
        let images: [String]
        let latentShape: [Int]

        var description: String { name }

        enum CodingKeys: String, CodingKey {
            case name, sampler, scheduler, steps, seed, images
            case classLabels = "class_labels"
            case cfgScale = "cfg_scale"
            case latentShape = "latent_shape"
        }
    }

    static let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("dit")
    static let model = PipelineFixtures.models.appendingPathComponent("dit/diffusers")
    static let original = PipelineFixtures.models.appendingPathComponent("dit/original.safetensors")

    static let cases: [Case] = PipelineFixtures.cases(in: fixtures)

    static let vulkan: Result<VulkanBackend, Error> = Result { try VulkanBackend() }
    nonisolated(unsafe) static var pipelines: [String: DiTPipeline] = [:]

    static func pipeline(backend: Backend, dtype: DType, originalNames: Bool = false) throws -> DiTPipeline {
        let key = "\(backend.name)-\(dtype.shortName)-\(originalNames)"
        if let pipeline = pipelines[key] { return pipeline }
        let pipeline = originalNames
            ? try DiTPipeline(url: original, configFolder: model, backend: backend, dtype: dtype)
            : try DiTPipeline(url: model, backend: backend, dtype: dtype)
        pipelines[key] = pipeline
        return pipeline
    }

    /// The request `kiln generate --class-label ...` builds for `testCase`.
    static func request(_ testCase: Case) throws -> GenerationRequest {
        GenerationRequest(
            conditioning: .classLabels(testCase.classLabels), width: 64, height: 64, steps: testCase.steps, guidanceScale: testCase.cfgScale,
            sampler: try testCase.sampler.map(SamplerName.init(parsing:)),
            sigmaSpacing: testCase.scheduler == "default" ? nil : try SigmaSpacing(parsing: testCase.scheduler), seed: testCase.seed)
    }

    static func latentError(_ result: GenerationResult, _ testCase: Case) throws -> Float {
        let expected = try SafeTensorsFile(url: fixtures.appendingPathComponent("latents.safetensors")).tensor("\(testCase.name).latents")
        #expect(result.latents.shape == expected.shape.dimensions, "\(testCase.name): latent shape")
        return Verification.compare(HostTensor(shape: expected.shape, scalars: result.latents.scalars), expected).relative
    }

    @Test("CPU: final latents within 1e-3, pixels within 2", arguments: cases)
    func cpu(_ testCase: Case) throws {
        let result = try Self.pipeline(backend: CPUBackend(), dtype: .float32).generate(try Self.request(testCase), isCancelled: { false })
        let error = try Self.latentError(result, testCase)
        print("\(testCase.name) cpu: latent error \(error)")
        #expect(error <= 1e-3, "\(testCase.name): CPU latents off by \(error)")

        let images = try DiffusersImageProcessor.postprocess(ImageTensor(shape: result.images.shape, values: result.images.scalars))
        try PipelineFixtures.expectPixelsMatch(images, files: testCase.images, in: Self.fixtures)
    }

    @Test("Vulkan: final latents within 1e-3 (f32) and 2e-2 (f16)", arguments: cases)
    func vulkan(_ testCase: Case) throws {
        let gpu = try Self.vulkan.get()
        for (dtype, tolerance) in [(DType.float32, Float(1e-3)), (.float16, 2e-2)] {
            let result = try Self.pipeline(backend: gpu, dtype: dtype).generate(try Self.request(testCase), isCancelled: { false })
            let error = try Self.latentError(result, testCase)
            print("\(testCase.name) vulkan \(dtype.shortName): latent error \(error)")
            #expect(error <= tolerance, "\(testCase.name): Vulkan \(dtype.shortName) latents off by \(error)")
        }
        // With KILN_VALIDATE=1 the validation layer watched every Vulkan run: nothing may be reported.
        #expect(gpu.device.instance.validationMessages.all.isEmpty, "validation: \(gpu.device.instance.validationMessages.all.prefix(3))")
    }

    /// The same run from the original facebookresearch file gives the same latents.
    @Test func originalNamesGiveTheSameRun() throws {
        let testCase = try #require(Self.cases.first { $0.name == "dit_ddim_cfg" })
        let result = try Self.pipeline(backend: CPUBackend(), dtype: .float32, originalNames: true)
            .generate(try Self.request(testCase), isCancelled: { false })
        let error = try Self.latentError(result, testCase)
        #expect(error <= 1e-3, "original layout: latents off by \(error)")
    }

    @Test func requestsTheModelCannotTakeAreRefused() throws {
        let pipeline = try Self.pipeline(backend: CPUBackend(), dtype: .float32)
        var request = GenerationRequest(prompt: "a cat", width: 64, height: 64, steps: 2, guidanceScale: 4)
        #expect { try pipeline.check(request) } throws: { "\($0)".contains("class labels") && "\($0)".contains("not a prompt") }
        request.conditioning = .classLabels([1000])
        #expect { try pipeline.check(request) } throws: { "\($0)".contains("class label 1000 is outside 0..<1000") }
        request.conditioning = .classLabels([])
        #expect { try pipeline.check(request) } throws: { "\($0)".contains("no class labels") }
        request.conditioning = .classLabels([3])
        request.width = 128
        #expect { try pipeline.check(request) } throws: { "\($0)".contains("samples at 64x64") }
        request.width = 64
        try pipeline.check(request)
    }

    @Test func cancellationStopsBeforeTheFirstStep() throws {
        let pipeline = try Self.pipeline(backend: CPUBackend(), dtype: .float32)
        let request = GenerationRequest(conditioning: .classLabels([3]), width: 64, height: 64, steps: 2, guidanceScale: 4)
        #expect(throws: PipelineError.cancelled) { try pipeline.generate(request, isCancelled: { true }) }
    }
}
