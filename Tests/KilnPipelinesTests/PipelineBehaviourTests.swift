import Foundation
import Kiln
import Testing

/// What the pipeline API promises besides matching diffusers: progress, cancellation, request
/// checks before work, reuse across calls, metadata text.
@Suite(.serialized) struct PipelineBehaviourTests {
    static func pipeline() throws -> StableDiffusionPipeline {
        try StableDiffusionPipeline(url: try PipelineFixtures.modelFolder("sd1"), backend: CPUBackend(), dtype: .float32)
    }

    static func request(steps: Int = 3) -> GenerationRequest {
        GenerationRequest(prompt: "a cat", width: 64, height: 48, steps: steps, sampler: .euler, seed: 1)
    }

    @Test func progressReportsEveryStageAndStep() throws {
        var reports: [GenerationProgress] = []
        let result = try Self.pipeline().generate(Self.request(steps: 3), progress: { reports.append($0) }, isCancelled: { false })
        #expect(reports.map(\.stage) == [.encodingText, .denoising, .denoising, .denoising, .decoding])
        #expect(reports.filter { $0.stage == .denoising }.map(\.step) == [1, 2, 3])
        #expect(reports.allSatisfy { $0.stepCount == 3 })
        #expect(zip(reports, reports.dropFirst()).allSatisfy { $0.elapsedSeconds <= $1.elapsedSeconds })
        #expect(result.latents.shape == [1, 4, 6, 8])
        #expect(result.images.shape == [1, 3, 48, 64])
        #expect(result.images.scalars.allSatisfy { $0.isFinite })
    }

    @Test func cancellationStopsAtTheNextStep() throws {
        var steps = 0
        #expect(throws: PipelineError.cancelled) {
            _ = try Self.pipeline().generate(
                Self.request(steps: 5), progress: { if $0.stage == .denoising { steps += 1 } }, isCancelled: { steps >= 2 })
        }
        #expect(steps == 2)
    }

    @Test func asyncGenerateHonoursTaskCancellation() async throws {
        let pipeline = try Self.pipeline()
        let task = Task {
            try await pipeline.generate(Self.request(steps: 50)) { progress in
                if progress.step == 1 { withUnsafeCurrentTask { $0?.cancel() } }
            }
        }
        await #expect(throws: PipelineError.cancelled) { _ = try await task.value }
    }

    @Test func sameRequestTwiceGivesTheSameLatents() throws {
        let pipeline = try Self.pipeline()
        let first = try pipeline.generate(Self.request(), isCancelled: { false })
        let second = try pipeline.generate(Self.request(), isCancelled: { false })
        #expect(first.latents == second.latents)
        var other = Self.request()
        other.seed = 2
        #expect(try pipeline.generate(other, isCancelled: { false }).latents != first.latents)
    }

    @Test func badRequestsAreRefusedBeforeWork() throws {
        let image = ShapedArray(repeating: 0, shape: [1, 3, 48, 64])
        let cases: [(String, (inout GenerationRequest) -> Void)] = [
            ("multiples of 8", { $0.width = 60 }),
            ("steps 0", { $0.steps = 0 }),
            ("steps 1000000000", { $0.steps = 1_000_000_000 }),
            ("training timesteps", { $0.steps = 1001 }),
            ("at most 16384 pixels", { $0.width = 1_000_000_000 }),
            ("strength 1.5", { $0.mode = .imageToImage(image: image, strength: 1.5) }),
            ("batch count 0", { $0.batchCount = 0 }),
            ("at most 256", { $0.batchCount = 1_000_000 }),
            ("guidance rescale", { $0.options.guidanceRescale = 2 }),
            ("init image is 32x24", { $0.mode = .imageToImage(image: ShapedArray(repeating: 0, shape: [1, 3, 24, 32]), strength: 0.5) }),
            ("mask is 32x24", { $0.mode = .inpainting(image: image, mask: ShapedArray(repeating: 1, shape: [1, 1, 24, 32]), strength: 1) }),
            ("leaves no denoising step", { $0.mode = .imageToImage(image: image, strength: 0.1) }),
            ("class labels are for class-conditional models", { $0.conditioning = .classLabels([3]) }),
            ("no T5 encoder", { $0.options.maxSequenceLength = 77 }),
            ("SDXL's", { $0.options.originalSize = [64, 64] }),
            ("flow_euler sampler needs a flow-matching model", { $0.sampler = .flowEuler }),
        ]
        let pipeline = try Self.pipeline()
        for (message, change) in cases {
            var request = Self.request()
            change(&request)
            do {
                try pipeline.check(request)
                Issue.record("accepted: \(message)")
            } catch let error as PipelineError {
                #expect("\(error)".contains(message), "\(error)")
                #expect(error.isBadInput, "\(error)")
            }
        }
    }

    /// A CPU backend that claims only `memoryCapacityBytes` of memory.
    final class SmallBackend: Backend, @unchecked Sendable {
        let cpu = CPUBackend()
        let memoryCapacityBytes: Int
        init(capacity: Int) { memoryCapacityBytes = capacity }
        var name: String { "a \(memoryCapacityBytes)-byte test device" }
        var uploadedConstantBytes: Int { cpu.uploadedConstantBytes }
        func prepare(_ graph: Graph, outputs: [Tensor], constants: any ConstantValues) throws -> any PreparedGraph {
            try cpu.prepare(graph, outputs: outputs, constants: constants)
        }
        func rewriteResidentConstants(_ names: Set<String>, of residency: ResidentWeights, from values: any ConstantValues) throws {
            try cpu.rewriteResidentConstants(names, of: residency, from: values)
        }
    }

    @Test func aModelThatCannotFitIsRefusedWhenOpened() throws {
        let folder = try PipelineFixtures.modelFolder("sd1")
        let open = { (capacity: Int) in try StableDiffusionPipeline(url: folder, backend: SmallBackend(capacity: capacity), dtype: .float16) }
        do {
            _ = try open(100_000)
            Issue.record("a 100 kB device accepted the model")
        } catch let PipelineError.insufficientMemory(message) {
            for part in ["text_encoder", "unet", "vae", "100000-byte test device"] { #expect(message.contains(part), "\(message)") }
        }
        _ = try open(1 << 30)
    }

    /// `int(10 * 0.7)` is 7 in Python, 6 in f32 (0.7f is 0.699999988): the cut follows Python.
    @Test func strengthCutsTheScheduleAsPythonDoes() throws {
        var request = Self.request(steps: 10)
        request.mode = .imageToImage(image: ShapedArray(repeating: 0.25, shape: [1, 3, 48, 64]), strength: 0.7)
        var denoisingSteps = 0
        _ = try Self.pipeline().generate(request, progress: { if $0.stage == .denoising { denoisingSteps += 1 } }, isCancelled: { false })
        #expect(denoisingSteps == 7)
    }

    @Test func a1111ParametersText() throws {
        let metadata = GenerationMetadata(
            prompt: "a cat, sitting", negativePrompt: "blurry", mode: "txt2img", width: 512, height: 768, steps: 20, cfgScale: 7,
            guidanceRescale: 0, sampler: "euler_a", scheduler: "karras", seed: 42, rng: "torch", batchCount: 2, batchIndex: 1,
            strength: nil, model: "sd15", modelSHA256: "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa",
            backend: "vulkan", dtype: "f16", device: "llvmpipe", driver: "Mesa")
        #expect(metadata.a1111Parameters == """
            a cat, sitting
            Negative prompt: blurry
            Steps: 20, Sampler: Euler a, Schedule type: Karras, CFG scale: 7, Seed: 42, Size: 512x768, Model hash: 6ce0161689, \
            Model: sd15, Batch size: 2, Batch pos: 1, RNG: torch, Version: kiln \(KilnVersion.string)
            """)
        let decoded = try JSONDecoder().decode(GenerationMetadata.self, from: Data(try metadata.json().utf8))
        #expect(decoded == metadata)
    }
}
