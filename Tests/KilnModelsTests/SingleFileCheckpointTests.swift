import Foundation
import Kiln
import Testing

/// The fixture single files hold the same weights as the diffusers folders under the original
/// key names (verified by diffusers' own from_single_file when generated). Read through Kiln's
/// key mapping, every tensor of every component must equal the diffusers folder's.
@Suite struct SingleFileCheckpointTests {
    static func open(_ family: String) throws -> SingleFileCheckpoint {
        try SingleFileCheckpoint(url: StableDiffusionComponentTests.root.appendingPathComponent("\(family)/single_file.safetensors"))
    }

    /// Every diffusers tensor is presented by the single file with equal shape and values.
    static func expectSameWeights(_ mapped: RenamedTensorSource, _ folder: URL, baseName: String, _ label: String) throws {
        let reference = try SafeTensorsSource.component(folder: folder, baseName: baseName)
        let missing = reference.names.filter { mapped.shape(of: $0) == nil }
        #expect(missing.isEmpty, "\(label): not mapped: \(missing.prefix(5))")
        for name in reference.names where mapped.shape(of: name) != nil {
            let expected = try reference.load(name), actual = try mapped.load(name)
            #expect(actual.shape == expected.shape && actual.scalars == expected.scalars, "\(label): \(name) differs")
        }
    }

    @Test(arguments: [("sd1", SingleFileCheckpoint.Family.sd1), ("sd2", .sd2), ("sdxl", .sdxl)])
    func everyComponentMatchesTheDiffusersFolder(_ family: String, _ expected: SingleFileCheckpoint.Family) throws {
        let checkpoint = try Self.open(family)
        #expect(checkpoint.family == expected)
        let folder = { (component: String) in StableDiffusionComponentTests.folder(family, component) }
        let unetConfiguration = try UNetConfiguration.load(folder("unet").appendingPathComponent("config.json"))
        let unet = checkpoint.unet(configuration: unetConfiguration)
        try Self.expectSameWeights(unet, folder("unet"), baseName: "diffusion_pytorch_model", "\(family) unet")
        try Self.expectSameWeights(checkpoint.vae(), folder("vae"), baseName: "diffusion_pytorch_model", "\(family) vae")
        try Self.expectSameWeights(checkpoint.textEncoder(), folder("text_encoder"), baseName: "model", "\(family) text_encoder")
        if expected == .sdxl {
            try Self.expectSameWeights(checkpoint.textEncoder2(), folder("text_encoder_2"), baseName: "model", "\(family) text_encoder_2")
        }
        #expect(unet.unusedStoredNames.filter { $0.hasPrefix("model.diffusion_model.") }.isEmpty)
    }

    /// The loading path end to end: the U-Net built from the single file reproduces diffusers' output.
    @Test func unetFromSingleFileMatchesDiffusers() throws {
        let records = try StableDiffusionComponentTests.records("sdxl")
        let configuration = try UNetConfiguration.load(StableDiffusionComponentTests.folder("sdxl", "unet").appendingPathComponent("config.json"))
        let source = try Self.open("sdxl").unet(configuration: configuration)
        let inputs = ["sample": try records("unet.sample"), "t": try records("unet.timestep"), "text": try records("unet.encoder_hidden_states"),
                      "text_embeds": try records("unet.text_embeds"), "time_ids": try records("unet.time_ids")]
        let model = UNet2DConditionModel(configuration: configuration)
        let output = try StableDiffusionComponentTests.run(source: source, backend: CPUBackend(), dtype: .float32, inputs: inputs) { weights, x in
            [try model(sample: x["sample"]!, timesteps: x["t"]!, text: x["text"]!,
                       added: .init(textEmbeddings: x["text_embeds"]!, timeIDs: x["time_ids"]!), weights: weights)]
        }
        StableDiffusionComponentTests.expectClose(output[0], try records("unet.noise_pred"), 1e-4, "sdxl single-file unet")
    }

    /// `--vae` accepts a diffusers folder, a file with original names (with or without
    /// `first_stage_model.`), and rejects anything else.
    @Test func vaeOverrideForms() throws {
        let folder = StableDiffusionComponentTests.folder("sd2", "vae")
        let reference = try SafeTensorsSource.component(folder: folder, baseName: "diffusion_pytorch_model")
        let fromFolder = try SingleFileCheckpoint.vaeOverride(folder)
        #expect(fromFolder.names == reference.names)
        let original = try Self.open("sd2")
        let temporary = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-vae-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: temporary) }
        var bare: [String: HostTensor] = [:]
        for name in original.file.names where name.hasPrefix("first_stage_model.") {
            bare[String(name.dropFirst("first_stage_model.".count))] = try original.file.load(name)
        }
        let file = temporary.appendingPathComponent("vae.safetensors")
        try SafeTensorsFile.write(bare, to: file)
        let fromFile = try SingleFileCheckpoint.vaeOverride(file)
        for name in reference.names {
            #expect(try fromFile.load(name).scalars == reference.load(name).scalars, "\(name)")
        }
        let notVAE = temporary.appendingPathComponent("other.safetensors")
        try SafeTensorsFile.write(["x": HostTensor(shape: [1], scalars: [0])], to: notVAE)
        #expect(throws: ConfigurationError.self) { try SingleFileCheckpoint.vaeOverride(notVAE) }
    }

    @Test func unknownFamilyAndMissingTensorsAreNamed() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-single-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let unknown = folder.appendingPathComponent("unknown.safetensors")
        try SafeTensorsFile.write(["some.other.weight": HostTensor(shape: [2], scalars: [1, 2])], to: unknown)
        do {
            _ = try SingleFileCheckpoint(url: unknown)
            Issue.record("a file without Stable Diffusion keys was accepted")
        } catch let error as ConfigurationError {
            #expect(error.description.contains("unknown model family") && error.file == unknown.path)
        }
        // Drop one U-Net tensor: building the U-Net names the file and the missing key.
        let original = try Self.open("sd1")
        var tensors: [String: HostTensor] = [:]
        for name in original.file.names where name != "model.diffusion_model.out.2.weight" { tensors[name] = try original.file.load(name) }
        let damaged = folder.appendingPathComponent("damaged.safetensors")
        try SafeTensorsFile.write(tensors, to: damaged)
        let configuration = try UNetConfiguration.load(StableDiffusionComponentTests.folder("sd1", "unet").appendingPathComponent("config.json"))
        let graph = Graph()
        let binder = WeightBinder(graph: graph, source: try SingleFileCheckpoint(url: damaged).unet(configuration: configuration), dtype: .float32)
        do {
            _ = try UNet2DConditionModel(configuration: configuration)(
                sample: graph.input("s", [1, 4, 8, 8]), timesteps: graph.input("t", [1]), text: graph.input("c", [1, 77, 8]), weights: WeightScope(binder))
            Issue.record("a U-Net without conv_out.weight was built")
        } catch let error as WeightError {
            #expect(error == .missing(origin: damaged.path, name: "conv_out.weight", expected: [4, 8, 3, 3]))
        }
        // A truncated file is rejected by the safetensors reader.
        let truncated = folder.appendingPathComponent("truncated.safetensors")
        try Data(try Data(contentsOf: damaged).prefix(1000)).write(to: truncated)
        #expect(throws: SafeTensorsError.self) { try SingleFileCheckpoint(url: truncated) }
    }
}

/// Without a config folder, a single file's configurations come from its tensor shapes. Every
/// field shapes can tell must equal the fixture's diffusers config (head counts and GroupNorm
/// groups cannot be seen in weights; the tiny fixtures use non-standard ones on purpose).
@Suite struct InferredConfigurationTests {
    @Test(arguments: ["sd1", "sd2", "sdxl"])
    func shapesGiveTheDiffusersConfiguration(_ family: String) throws {
        let inferred = try SingleFileCheckpointTests.open(family).inferredConfigurations()
        let folder = { (component: String) in StableDiffusionComponentTests.folder(family, component).appendingPathComponent("config.json") }
        let unet = try UNetConfiguration.load(folder("unet"))
        let u = inferred.unet
        #expect(u.inChannels == unet.inChannels && u.outChannels == unet.outChannels)
        #expect(u.blockOutChannels == unet.blockOutChannels)
        #expect(u.downBlockTypes == unet.downBlockTypes && u.upBlockTypes == unet.upBlockTypes)
        #expect(u.layersPerBlock == unet.layersPerBlock)
        #expect(u.transformerLayersPerBlock == unet.transformerLayersPerBlock)
        #expect(u.crossAttentionDimension == unet.crossAttentionDimension)
        #expect(u.useLinearProjection == unet.useLinearProjection)
        #expect(u.additionEmbedType == unet.additionEmbedType)
        #expect(u.additionTimeEmbedDimension == unet.additionTimeEmbedDimension)
        #expect(u.projectionClassEmbeddingsInputDimension == unet.projectionClassEmbeddingsInputDimension)

        let vae = try AutoencoderKLConfiguration.load(folder("vae"))
        let v = inferred.vae
        #expect(v.blockOutChannels == vae.blockOutChannels && v.layersPerBlock == vae.layersPerBlock)
        #expect(v.latentChannels == vae.latentChannels && v.inChannels == vae.inChannels && v.outChannels == vae.outChannels)
        #expect(v.scalingFactor == vae.scalingFactor)

        for (component, text) in [("text_encoder", inferred.textEncoder), ("text_encoder_2", inferred.textEncoder2)] {
            guard let text else { continue }
            let expected = try CLIPTextConfiguration.load(folder(component))
            #expect(text.vocabularySize == expected.vocabularySize && text.hiddenSize == expected.hiddenSize)
            #expect(text.intermediateSize == expected.intermediateSize && text.layerCount == expected.layerCount, "\(family) \(component)")
            #expect(text.maxPositionEmbeddings == expected.maxPositionEmbeddings && text.activation == expected.activation)
            #expect(text.hasProjection == expected.hasProjection)
            if text.hasProjection { #expect(text.projectionSize == expected.projectionSize) }
        }
        #expect((inferred.textEncoder2 != nil) == (family == "sdxl"))
    }
}
