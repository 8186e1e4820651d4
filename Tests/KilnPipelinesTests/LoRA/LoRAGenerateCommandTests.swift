import Foundation
import Kiln
import KilnVerification
import Testing

/// `kiln generate --lora a.safetensors:0.8 --lora-dir DIR` with `<lora:b:0.5>` in the prompt and
/// `--preview`, as a user runs it: the recorded two-LoRA latents, a preview PNG at the image's
/// size, and a PNG whose metadata records both LoRAs.
@Suite(.serialized) struct LoRAGenerateCommandTests {
    @Test func twoLoRAsAndAPreview() throws {
        let recorded = try #require(LoRAParityTests.cases.first { $0.name == "sd1_a_b_stacked" })
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("out.png"), preview = folder.appendingPathComponent("preview.png")
        let latents = folder.appendingPathComponent("latents.safetensors")
        let run = try GenerateCommandTests.kiln([
            "generate", "--model", try PipelineFixtures.modelFolder("sd1").path, "--prompt", recorded.prompt + " <lora:sd1_b_peft:0.5>",
            "--negative-prompt", recorded.negativePrompt ?? "", "--width", "\(recorded.width)", "--height", "\(recorded.height)",
            "--steps", "\(recorded.steps)", "--cfg-scale", "\(recorded.cfgScale)", "--sampler", "euler", "--seed", "\(recorded.seed)",
            "--backend", "cpu", "--output", output.path, "--save-latents", latents.path,
            "--lora", LoRAParityTests.folder.appendingPathComponent("sd1_a_peft.safetensors").path + ":0.8",
            "--lora-dir", LoRAParityTests.folder.path, "--preview", preview.path, "--preview-every", "2",
        ])
        #expect(run.status == 0, "\(run.errors)")
        let expected = try SafeTensorsFile(url: LoRAParityTests.folder.appendingPathComponent("latents.safetensors")).tensor("sd1_a_b_stacked.latents")
        #expect(Verification.compare(try SafeTensorsFile(url: latents).tensor("latents"), expected).relative <= 1e-3)

        let shown = try PNGImage(contentsOf: preview)
        #expect(shown.width == recorded.width && shown.height == recorded.height, "the preview is at the image's size")

        let image = try PNGImage(contentsOf: output)
        let parameters = try #require(image.text.first { $0.keyword == "parameters" }?.text)
        #expect(parameters.hasPrefix(recorded.prompt + " <lora:sd1_b_peft:0.5> <lora:sd1_a_peft:0.8>\n"), "\(parameters)")
        #expect(parameters.contains("Lora hashes: \"sd1_a_peft: "), "\(parameters)")
        #expect(parameters.contains(", sd1_b_peft: "), "\(parameters)")
        let json = try #require(image.text.first { $0.keyword == "kiln" }?.text)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let loras = try #require(object["loras"] as? [[String: Any]])
        #expect(loras.map { $0["name"] as? String } == ["sd1_a_peft", "sd1_b_peft"])
        #expect(loras.map { ($0["weight"] as? NSNumber)?.floatValue } == [0.8, 0.5])
        #expect(loras.allSatisfy { ($0["sha256"] as? String)?.count == 64 })
    }

    @Test func aMissingLoRAIsBadInput() throws {
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = try GenerateCommandTests.kiln([
            "generate", "--model", try PipelineFixtures.modelFolder("sd1").path, "--prompt", "a cat <lora:nothing:1>", "--backend", "cpu",
            "--lora-dir", LoRAParityTests.folder.path, "--output", folder.appendingPathComponent("x.png").path,
        ])
        #expect(run.status == 2, "\(run.errors)")
        #expect(run.errors.contains("nothing"), "\(run.errors)")
    }
}
