import Foundation
import Kiln
import Testing

/// What merging costs and refuses: a request with the same LoRAs as the last uploads nothing,
/// taking them out restores the checkpoint's values exactly, and a LoRA that does not map
/// whole onto the model is refused before any work, naming its modules.
@Suite(.serialized) struct LoRABehaviourTests {
    static func lora(_ name: String, _ weight: Float) -> LoRARequest {
        LoRARequest(url: LoRAParityTests.folder.appendingPathComponent(name), weight: weight)
    }

    @Test(arguments: ["cpu", "vulkan"])
    func sameSetUploadsNothingAndRemovalRestoresTheCheckpoint(_ kind: String) throws {
        let backend: Backend = kind == "cpu" ? CPUBackend() : try VulkanBackend()
        let dtype: DType = kind == "cpu" ? .float32 : .float16
        let pipeline = try Pipelines.open(try PipelineFixtures.modelFolder("sd1"), backend: backend, dtype: dtype)
        var request = ModelFolders.request(.stableDiffusion1, pipeline: pipeline, steps: 2)
        let plain = try pipeline.generate(request)
        let start = backend.uploadedConstantBytes

        request.options.loras = [Self.lora("sd1_a_peft.safetensors", 0.8), Self.lora("sd1_b_peft.safetensors", 0.5)]
        let merged = try pipeline.generate(request)
        let afterMerge = backend.uploadedConstantBytes
        #expect(afterMerge > start, "merging rewrites the changed weights")
        #expect(afterMerge - start < pipeline.weightBytes / 2, "only the changed weights go up (\(afterMerge - start) of \(pipeline.weightBytes) bytes)")
        #expect(merged.latents != plain.latents)
        #expect(merged.loras.map(\.name) == ["sd1_a_peft", "sd1_b_peft"])
        #expect(merged.loras.allSatisfy { $0.sha256.count == 64 })

        let again = try pipeline.generate(request)
        #expect(backend.uploadedConstantBytes == afterMerge, "the same LoRAs again upload nothing")
        #expect(again.latents == merged.latents)

        request.options.loras = []
        let restored = try pipeline.generate(request)
        #expect(backend.uploadedConstantBytes > afterMerge, "un-merging re-uploads the changed weights")
        #expect(restored.latents == plain.latents, "the checkpoint's values are back exactly")
        #expect(restored.loras.isEmpty)
    }

    @Test func aLoRAForAnotherModelIsRefusedWithItsModules() throws {
        let pipeline = try Pipelines.open(try FluxFullPipelineTests.modelFolder(), backend: CPUBackend(), dtype: .float32)
        var request = ModelFolders.request(.flux, pipeline: pipeline)
        request.options.loras = [Self.lora("sd1_a_kohya.safetensors", 1)]
        do {
            try pipeline.check(request)
            Issue.record("an SD1 LoRA was accepted by FLUX")
        } catch let error as PipelineError {
            #expect(error.isBadInput)
            #expect("\(error)".contains("do not map onto this model"), "\(error)")
            #expect("\(error)".contains("lora_unet_down_blocks_0_attentions_0_proj_in"), "\(error)")
        }
        request.options.loras = [LoRARequest(url: URL(fileURLWithPath: "/nonexistent/x.safetensors"))]
        #expect(throws: PipelineError.self) { try pipeline.check(request) }
    }

    @Test func loraArgumentsParse() throws {
        #expect(try LoRARequest(parsing: "a/b.safetensors:0.8") == LoRARequest(url: URL(fileURLWithPath: "a/b.safetensors"), weight: 0.8))
        #expect(try LoRARequest(parsing: "c.safetensors") == LoRARequest(url: URL(fileURLWithPath: "c.safetensors"), weight: 1))
        #expect(try LoRARequest(parsing: "d.safetensors:-0.5").weight == -0.5)
    }
}
