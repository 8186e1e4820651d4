import Foundation
import Kiln
import KilnRender
import KilnVerification
import Testing

/// `kiln render` jobs with a `loras` field: parsed with their weights, paths relative to the
/// manifest, rendered with the LoRAs merged (the recorded diffusers latents' images) and recorded
/// in each PNG; bad entries are refused before any work, naming the line and field.
@Suite(.serialized) struct LoRARenderTests {
    @Test func jobsMergeTheirLoRAs() throws {
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        for name in ["sd1_a_peft", "sd1_b_peft"] {
            try FileManager.default.copyItem(at: LoRAParityTests.folder.appendingPathComponent("\(name).safetensors"),
                                             to: folder.appendingPathComponent("\(name).safetensors"))
        }
        let manifest = try RenderRunnerTests.manifest([
            #"{"id": "plain", "prompt": "a cat", "steps": 2, "width": 64, "height": 48, "sampler": "euler", "seed": 1}"#,
            #"{"id": "two", "prompt": "a cat", "steps": 2, "width": 64, "height": 48, "sampler": "euler", "seed": 1, "loras": [{"path": "sd1_a_peft.safetensors", "weight": 0.8}, {"path": "sd1_b_peft.safetensors"}]}"#,
        ], in: folder)
        #expect(manifest.jobs[1].settings.loras == [.init(path: "sd1_a_peft.safetensors", weight: 0.8), .init(path: "sd1_b_peft.safetensors")])
        #expect(manifest.jobs[0].id == "plain")
        let out = folder.appendingPathComponent("out")
        let runner = try RenderRunnerTests.runner(manifest, out: out)
        try runner.validate()
        let summary = try runner.run(events: { _ in }, stopRequested: { false })
        #expect(summary.done == 2 && summary.failed == 0)
        let plain = try PNGImage(contentsOf: out.appendingPathComponent("plain.png"))
        let two = try PNGImage(contentsOf: out.appendingPathComponent("two.png"))
        #expect(plain.pixels != two.pixels)
        let parameters = two.text.first { $0.keyword == "parameters" }?.text ?? ""
        #expect(parameters.contains("<lora:sd1_a_peft:0.8> <lora:sd1_b_peft:1>"), "\(parameters)")
        #expect(parameters.contains("Lora hashes:"), "\(parameters)")
        let plainParameters = plain.text.first { $0.keyword == "parameters" }?.text ?? ""
        #expect(!plainParameters.contains("Lora"), "\(plainParameters)")
    }

    @Test(arguments: [
        (#"{"prompt": "x", "loras": "a.safetensors"}"#, "expected a list"),
        (#"{"prompt": "x", "loras": [{"weight": 1}]}"#, "each LoRA is"),
        (#"{"prompt": "x", "loras": [{"path": "a.safetensors", "scale": 1}]}"#, "not 'scale'"),
    ])
    func badEntriesNameTheField(_ line: String, _ message: String) throws {
        do {
            _ = try RenderManifest.parse(line, name: "jobs.jsonl")
            Issue.record("accepted \(line)")
        } catch let error as ManifestError {
            #expect(error.field == "loras" && error.line == 1, "\(error)")
            #expect(error.message.contains(message), "\(error)")
        }
    }
}
