import Foundation
import Kiln
import KilnVerification
import Testing

/// LoRAs against diffusers' `load_lora_weights` + `set_adapters` (and `fuse_lora`) on the tiny
/// models, recorded by Tests/Fixtures/generate_lora_fixtures.py: PEFT files with their adapter
/// metadata, the same changes in kohya's, the original U-Net's, sd-scripts' FLUX, BFL and XLabs
/// names, LoCon convolutions, LoHa and LoKr, several weights, two LoRAs stacked. One pipeline
/// per family and backend runs every case in order, so each case also un-merges the last.
@Suite(.serialized) struct LoRAParityTests {
    struct Case: Decodable, CustomStringConvertible, Sendable {
        let name: String
        let family: String
        let loras: [String]
        let weights: [Float]
        let prompt: String
        let negativePrompt: String?
        let width: Int
        let height: Int
        let steps: Int
        let cfgScale: Float
        let seed: UInt64
        let sampler: String?
        let maxSequenceLength: Int?

        var description: String { name }

        enum CodingKeys: String, CodingKey {
            case name, family, loras, weights, prompt, width, height, steps, seed, sampler
            case negativePrompt = "negative_prompt"
            case cfgScale = "cfg_scale"
            case maxSequenceLength = "max_sequence_length"
        }
    }

    static let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("lora")
    static let cases: [Case] = PipelineFixtures.cases(in: folder)
    static let vulkan: Result<VulkanBackend, Error> = Result { try VulkanBackend() }
    nonisolated(unsafe) static var pipelines: [String: any DiffusionPipeline] = [:]

    static func modelFolder(_ family: String) throws -> URL {
        switch family {
        case "sd3": try SD3PipelineParityTests.modelFolder()
        case "flux": try FluxFullPipelineTests.modelFolder()
        default: try PipelineFixtures.modelFolder(family)
        }
    }

    static func pipeline(_ family: String, backend: Backend, dtype: DType) throws -> any DiffusionPipeline {
        let key = "\(family)-\(backend.name)-\(dtype.shortName)"
        if let pipeline = pipelines[key] { return pipeline }
        let pipeline = try Pipelines.open(try modelFolder(family), backend: backend, dtype: dtype)
        pipelines[key] = pipeline
        return pipeline
    }

    static func request(_ testCase: Case, pipeline: any DiffusionPipeline) throws -> GenerationRequest {
        var request = pipeline.defaults.request(.prompt(testCase.prompt, negative: testCase.negativePrompt), seed: testCase.seed)
        (request.width, request.height, request.steps, request.guidanceScale) = (testCase.width, testCase.height, testCase.steps, testCase.cfgScale)
        request.sampler = try testCase.sampler.map(SamplerName.init(parsing:))
        request.options.maxSequenceLength = testCase.maxSequenceLength
        request.options.withoutT5 = testCase.family == "sd3"
        request.options.loras = zip(testCase.loras, testCase.weights).map { LoRARequest(url: folder.appendingPathComponent($0), weight: $1) }
        return request
    }

    static func latentError(_ testCase: Case, backend: Backend, dtype: DType) throws -> Float {
        let pipeline = try pipeline(testCase.family, backend: backend, dtype: dtype)
        let result = try pipeline.generate(try request(testCase, pipeline: pipeline))
        let expected = try SafeTensorsFile(url: folder.appendingPathComponent("latents.safetensors")).tensor("\(testCase.name).latents")
        #expect(result.latents.shape == expected.shape.dimensions, "\(testCase.name): latent shape")
        #expect(result.loras.map(\.name) == testCase.loras.map { URL(fileURLWithPath: $0).deletingPathExtension().lastPathComponent })
        return Verification.compare(HostTensor(shape: expected.shape, scalars: result.latents.scalars), expected).relative
    }

    @Test("CPU: final latents within 1e-3", arguments: cases)
    func cpu(_ testCase: Case) throws {
        let error = try Self.latentError(testCase, backend: CPUBackend(), dtype: .float32)
        print("\(testCase.name) cpu: latent error \(error)")
        #expect(error <= 1e-3, "\(testCase.name): CPU latents off by \(error)")
    }

    @Test("Vulkan: final latents within 1e-3 (f32) and 2e-2 (f16)", arguments: cases)
    func vulkan(_ testCase: Case) throws {
        let gpu = try Self.vulkan.get()
        for dtype in [DType.float32, .float16] {
            let error = try Self.latentError(testCase, backend: gpu, dtype: dtype)
            print("\(testCase.name) vulkan \(dtype.shortName): latent error \(error)")
            #expect(error <= (dtype == .float16 ? 2e-2 : 1e-3), "\(testCase.name): Vulkan \(dtype.shortName) latents off by \(error)")
        }
    }
}
