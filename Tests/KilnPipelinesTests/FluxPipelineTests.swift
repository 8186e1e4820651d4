import Foundation
import Kiln
import KilnVerification
import Testing

/// FLUX's pipeline parts against what diffusers' FluxPipeline computed for the same settings
/// (Tests/Fixtures/generate_flux_pipeline_fixtures.py): 2x2 packing of the seeded noise, latent
/// image ids, the shifted schedule with mu from the image's token count, and whole denoising
/// loops from given text states to the final latents unpacked to `[B, 16, h, w]`, on the CPU
/// and on Vulkan with f32 storage (1e-3) and f16 (2e-2), relative to the largest magnitude.
@Suite(.serialized) struct FluxPipelineTests {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("flux")
    static let vulkan: Result<VulkanBackend, Error> = Result { try VulkanBackend() }

    struct Case: Decodable {
        let seed: UInt64
        let width: Int
        let height: Int
        let steps: Int
        let guidance: Float?
        let mu: Double
    }

    static func fixture(_ name: String) throws -> (Case, SafeTensorsFile, URL) {
        let folder = root.appendingPathComponent(name)
        let settings = try JSONDecoder().decode(Case.self, from: Data(contentsOf: folder.appendingPathComponent("case.json")))
        return (settings, try SafeTensorsFile(url: folder.appendingPathComponent("records.safetensors")), folder)
    }

    static func array(_ tensor: HostTensor) -> ShapedArray { ShapedArray(shape: tensor.shape.dimensions, scalars: tensor.scalars) }

    /// The fixture's settings as a request; the prompt is unused, the text states come recorded.
    static func request(_ settings: Case, batch: Int, steps: Int? = nil, guidance: Float? = nil) -> GenerationRequest {
        GenerationRequest(prompt: "", width: settings.width, height: settings.height, steps: steps ?? settings.steps,
                          guidanceScale: guidance ?? settings.guidance ?? 3.5, seed: settings.seed, batchCount: batch)
    }

    @Test(arguments: ["schnell", "dev"])
    func noiseIsPackedAsDiffusersPacksIt(_ name: String) throws {
        let (settings, records, _) = try Self.fixture(name)
        let noise = try records.tensor("noise")
        let drawn = TorchGenerator(seed: settings.seed).normal(shape: noise.shape.dimensions)
        #expect(drawn.scalars == noise.scalars, "\(name): seeded noise differs from torch.randn")
        let packed = try FluxLatents.pack(drawn)
        let expected = try records.tensor("packed_noise")
        #expect(packed.shape == expected.shape.dimensions)
        #expect(packed.scalars == expected.scalars, "\(name): packing differs from _pack_latents")
        let (height, width) = FluxLatents.latentSize(width: settings.width, height: settings.height)
        #expect(try FluxLatents.unpack(packed, height: height, width: width) == drawn)
        let ids = try records.tensor("latent_image_ids")
        #expect(FluxLatents.imageIDs(patchRows: height / 2, patchColumns: width / 2) == Self.array(ids))
    }

    @Test(arguments: ["schnell", "dev"])
    func scheduleMatchesFluxPipeline(_ name: String) throws {
        let (settings, records, folder) = try Self.fixture(name)
        let configuration = try SchedulerConfiguration.load(from: folder.appendingPathComponent("scheduler/scheduler_config.json"))
        let (height, width) = FluxLatents.latentSize(width: settings.width, height: settings.height)
        let length = (height / 2) * (width / 2)
        #expect(abs(FluxSchedule.mu(imageSequenceLength: length, configuration: configuration) - settings.mu) <= 1e-12)
        let scheduler = try FlowMatchEulerDiscreteScheduler(configuration: configuration)
        try FluxSchedule.apply(to: scheduler, steps: settings.steps, imageSequenceLength: length)
        let sigmas = try records.tensor("sigmas").scalars, timesteps = try records.tensor("timesteps").scalars
        #expect(scheduler.sigmas.count == sigmas.count)
        for (ours, theirs) in zip(scheduler.sigmas, sigmas) { #expect(abs(ours - theirs) <= 1e-6, "\(name): sigma \(ours) vs \(theirs)") }
        for (ours, theirs) in zip(scheduler.timesteps, timesteps) { #expect(abs(Float(ours) - theirs) <= 1e-3, "\(name): timestep \(ours) vs \(theirs)") }
    }

    @Test func linspaceSigmasAsNumpy() {
        #expect(FluxSchedule.sigmas(steps: 4) == [1, 0.75, 0.5, 0.25])
        #expect(FluxSchedule.sigmas(steps: 1) == [1])
        #expect(FluxSchedule.sigmas(steps: 0).isEmpty)
    }

    @Test(arguments: ["schnell", "dev"])
    func denoisingLoopMatchesFluxPipeline(_ name: String) throws {
        let (settings, records, folder) = try Self.fixture(name)
        let textStates = Self.array(try records.tensor("prompt_embeds")), pooled = Self.array(try records.tensor("pooled_prompt_embeds"))
        let expected = try records.tensor("final_latents")
        let gpu = try Self.vulkan.get()
        for (backend, dtype, tolerance) in [(CPUBackend() as Backend, DType.float32, Float(1e-3)), (gpu, .float32, 1e-3), (gpu, .float16, 2e-2)] {
            let pipeline = try FluxPipeline(folder: folder, backend: backend, dtype: dtype)
            var steps = [Int]()
            let latents = try pipeline.denoise(Self.request(settings, batch: textStates.shape[0]), textStates: textStates, pooled: pooled,
                                               progress: { if $0.stage == .denoising { steps.append($0.step) } })
            let label = "\(name) \(backend.name) \(dtype.shortName)"
            #expect(steps == Array(1...settings.steps), "\(label): progress \(steps)")
            #expect(latents.shape == expected.shape.dimensions, "\(label): shape \(latents.shape)")
            let error = Verification.compare(HostTensor(shape: Shape(latents.shape), scalars: latents.scalars), expected)
            print("flux pipeline \(label): relative error \(error.relative)")
            #expect(error.relative <= tolerance, "\(label): relative error \(error.relative) > \(tolerance)")
        }
        #expect(gpu.device.instance.validationMessages.all.isEmpty)
    }

    @Test func devGuidanceChangesTheResultAndSchnellIgnoresIt() throws {
        for (name, changes) in [("dev", true), ("schnell", false)] {
            let (settings, records, folder) = try Self.fixture(name)
            let pipeline = try FluxPipeline(folder: folder, backend: CPUBackend(), dtype: .float32)
            let textStates = Self.array(try records.tensor("prompt_embeds")), pooled = Self.array(try records.tensor("pooled_prompt_embeds"))
            func run(_ guidance: Float) throws -> ShapedArray {
                try pipeline.denoise(Self.request(settings, batch: textStates.shape[0], steps: 1, guidance: guidance), textStates: textStates, pooled: pooled)
            }
            #expect((try run(1.5) != run(6)) == changes, "\(name)")
        }
    }

    @Test func refusesSizesThePackingCannotTake() throws {
        let (_, records, folder) = try Self.fixture("schnell")
        let pipeline = try FluxPipeline(folder: folder, backend: CPUBackend(), dtype: .float32)
        let textStates = Self.array(try records.tensor("prompt_embeds")), pooled = Self.array(try records.tensor("pooled_prompt_embeds"))
        #expect(throws: PipelineError.self) {
            _ = try pipeline.denoise(GenerationRequest(prompt: "", width: 72, height: 48, steps: 1, seed: 1), textStates: textStates, pooled: pooled)
        }
        #expect(throws: PipelineError.self) {
            _ = try FluxLatents.pack(ShapedArray(repeating: 0, shape: [1, 16, 5, 4]))
        }
    }
}
