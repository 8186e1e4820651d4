import Foundation
import Kiln
import Testing

/// Guidance and the scheduler step in the backend's pass after the U-Net (`fusesGuidedStep`)
/// against the same generation with both on the host: the paths agree, and the fused one is taken
/// exactly where the scheduler's steps are affine.
@Suite(.serialized) struct GuidedStepPipelineTests {
    /// Records the op names of every graph prepared through it.
    final class RecordingBackend: Backend, @unchecked Sendable {
        let inner: Backend
        private(set) var preparedOperations: [Set<String>] = []
        init(_ inner: Backend) { self.inner = inner }
        var name: String { inner.name }
        var activationBudgetBytes: Int { inner.activationBudgetBytes }
        var uploadedConstantBytes: Int { inner.uploadedConstantBytes }
        var memoryCapacityBytes: Int { inner.memoryCapacityBytes }
        func plannedArenaBytes(_ graph: Graph, outputs: [Tensor]) -> Int { inner.plannedArenaBytes(graph, outputs: outputs) }
        func rewriteResidentConstants(_ names: Set<String>, of residency: ResidentWeights, from values: any ConstantValues) throws {
            try inner.rewriteResidentConstants(names, of: residency, from: values)
        }
        func prepare(_ graph: Graph, outputs: [Tensor], constants: any ConstantValues) throws -> any PreparedGraph {
            preparedOperations.append(Set(graph.dependencies(of: outputs).map { graph.nodes[$0].operation.name }))
            return try inner.prepare(graph, outputs: outputs, constants: constants)
        }
    }

    /// The sd1 fixture's scheduler configuration has no clip_sample, so DDIM clips (diffusers'
    /// default) and stays on the host, as DPM++ 2M (multistep history) does.
    static let fusedSamplers: Set<SamplerName> = [.euler, .eulerAncestral]

    @Test(arguments: [SamplerName.euler, .eulerAncestral, .ddim, .dpmPlusPlus2M], [Float(7.5), 1])
    func fusedAndHostStepsAgree(_ sampler: SamplerName, _ guidanceScale: Float) throws {
        let folder = try PipelineFixtures.modelFolder("sd1")
        let request = GenerationRequest(prompt: "a red boat", negativePrompt: "fog", width: 64, height: 48, steps: 4,
                                        guidanceScale: guidanceScale, sampler: sampler, seed: 11)
        for backend in [CPUBackend(), try PipelineParityTests.vulkan.get()] as [Backend] {
            let recorder = RecordingBackend(backend)
            let fused = try StableDiffusionPipeline(url: folder, backend: recorder, dtype: .float32)
            let host = try StableDiffusionPipeline(url: folder, backend: backend, dtype: .float32)
            host.fusesGuidedStep = false
            let expected = try host.generate(request, isCancelled: { false }).latents
            let actual = try fused.generate(request, isCancelled: { false }).latents
            let tookFusedPath = recorder.preparedOperations.contains { $0.contains("guided_step") }
            #expect(tookFusedPath == Self.fusedSamplers.contains(sampler), "\(sampler) on \(backend.name)")
            Self.expectClose(actual, expected, "\(sampler) guidance \(guidanceScale) on \(backend.name)")
        }
    }

    /// SD3's flow-matching Euler steps always take the device pass.
    @Test(arguments: [Float(4), 1])
    func sd3FusedAndHostStepsAgree(_ guidanceScale: Float) throws {
        let request = GenerationRequest(prompt: "a lighthouse", width: 32, height: 24, steps: 3, guidanceScale: guidanceScale, seed: 5,
                                        options: .init(maxSequenceLength: 8, withoutT5: true))
        for backend in [CPUBackend(), try SD3PipelineParityTests.vulkan.get()] as [Backend] {
            let recorder = RecordingBackend(backend)
            let fused = try StableDiffusion3Pipeline(url: try SD3PipelineParityTests.modelFolder(), backend: recorder, dtype: .float32)
            let host = try StableDiffusion3Pipeline(url: try SD3PipelineParityTests.modelFolder(), backend: backend, dtype: .float32)
            host.fusesGuidedStep = false
            let expected = try host.generate(request, isCancelled: { false }).latents
            let actual = try fused.generate(request, isCancelled: { false }).latents
            #expect(recorder.preparedOperations.contains { $0.contains("guided_step") }, "\(backend.name)")
            Self.expectClose(actual, expected, "SD3 guidance \(guidanceScale) on \(backend.name)")
        }
    }

    /// FLUX has no unconditional branch: the device pass is the flow-matching Euler step alone.
    @Test func fluxFusedAndHostStepsAgree() throws {
        let (settings, records, folder) = try FluxPipelineTests.fixture("dev")
        let textStates = FluxPipelineTests.array(try records.tensor("prompt_embeds"))
        let pooled = FluxPipelineTests.array(try records.tensor("pooled_prompt_embeds"))
        let request = FluxPipelineTests.request(settings, batch: textStates.shape[0])
        for backend in [CPUBackend(), try FluxPipelineTests.vulkan.get()] as [Backend] {
            let recorder = RecordingBackend(backend)
            let fused = try FluxPipeline(folder: folder, backend: recorder, dtype: .float32)
            let host = try FluxPipeline(folder: folder, backend: backend, dtype: .float32)
            host.fusesGuidedStep = false
            let expected = try host.denoise(request, textStates: textStates, pooled: pooled)
            let actual = try fused.denoise(request, textStates: textStates, pooled: pooled)
            #expect(recorder.preparedOperations.contains { $0.contains("guided_step") }, "\(backend.name)")
            Self.expectClose(actual, expected, "FLUX on \(backend.name)")
        }
    }

    static func expectClose(_ actual: ShapedArray, _ expected: ShapedArray, _ label: String) {
        let largest = expected.scalars.map(abs).max() ?? 0
        let difference = zip(expected.scalars, actual.scalars).map { abs($0 - $1) }.max() ?? .infinity
        #expect(actual.shape == expected.shape, "\(label)")
        #expect(difference / largest < 1e-4, "\(label): relative difference \(difference / largest)")
    }
}
