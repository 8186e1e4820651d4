import Foundation
import Kiln
import KilnVerification
import Testing

/// TAESD against diffusers' AutoencoderTiny on random weights (Tests/Fixtures/generate_taesd_fixtures.py):
/// the decoder from a diffusers folder and from a released-style `_decoder.safetensors` file,
/// the encoder, on both backends; then in a pipeline, for previews and the final decode.
@Suite(.serialized) struct TAESDTests {
    static let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("taesd")
    static let models: [(name: String, channels: Int)] = [("taesd", 4), ("taef1", 16)]

    static func backends() throws -> [(Backend, DType, Float)] {
        let gpu = try VulkanBackend()
        return [(CPUBackend(), .float32, 1e-3), (gpu, .float32, 1e-3), (gpu, .float16, 2e-2)]
    }

    @Test(arguments: ["folder", "file"])
    func decoderMatchesDiffusers(_ form: String) throws {
        let records = try SafeTensorsFile(url: Self.folder.appendingPathComponent("records.safetensors"))
        for (name, channels) in Self.models {
            let url = form == "folder" ? Self.folder.appendingPathComponent(name) : Self.folder.appendingPathComponent("\(name)_decoder.safetensors")
            for (backend, dtype, tolerance) in try Self.backends() {
                // A file carries no factors: a 16-channel one takes the model VAE's (FLUX.1's here).
                let taesd = try TinyAutoencoder(url: url, latentChannels: channels, vaeScaling: 0.3611, vaeShift: 0.1159, backend: backend, dtype: dtype)
                let decoded = try taesd.decode(ShapedArray(try records.tensor("\(name).latents")))
                let expected = try records.tensor("\(name).decoded")
                #expect(decoded.shape == expected.shape.dimensions)
                let error = Verification.compare(HostTensor(shape: expected.shape, scalars: decoded.scalars), expected).relative
                print("\(name) \(form) \(backend.name) \(dtype.shortName): decode error \(error)")
                #expect(error <= tolerance, "\(name) \(form) \(backend.name) \(dtype.shortName): off by \(error)")
            }
        }
    }

    @Test func encoderMatchesDiffusers() throws {
        let records = try SafeTensorsFile(url: Self.folder.appendingPathComponent("records.safetensors"))
        for (name, _) in Self.models {
            let modelFolder = Self.folder.appendingPathComponent(name)
            let configuration = try AutoencoderTinyConfiguration.load(modelFolder.appendingPathComponent("config.json"))
            let weights = try SafeTensorsSource.component(folder: modelFolder, baseName: "diffusion_pytorch_model")
            let image = try records.tensor("\(name).image")
            for (backend, dtype, tolerance) in try Self.backends() {
                let graph = Graph()
                let binder = WeightBinder(graph: graph, source: weights, dtype: dtype)
                let output = try AutoencoderTiny(configuration: configuration).encode(graph.input("image", image.shape, dtype: dtype), weights: WeightScope(binder))
                // diffusers' encoder reads (x + 1) / 2.
                let unit = HostTensor(shape: image.shape, scalars: image.scalars.map { ($0 + 1) / 2 })
                let encoded = try backend.run(graph, outputs: [output], inputs: ["image": unit], constants: binder.constants())[0]
                let error = Verification.compare(encoded, try records.tensor("\(name).encoded")).relative
                print("\(name) \(backend.name) \(dtype.shortName): encode error \(error)")
                #expect(error <= tolerance, "\(name) \(backend.name) \(dtype.shortName): encoder off by \(error)")
            }
        }
    }

    /// The pipeline's previews are TAESD's decodes at the image's size, and a request may decode
    /// its final image with TAESD.
    @Test func pipelinePreviewsAndDecodes() throws {
        let pipeline = try Pipelines.open(
            try PipelineFixtures.modelFolder("sd1"), tinyAutoencoder: Self.folder.appendingPathComponent("taesd"), backend: CPUBackend(), dtype: .float32)
        var request = ModelFolders.request(.stableDiffusion1, pipeline: pipeline, width: 64, height: 48, steps: 2)
        request.options.decodesWithTinyAutoencoder = true
        var previews: [(PreviewImage, Int)] = []
        let result = try pipeline.generate(request, progress: { progress in
            if let preview = try? progress.latents?.decodedPreview() { previews.append(preview) }
        }, isCancelled: { false })
        #expect(previews.count == result.timesteps.count, "a preview per model call")
        #expect(previews.allSatisfy { $0.0.width == 64 && $0.0.height == 48 && $0.1 == 1 })
        #expect(result.images.shape == [1, 3, 48, 64])
        let taesd = try TinyAutoencoder(url: Self.folder.appendingPathComponent("taesd"), latentChannels: 4, vaeScaling: 1, vaeShift: nil,
                                        backend: CPUBackend(), dtype: .float32)
        #expect(result.images == (try taesd.decode(result.latents)))

        do {
            _ = try Pipelines.open(try PipelineFixtures.modelFolder("sd1"), tinyAutoencoder: Self.folder.appendingPathComponent("taef1"),
                                   backend: CPUBackend(), dtype: .float32)
            Issue.record("a 16-channel TAESD was accepted for SD1")
        } catch let error as PipelineError {
            #expect("\(error)".contains("16-channel"), "\(error)")
        }
    }

    /// `kiln generate --taesd PATH` decodes the final image with TAESD: the PNG holds TAESD's
    /// decode of the saved latents, not the VAE's; a TAESD that cannot read the model's latents,
    /// or a missing one, is bad input.
    @Test func generateDecodesTheFinalImageWithTAESD() throws {
        let model = try PipelineFixtures.modelFolder("sd1")
        let scratch = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let output = scratch.appendingPathComponent("tiny.png"), latents = scratch.appendingPathComponent("latents.safetensors")
        let tiny = Self.folder.appendingPathComponent("taesd")
        let run = try GenerateCommandTests.kiln(
            try GenerateCommandTests.baseArguments(model: model, output: output) + ["--taesd", tiny.path, "--save-latents", latents.path])
        #expect(run.status == 0, "\(run.errors)")

        let saved = ShapedArray(try SafeTensorsFile(url: latents).tensor("latents"))
        let taesd = try TinyAutoencoder(url: tiny, latentChannels: 4, vaeScaling: 1, vaeShift: nil, backend: CPUBackend(), dtype: .float32)
        let decoded = try taesd.decode(saved)
        let expected = try DiffusersImageProcessor.postprocess(try ImageTensor(shape: decoded.shape, values: decoded.scalars))[0]
        let written = try PNGImage(contentsOf: output)
        #expect(written.width == expected.width && written.height == expected.height)
        #expect(written.pixels == expected.pixels, "the PNG is TAESD's decode of the final latents")
        let json = try #require(written.text.first { $0.keyword == "kiln" }?.text)
        let settings = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(settings["taesd"] as? String == "taesd", "the kiln chunk names the decoder: \(json)")

        let plain = scratch.appendingPathComponent("vae.png")
        let vaeRun = try GenerateCommandTests.kiln(try GenerateCommandTests.baseArguments(model: model, output: plain) + ["--quiet"])
        #expect(vaeRun.status == 0, "\(vaeRun.errors)")
        let vaeImage = try PNGImage(contentsOf: plain)
        #expect(vaeImage.pixels != written.pixels, "without --taesd the VAE decodes, so the check above tells them apart")
        #expect(vaeImage.text.first { $0.keyword == "kiln" }?.text.contains("\"taesd\"") == false)

        for (path, message) in [(Self.folder.appendingPathComponent("taef1").path, "16-channel"), (scratch.appendingPathComponent("none").path, scratch.appendingPathComponent("none").path)] {
            let refused = try GenerateCommandTests.kiln(
                try GenerateCommandTests.baseArguments(model: model, output: scratch.appendingPathComponent("refused.png")) + ["--taesd", path])
            #expect(refused.status == 2, "--taesd \(path): \(refused.errors)")
            #expect(refused.errors.contains(message), "\(refused.errors)")
            #expect(!FileManager.default.fileExists(atPath: scratch.appendingPathComponent("refused.png").path))
        }
    }
}
