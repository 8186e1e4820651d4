import Foundation
import Kiln
import KilnVerification
import Testing

/// SD3 from Stability's single files: the committed file carries the transformer and the VAE
/// under their original names (diffusers' from_single_file loads exactly the folder's weights
/// from it), so the folder's recorded generations apply; a file that also carries CLIP-G under
/// `text_encoders.clip_g.transformer.` must give the same latents again.
@Suite(.serialized) struct SD3SingleFileTests {
    static let singleFile = SD3PipelineParityTests.fixtures.appendingPathComponent("single_file.safetensors")

    static func expectRecordedLatents(file: URL, caseName: String = "sd3_negative") throws {
        let testCase = try #require(SD3PipelineParityTests.cases.first { $0.name == caseName })
        let pipeline = try StableDiffusion3Pipeline(
            url: file, configFolder: try SD3PipelineParityTests.modelFolder(), backend: CPUBackend(), dtype: .float32)
        let result = try pipeline.generate(testCase.request, isCancelled: { false })
        let expected = try SafeTensorsFile(url: SD3PipelineParityTests.fixtures.appendingPathComponent("latents.safetensors"))
            .tensor("\(caseName).latents")
        let error = Verification.compare(HostTensor(shape: expected.shape, scalars: result.latents.scalars), expected).relative
        print("SD3 single file \(file.lastPathComponent) \(caseName) cpu: latent error \(error)")
        #expect(error <= 1e-3, "\(file.lastPathComponent): latents off by \(error)")
    }

    @Test func transformerAndVAEFromTheSingleFile() throws {
        let folder = try StableDiffusion3Folder(singleFile: Self.singleFile, configFolder: try SD3PipelineParityTests.modelFolder())
        #expect(folder.transformer.weights.origin == Self.singleFile.path)
        #expect(folder.vae.weights.origin == Self.singleFile.path)
        #expect(folder.textEncoder2.weights.origin != Self.singleFile.path, "the file has no CLIP-G: the config folder's is used")
        try Self.expectRecordedLatents(file: Self.singleFile)
    }

    @Test func clipGFromTheSingleFile() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-sd3-single-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        var tensors: [String: HostTensor] = [:]
        let base = try SafeTensorsSource(files: [Self.singleFile])
        for name in base.names { tensors[name] = try base.load(name) }
        let clipG = try SafeTensorsSource.component(
            folder: PipelineFixtures.models.appendingPathComponent("sd/sdxl/diffusers/text_encoder_2"), baseName: "model")
        for name in clipG.names { tensors["text_encoders.clip_g.transformer." + name] = try clipG.load(name) }
        let file = scratch.appendingPathComponent("sd3_with_clip_g.safetensors")
        try SafeTensorsFile.write(tensors, to: file)

        let folder = try StableDiffusion3Folder(singleFile: file, configFolder: try SD3PipelineParityTests.modelFolder())
        #expect(folder.textEncoder2.weights.origin == file.path)
        try Self.expectRecordedLatents(file: file)
    }

    /// T5 from the file (`text_encoders.t5xxl.transformer.`) rather than the config folder's, read
    /// with the config folder's text_encoder_3/config.json (T5-XXL's when the folder has none).
    @Test func t5FromTheSingleFile() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-sd3-single-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        var tensors: [String: HostTensor] = [:]
        let base = try SafeTensorsSource(files: [Self.singleFile])
        for name in base.names { tensors[name] = try base.load(name) }
        let folder = try SD3PipelineParityTests.modelFolder()
        let t5 = try SafeTensorsSource.component(folder: folder.appendingPathComponent("text_encoder_3"), baseName: "model")
        for name in t5.names { tensors["text_encoders.t5xxl.transformer." + name] = try t5.load(name) }
        let file = scratch.appendingPathComponent("sd3_with_t5.safetensors")
        try SafeTensorsFile.write(tensors, to: file)

        let opened = try StableDiffusion3Folder(singleFile: file, configFolder: folder)
        #expect(opened.hasT5Encoder)
        #expect(opened.textEncoder3?.weights.origin == file.path)
        #expect(try StableDiffusion3Folder(singleFile: file, configFolder: folder, loadingT5: false).textEncoder3 == nil)
        try Self.expectRecordedLatents(file: file, caseName: "sd3_t5_negative")
    }

    /// SD3's CLIP-L in a single file: transformers' names under `text_encoders.clip_l.transformer.`,
    /// with diffusers' identity `text_projection` whatever the file holds.
    @Test func clipLNamesAndIdentityProjection() throws {
        let prefix = "text_encoders.clip_l.transformer."
        let file = InMemoryTensors([
            prefix + "text_model.embeddings.position_embedding.weight": HostTensor(shape: [77, 3], scalars: .init(repeating: 0.5, count: 231)),
            prefix + "text_model.final_layer_norm.weight": HostTensor(shape: [3], scalars: [1, 2, 3]),
            prefix + "text_projection.weight": HostTensor(shape: [3, 3], scalars: .init(repeating: 7, count: 9)),
            "model.diffusion_model.pos_embed": HostTensor(shape: [1, 4, 3], scalars: .init(repeating: 0, count: 12)),
        ])
        let clipL = try #require(try SD3OriginalKeyNames.clipL(file))
        #expect(clipL.names == ["text_model.embeddings.position_embedding.weight", "text_model.final_layer_norm.weight", "text_projection.weight"])
        #expect(try clipL.load("text_model.final_layer_norm.weight").scalars == [1, 2, 3])
        #expect(try clipL.load("text_projection.weight").scalars == [1, 0, 0, 0, 1, 0, 0, 0, 1])
        #expect(SD3OriginalKeyNames.clipG(file) == nil)
    }
}
