import Foundation
import Kiln
import KilnVerification
import Testing

/// `kiln generate` and `kiln info` as a user runs them: the built executable on the tiny SD1
/// folder, checking files, metadata, determinism, exit codes and that bad input leaves nothing.
@Suite(.serialized) struct GenerateCommandTests {
    /// `swift test` builds every product into the folder that also holds the test resources.
    static let executable = Bundle.module.bundleURL.deletingLastPathComponent().appendingPathComponent("kiln")

    struct Outcome {
        let status: Int32
        let output: String
        let errors: String
    }

    static func kiln(_ arguments: [String], environment: [String: String] = [:]) throws -> Outcome {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Outcome(status: process.terminationStatus, output: String(decoding: outputData, as: UTF8.self),
                       errors: String(decoding: errorData, as: UTF8.self))
    }

    static func scratch() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-generate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    /// The settings of the recorded `sd1_euler` case, so the latents can be checked too.
    static func baseArguments(model: URL, output: URL) throws -> [String] {
        let recorded = try #require(PipelineFixtures.cases.first { $0.name == "sd1_euler" })
        return ["generate", "--model", model.path, "--prompt", recorded.prompt, "--negative-prompt", recorded.negativePrompt!,
                "--width", "\(recorded.width)", "--height", "\(recorded.height)", "--steps", "\(recorded.steps)",
                "--cfg-scale", "\(recorded.cfgScale)", "--sampler", recorded.sampler!, "--seed", "\(recorded.seed)",
                "--backend", "cpu", "--output", output.path]
    }

    @Test func generatesAPNGWithMetadataAndTheSameBytesTwice() throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.executable.path), "kiln not built at \(Self.executable.path)")
        let model = try PipelineFixtures.modelFolder("sd1")
        let folder = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let first = folder.appendingPathComponent("a.png"), second = folder.appendingPathComponent("b.png")
        let latents = folder.appendingPathComponent("latents.safetensors")

        let run = try Self.kiln(try Self.baseArguments(model: model, output: first) + ["--save-latents", latents.path])
        #expect(run.status == 0, "\(run.errors)")
        #expect(run.errors.contains("step 4/4"), "progress on stderr: \(run.errors)")
        let again = try Self.kiln(try Self.baseArguments(model: model, output: second) + ["--quiet"])
        #expect(again.status == 0, "\(again.errors)")
        #expect(again.errors.isEmpty, "--quiet prints nothing: \(again.errors)")
        #expect(try Data(contentsOf: first) == Data(contentsOf: second), "same seed, same bytes")

        // The saved latents are diffusers' (output_type="latent").
        let saved = try SafeTensorsFile(url: latents).tensor("latents")
        let expected = try PipelineFixtures.records().tensor("sd1_euler.latents")
        #expect(saved.shape == expected.shape)
        #expect(Verification.compare(saved, expected).relative <= 1e-3)

        // `kiln info` reads the parameters back.
        let info = try Self.kiln(["info", first.path, "--json"])
        #expect(info.status == 0, "\(info.errors)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(info.output.utf8)) as? [String: Any])
        let text = try #require(object["text"] as? [String: String])
        let parameters = try #require(text["parameters"])
        #expect(parameters.hasPrefix("a photo of an astronaut riding a horse\nNegative prompt: blurry, low quality\nSteps: 4, Sampler: Euler, CFG scale: 7.5, Seed: 103, Size: 64x48, Model hash: "))
        let kiln = try #require(object["kiln"] as? [String: Any])
        #expect(kiln["seed"] as? Int == 103)
        #expect(kiln["sampler"] as? String == "euler")
        #expect((kiln["model_sha256"] as? String)?.count == 64)
        #expect(kiln["kiln_version"] as? String == KilnVersion.string)
    }

    @Test func batchesNameTheirFilesAndJSONSummarises() throws {
        let model = try PipelineFixtures.modelFolder("sd1")
        let folder = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let pattern = folder.appendingPathComponent("image-%02d.png")
        let run = try Self.kiln(["generate", "--model", model.path, "--prompt", "a cat", "--width", "64", "--height", "64",
                                 "--steps", "2", "--batch-count", "2", "--seed", "9", "--backend", "cpu", "--output", pattern.path, "--json"])
        #expect(run.status == 0, "\(run.errors)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any])
        let outputs = try #require(summary["outputs"] as? [String])
        #expect(outputs.map { URL(fileURLWithPath: $0).lastPathComponent } == ["image-00.png", "image-01.png"])
        for output in outputs { #expect(FileManager.default.fileExists(atPath: output)) }
    }

    /// Each bad input: exit code 2, a message naming the problem, and no file written.
    @Test(arguments: [
        (["--steps", "0"], "steps 0"),
        (["--strength", "1.5", "--init-image", "INIT"], "strength 1.5"),
        (["--sampler", "euler_b"], "--sampler 'euler_b'"),
        (["--sampler", "flow_euler"], "flow-matching model"),
        (["--sampler", "ddim", "--scheduler", "karras"], "karras"),
        (["--width", "60"], "multiples of 8"),
        (["--init-image", "NOTPNG"], "--init-image"),
        (["--init-image", "MISSING"], "--init-image"),
        (["--init-image", "INIT", "--mask", "SMALLMASK"], "mask is 32x24"),
        (["--class-label", "3"], "give --prompt or --class-label, not both"),
        (["--max-sequence-length", "77"], "no T5 encoder"),
        (["--scheduler", "cosine"], "--scheduler"),
        (["--backend", "metal"], "--backend"),
        (["--init-image", "INIT", "--strength", "0.1", "--steps", "4"], "no denoising step"),
    ])
    func badInputExitsWithTwo(_ extra: [String], _ message: String) throws {
        let model = try PipelineFixtures.modelFolder("sd1")
        let folder = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let notPNG = folder.appendingPathComponent("notpng.png")
        try Data("this is not an image".utf8).write(to: notPNG)
        let smallMask = folder.appendingPathComponent("small-mask.png")
        try FileManager.default.copyItem(at: PipelineFixtures.folder.appendingPathComponent("init.png"), to: folder.appendingPathComponent("init.png"))
        try ImageFilesForTests.writeGray(width: 32, height: 24, to: smallMask)
        let substitutions = ["INIT": folder.appendingPathComponent("init.png").path, "NOTPNG": notPNG.path,
                             "MISSING": folder.appendingPathComponent("missing.png").path, "SMALLMASK": smallMask.path]
        let output = folder.appendingPathComponent("out.png")
        let arguments = ["generate", "--model", model.path, "--prompt", "a cat", "--backend", "cpu", "--steps", "2",
                         "--output", output.path] + extra.map { substitutions[$0] ?? $0 }
        let run = try Self.kiln(arguments)
        #expect(run.status == 2, "\(extra): exit \(run.status), stderr \(run.errors)")
        #expect(run.errors.contains(message), "\(extra): stderr \(run.errors)")
        #expect(!FileManager.default.fileExists(atPath: output.path), "\(extra): an output was written")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { !["notpng.png", "small-mask.png", "init.png"].contains($0) }
        #expect(leftovers.isEmpty, "\(extra): left \(leftovers)")
    }

    /// The README's first command: no --model is Kiln's built-in model, at its recommended
    /// settings, and the image is the library's; `kiln models` names it and where it is.
    @Test func noModelIsTheBuiltInModel() throws {
        let folder = try Self.scratch()
        let output = folder.appendingPathComponent("first.png")
        let run = try Self.kiln(["generate", "--prompt", "a large red circle on a blue background", "--seed", "4", "--output", output.path, "--quiet"])
        #expect(run.status == 0, "\(run.errors)")
        let pipeline = try Pipelines.openDefault(backend: VulkanBackend())
        #expect(pipeline.defaults.steps == 12 && pipeline.defaults.guidanceScale == 4)
        let result = try pipeline.generate(pipeline.defaults.request(.prompt("a large red circle on a blue background", negative: nil), seed: 4))
        let written = try PNGImage(contentsOf: output)
        let images = try DiffusersImageProcessor.postprocess(ImageTensor(shape: result.images.shape, values: result.images.scalars))
        #expect(written.pixels == images.first?.pixels)

        let models = try Self.kiln(["models", "--json"])
        #expect(models.status == 0)
        let description = try #require(try JSONSerialization.jsonObject(with: Data(models.output.utf8)) as? [String: Any])
        #expect(description["name"] as? String == "kiln-shapes")
        #expect(description["path"] as? String == pipeline.modelURL.path)
    }

    @Test func missingModelExitsWithTwo() throws {
        let run = try Self.kiln(["generate", "--model", "/nonexistent/model", "--prompt", "a cat", "--backend", "cpu"])
        #expect(run.status == 2)
        #expect(run.errors.contains("/nonexistent/model"))
    }
}
