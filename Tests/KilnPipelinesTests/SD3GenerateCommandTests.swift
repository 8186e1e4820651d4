import Foundation
import Kiln
import KilnVerification
import Testing

/// `kiln generate` on the tiny SD3 folder: the family is recognised from model_index.json, the
/// recorded case's latents come out of --save-latents, and SD3's own options are checked.
@Suite(.serialized) struct SD3GenerateCommandTests {
    static func arguments(_ testCase: SD3PipelineParityTests.Case, model: URL, output: URL) -> [String] {
        ["generate", "--model", model.path, "--prompt", testCase.prompt, "--width", "\(testCase.width)", "--height", "\(testCase.height)",
         "--steps", "\(testCase.steps)", "--cfg-scale", "\(testCase.cfgScale)", "--seed", "\(testCase.seed)",
         "--batch-count", "\(testCase.batchCount)", "--max-sequence-length", "\(testCase.maxSequenceLength)",
         "--backend", "cpu", "--output", output.path] + (testCase.negativePrompt.map { ["--negative-prompt", $0] } ?? [])
            + (testCase.t5 ? [] : ["--without-t5"])
    }

    @Test func savesTheRecordedLatents() throws {
        let testCase = try #require(SD3PipelineParityTests.cases.first { $0.name == "sd3_t5_truncated_batch2" })
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let latents = folder.appendingPathComponent("latents.safetensors")
        let run = try GenerateCommandTests.kiln(
            Self.arguments(testCase, model: try SD3PipelineParityTests.modelFolder(), output: folder.appendingPathComponent("sd3-%d.png"))
                + ["--save-latents", latents.path, "--json"])
        #expect(run.status == 0, "\(run.errors)")
        #expect(run.output.contains("\"sampler\":\"flow_euler\"") || run.output.contains("\"sampler\" : \"flow_euler\""), "\(run.output)")
        for index in 0..<testCase.batchCount {
            #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("sd3-\(index).png").path))
        }
        let saved = try SafeTensorsFile(url: latents).tensor("latents")
        let expected = try SafeTensorsFile(url: SD3PipelineParityTests.fixtures.appendingPathComponent("latents.safetensors"))
            .tensor("\(testCase.name).latents")
        #expect(saved.shape == expected.shape)
        let error = Verification.compare(saved, expected).relative
        #expect(error <= 1e-3, "kiln generate latents off by \(error)")
    }

    /// Stability's single file with the diffusers folder as --config: the family comes from the config folder.
    @Test func singleFileWithConfigFolder() throws {
        let testCase = try #require(SD3PipelineParityTests.cases.first { $0.name == "sd3_negative" })
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let latents = folder.appendingPathComponent("latents.safetensors")
        let run = try GenerateCommandTests.kiln(
            Self.arguments(testCase, model: SD3SingleFileTests.singleFile, output: folder.appendingPathComponent("out.png"))
                + ["--config", try SD3PipelineParityTests.modelFolder().path, "--save-latents", latents.path, "--quiet"])
        #expect(run.status == 0, "\(run.errors)")
        let expected = try SafeTensorsFile(url: SD3PipelineParityTests.fixtures.appendingPathComponent("latents.safetensors"))
            .tensor("\(testCase.name).latents")
        let error = Verification.compare(try SafeTensorsFile(url: latents).tensor("latents"), expected).relative
        #expect(error <= 1e-3, "single-file latents off by \(error)")
    }

    /// A folder whose model_index.json names a T5 encoder it lacks is refused, naming the
    /// folder; --without-t5 runs it with T5's states zero.
    @Test func missingT5FolderNeedsWithoutT5() throws {
        let base = try SD3PipelineParityTests.modelFolder()
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = folder.appendingPathComponent("model")
        try FileManager.default.createDirectory(at: model, withIntermediateDirectories: true)
        for entry in try FileManager.default.contentsOfDirectory(atPath: base.path) where entry != "text_encoder_3" {
            try FileManager.default.createSymbolicLink(at: model.appendingPathComponent(entry), withDestinationURL: base.appendingPathComponent(entry))
        }
        let output = folder.appendingPathComponent("out.png")
        let common = ["generate", "--model", model.path, "--prompt", "a cat", "--width", "32", "--height", "24", "--steps", "1",
                      "--backend", "cpu", "--max-sequence-length", "4", "--output", output.path, "--quiet"]
        let refused = try GenerateCommandTests.kiln(common)
        #expect(refused.status == 2, "\(refused.errors)")
        #expect(refused.errors.contains("text_encoder_3"), "\(refused.errors)")
        #expect(!FileManager.default.fileExists(atPath: output.path))
        let run = try GenerateCommandTests.kiln(common + ["--without-t5"])
        #expect(run.status == 0, "\(run.errors)")
        #expect(FileManager.default.fileExists(atPath: output.path))
    }

    @Test(arguments: [
        (["--max-sequence-length", "0"], "max sequence length 0"),
        (["--init-image", "INIT"], "img2img with SD3 models"),
        (["--sampler", "euler_a"], "flow_euler"),
        (["--width", "34"], "multiples of 4"),
        (["--guidance-rescale", "0.5"], "guidance rescale"),
        (["--class-label", "3"], "give --prompt or --class-label, not both"),
    ])
    func badInputExitsWithTwo(_ extra: [String], _ message: String) throws {
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("out.png")
        let run = try GenerateCommandTests.kiln(
            ["generate", "--model", try SD3PipelineParityTests.modelFolder().path, "--prompt", "a cat", "--width", "32", "--height", "24",
             "--steps", "1", "--backend", "cpu", "--output", output.path]
                + extra.map { $0 == "INIT" ? PipelineFixtures.folder.appendingPathComponent("init.png").path : $0 })
        #expect(run.status == 2, "\(extra): exit \(run.status), stderr \(run.errors)")
        #expect(run.errors.contains(message), "\(extra): stderr \(run.errors)")
        #expect(!FileManager.default.fileExists(atPath: output.path))
    }

    @Test func stableDiffusionRefusesSD3Options() throws {
        let run = try GenerateCommandTests.kiln(
            ["generate", "--model", try PipelineFixtures.modelFolder("sd1").path, "--prompt", "a cat", "--backend", "cpu",
             "--max-sequence-length", "77"])
        #expect(run.status == 2)
        #expect(run.errors.contains("no T5 encoder"), "\(run.errors)")
    }
}
