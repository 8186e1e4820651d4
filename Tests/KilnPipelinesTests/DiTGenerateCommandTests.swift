import Foundation
import Kiln
import KilnVerification
import Testing

/// `kiln generate --class-label` on the tiny DiT as a user runs it: images and latents equal to
/// diffusers' DiTPipeline runs, metadata, the original-names file with --config, and exit code 2
/// for class labels and prompts given to the wrong kind of model.
@Suite(.serialized) struct DiTGenerateCommandTests {
    static let model = DiTPipelineParityTests.model
    static let original = DiTPipelineParityTests.original

    static func arguments(_ testCase: DiTPipelineParityTests.Case, output: URL) -> [String] {
        var arguments: [String] = ["generate", "--model", model.path, "--class-label"]
        arguments += testCase.classLabels.map { String($0) }
        arguments += ["--steps", "\(testCase.steps)", "--cfg-scale", "\(testCase.cfgScale)", "--seed", "\(testCase.seed)"]
        arguments += ["--backend", "cpu", "--output", output.path]
        if let sampler = testCase.sampler { arguments += ["--sampler", sampler] }
        return arguments
    }

    static func expectLatents(_ file: URL, _ testCase: DiTPipelineParityTests.Case) throws {
        let saved = try SafeTensorsFile(url: file).tensor("latents")
        let expected = try SafeTensorsFile(url: DiTPipelineParityTests.fixtures.appendingPathComponent("latents.safetensors"))
            .tensor("\(testCase.name).latents")
        #expect(saved.shape == expected.shape)
        let error = Verification.compare(saved, expected).relative
        #expect(error <= 1e-3, "\(testCase.name): saved latents off by \(error)")
    }

    @Test func oneImagePerClassLabelAsDiffusersMakesThem() throws {
        let testCase = try #require(DiTPipelineParityTests.cases.first { $0.name == "dit_ddim_cfg" })
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let pattern = folder.appendingPathComponent("dit-%d.png"), latents = folder.appendingPathComponent("latents.safetensors")
        let run = try GenerateCommandTests.kiln(Self.arguments(testCase, output: pattern) + ["--save-latents", latents.path])
        #expect(run.status == 0, "\(run.errors)")
        #expect(run.errors.contains("step 5/5"), "progress on stderr: \(run.errors)")
        try Self.expectLatents(latents, testCase)

        for (index, file) in testCase.images.enumerated() {
            let written = try PNGImage(contentsOf: folder.appendingPathComponent("dit-\(index).png"))
            let expected = try PNGImage(contentsOf: DiTPipelineParityTests.fixtures.appendingPathComponent(file))
            let close = zip(written.pixels, expected.pixels).filter { abs(Int($0) - Int($1)) <= 2 }.count
            #expect(written.width == 64 && written.height == 64)
            #expect(Double(close) / Double(expected.pixels.count) >= 0.995, "\(file): pixels differ")
        }

        let info = try GenerateCommandTests.kiln(["info", folder.appendingPathComponent("dit-1.png").path, "--json"])
        #expect(info.status == 0, "\(info.errors)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(info.output.utf8)) as? [String: Any])
        let kiln = try #require(object["kiln"] as? [String: Any])
        #expect(kiln["class_label"] as? Int == testCase.classLabels[1])
        #expect(kiln["mode"] as? String == "class2img")
        #expect(kiln["sampler"] as? String == "ddim")
        let parameters = try #require((object["text"] as? [String: String])?["parameters"])
        #expect(parameters.contains("Class label: \(testCase.classLabels[1]), Steps: 5, Sampler: DDIM, CFG scale: 4"), "\(parameters)")
    }

    @Test func originalNamesWithConfigAndASwappedSampler() throws {
        let testCase = try #require(DiTPipelineParityTests.cases.first { $0.name == "dit_dpmpp2m_cfg" })
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let latents = folder.appendingPathComponent("latents.safetensors")
        var arguments = Self.arguments(testCase, output: folder.appendingPathComponent("o-%d.png"))
        arguments[2] = Self.original.path
        let run = try GenerateCommandTests.kiln(arguments + ["--config", Self.model.path, "--save-latents", latents.path, "--quiet"])
        #expect(run.status == 0, "\(run.errors)")
        try Self.expectLatents(latents, testCase)
    }

    /// Each bad input: exit code 2, a message naming the problem, and no file written.
    @Test(arguments: [
        (["--steps", "2"], "class-conditional: give --class-label"),
        (["--class-label", "1000"], "class label 1000 is outside 0..<1000"),
        (["--class-label=-1"], "class label -1 is outside"),
        (["--class-label", "3", "--prompt", "a cat"], "give --prompt or --class-label, not both"),
        (["--class-label", "3", "--width", "128"], "samples at 64x64"),
        (["--class-label", "3", "--guidance-rescale", "0.5"], "guidance rescale is not part of DiTPipeline"),
        (["--class-label", "3", "--batch-count", "2"], "needs %d"),
        (["--class-label", "3", "4"], "needs %d"),
        (["--class-label", "3", "--sampler", "flow_euler"], "flow-matching"),
        (["--class-label", "3", "--init-image", "INIT"], "img2img with a DiT model"),
    ])
    func badInputExitsWithTwo(_ extra: [String], _ message: String) throws {
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("out.png")
        let substitutions = ["INIT": PipelineFixtures.folder.appendingPathComponent("init.png").path, "OUT%d": folder.appendingPathComponent("out-%d.png").path]
        let run = try GenerateCommandTests.kiln(["generate", "--model", Self.model.path, "--backend", "cpu", "--output", output.path]
                                                + extra.map { substitutions[$0] ?? $0 })
        #expect(run.status == 2, "\(extra): exit \(run.status), stderr \(run.errors)")
        #expect(run.errors.contains(message), "\(extra): stderr \(run.errors)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty, "\(extra): a file was written")
    }

    @Test func textModelsRefuseClassLabelsAndDiTFilesNeedAConfig() throws {
        let sd = try PipelineFixtures.modelFolder("sd1")
        let labelled = try GenerateCommandTests.kiln(["generate", "--model", sd.path, "--class-label", "3", "--backend", "cpu"])
        #expect(labelled.status == 2)
        #expect(labelled.errors.contains("class labels are for class-conditional models"), "\(labelled.errors)")
        let noPrompt = try GenerateCommandTests.kiln(["generate", "--model", sd.path, "--backend", "cpu"])
        #expect(noPrompt.status == 2)
        #expect(noPrompt.errors.contains("--prompt is required"), "\(noPrompt.errors)")
        let noConfig = try GenerateCommandTests.kiln(["generate", "--model", Self.original.path, "--class-label", "3", "--backend", "cpu"])
        #expect(noConfig.status == 2)
        #expect(noConfig.errors.contains("--config"), "\(noConfig.errors)")
    }
}
