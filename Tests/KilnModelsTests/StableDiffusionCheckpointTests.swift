import Foundation
import Kiln
import Testing

/// `StableDiffusionCheckpoint` end to end: each fixture's single original-layout file, opened
/// with its diffusers folder as `configFolder`, must reproduce every recorded diffusers output on
/// the CPU and on Vulkan with the same tolerances as the diffusers folders themselves; damaged
/// files must fail with errors that name the file and the tensor.
@Suite(.serialized) struct StableDiffusionCheckpointTests {
    typealias Components = StableDiffusionComponentTests

    static func singleFile(_ family: String) -> URL { Components.root.appendingPathComponent("\(family)/single_file.safetensors") }
    static func diffusers(_ family: String) -> URL { Components.root.appendingPathComponent("\(family)/diffusers") }

    static func open(_ family: String) throws -> StableDiffusionCheckpoint {
        try StableDiffusionCheckpoint(url: singleFile(family), configFolder: diffusers(family))
    }

    /// A scratch folder removed when `body` returns.
    static func withTemporaryFolder(_ body: (URL) throws -> Void) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-checkpoint-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try body(folder)
    }

    /// A copy of `family`'s single file with `edit` applied to its tensors.
    static func modifiedCopy(_ family: String, in folder: URL, _ edit: (inout [String: HostTensor]) -> Void) throws -> URL {
        let original = try SafeTensorsFile(url: singleFile(family))
        var tensors: [String: HostTensor] = [:]
        for name in original.names { tensors[name] = try original.tensor(name) }
        edit(&tensors)
        let url = folder.appendingPathComponent("\(family)-modified.safetensors")
        try SafeTensorsFile.write(tensors, to: url)
        return url
    }

    // MARK: Components against diffusers' recorded outputs

    @Test(arguments: [("sd1", StableDiffusionFamily.sd1), ("sd2", .sd2), ("sdxl", .sdxl)])
    func singleFileComponentsMatchDiffusers(_ family: String, _ expected: StableDiffusionFamily) throws {
        let checkpoint = try Self.open(family)
        #expect(checkpoint.family == expected)
        let label = "single file: "
        try Components.expectTextEncoder(checkpoint.textEncoder.model, checkpoint.textEncoder.weights, family, "text_encoder", "tokenizer", label: label)
        if let second = checkpoint.textEncoder2 {
            try Components.expectTextEncoder(second.model, second.weights, family, "text_encoder_2", "tokenizer_2", label: label)
        }
        #expect((checkpoint.textEncoder2 != nil) == (expected == .sdxl))
        try Components.expectVAE(checkpoint.vae.model, checkpoint.vae.weights, family, label: label)
        try Components.expectUNet(checkpoint.unet.model, checkpoint.unet.weights, family, "unet", label: label)
    }

    /// Opening the diffusers folder itself gives the family and the folder's own configs and files.
    @Test(arguments: [("sd1", StableDiffusionFamily.sd1), ("sd2", .sd2), ("sdxl", .sdxl)])
    func diffusersFolderOpens(_ family: String, _ expected: StableDiffusionFamily) throws {
        let checkpoint = try StableDiffusionCheckpoint(url: Self.diffusers(family))
        #expect(checkpoint.family == expected)
        #expect(checkpoint.unet.configuration == (try UNetConfiguration.load(Components.folder(family, "unet").appendingPathComponent("config.json"))))
        #expect(checkpoint.textEncoder.weights.origin.hasSuffix("text_encoder/model.safetensors"))
        #expect(try checkpoint.validate().isEmpty)
    }

    /// Without a config folder the configurations come from the tensor shapes; the U-Net key
    /// mapping built from them must place every U-Net tensor, and the shape-visible fields must
    /// agree with the fixture's diffusers configs.
    @Test(arguments: [("sd1", StableDiffusionFamily.sd1), ("sd2", .sd2), ("sdxl", .sdxl)])
    func singleFileWithoutConfigFolderInfersTheLayout(_ family: String, _ expected: StableDiffusionFamily) throws {
        let checkpoint = try StableDiffusionCheckpoint(url: Self.singleFile(family))
        #expect(checkpoint.family == expected)
        let reference = try UNetConfiguration.load(Components.folder(family, "unet").appendingPathComponent("config.json"))
        #expect(checkpoint.unet.configuration.blockOutChannels == reference.blockOutChannels)
        #expect(checkpoint.unet.configuration.layersPerBlock == reference.layersPerBlock)
        #expect(checkpoint.unet.configuration.downBlockTypes == reference.downBlockTypes)
        let weights = try #require(checkpoint.unet.weights as? RenamedTensorSource)
        #expect(weights.unusedStoredNames.filter { $0.hasPrefix("model.diffusion_model.") }.isEmpty)
        #expect(checkpoint.textEncoder.configuration.layerCount
                == (try CLIPTextConfiguration.load(Components.folder(family, "text_encoder").appendingPathComponent("config.json"))).layerCount)
    }

    // MARK: Which tensors of a single file go unused

    /// Every tensor of each single file is read by some component, except those diffusers also
    /// leaves out: SD2's last OpenCLIP block (its config stops one layer early), OpenCLIP's
    /// `logit_scale` (a contrastive-training temperature) and SD2's `text_projection` (only
    /// SDXL's second encoder projects).
    @Test(arguments: ["sd1", "sd2", "sdxl"])
    func onlyKnownTensorsAreUnused(_ family: String) throws {
        let checkpoint = try Self.open(family)
        var expected: [String] = []
        switch family {
        case "sd2":
            let last = checkpoint.textEncoder.configuration.layerCount
            let block = "cond_stage_model.model.transformer.resblocks.\(last)."
            expected = ["attn.in_proj_bias", "attn.in_proj_weight", "attn.out_proj.bias", "attn.out_proj.weight", "ln_1.bias", "ln_1.weight",
                        "ln_2.bias", "ln_2.weight", "mlp.c_fc.bias", "mlp.c_fc.weight", "mlp.c_proj.bias", "mlp.c_proj.weight"].map { block + $0 }
            expected += ["cond_stage_model.model.logit_scale", "cond_stage_model.model.text_projection"]
        case "sdxl":
            expected = ["conditioner.embedders.1.model.logit_scale"]
        default:
            break
        }
        let unused = try checkpoint.validate()
        #expect(Set(unused.keys).isSubset(of: [Self.singleFile(family).path]))
        #expect(unused[Self.singleFile(family).path, default: []] == expected.sorted())
    }

    // MARK: Damaged and foreign inputs

    @Test func missingUNetTensorIsNamedWithTheFile() throws {
        try Self.withTemporaryFolder { folder in
            let damaged = try Self.modifiedCopy("sd1", in: folder) { $0["model.diffusion_model.out.2.weight"] = nil }
            let checkpoint = try StableDiffusionCheckpoint(url: damaged, configFolder: Self.diffusers("sd1"))
            #expect(throws: WeightError.missing(origin: damaged.path, name: "conv_out.weight", expected: [4, 8, 3, 3])) { try checkpoint.validate() }
        }
    }

    @Test func fileWithoutUNetNamesTheKeysItLookedFor() throws {
        try Self.withTemporaryFolder { folder in
            let damaged = try Self.modifiedCopy("sd1", in: folder) { tensors in
                tensors = tensors.filter { !$0.key.hasPrefix("model.diffusion_model.") }
            }
            do {
                _ = try StableDiffusionCheckpoint(url: damaged, configFolder: Self.diffusers("sd1"))
                Issue.record("a file without U-Net tensors was accepted")
            } catch let error as ConfigurationError {
                #expect(error.file == damaged.path && error.message.contains("model.diffusion_model."), "\(error)")
            }
        }
    }

    @Test func misShapedTensorNamesExpectedAndFound() throws {
        try Self.withTemporaryFolder { folder in
            let damaged = try Self.modifiedCopy("sd2", in: folder) { tensors in
                tensors["first_stage_model.decoder.conv_out.bias"] = HostTensor(shape: [5], scalars: [0, 0, 0, 0, 0])
            }
            let checkpoint = try StableDiffusionCheckpoint(url: damaged, configFolder: Self.diffusers("sd2"))
            #expect(throws: WeightError.wrongShape(origin: damaged.path, name: "decoder.conv_out.bias", expected: [3], found: [5])) {
                try checkpoint.validate()
            }
        }
    }

    @Test func unknownKeysAreAnUnknownFamily() throws {
        try Self.withTemporaryFolder { folder in
            let unknown = folder.appendingPathComponent("unknown.safetensors")
            try SafeTensorsFile.write(["transformer.blocks.0.weight": HostTensor(shape: [2], scalars: [1, 2])], to: unknown)
            do {
                _ = try StableDiffusionCheckpoint(url: unknown)
                Issue.record("a file without Stable Diffusion keys was accepted")
            } catch let error as ConfigurationError {
                #expect(error.file == unknown.path && error.message.contains("unknown model family"), "\(error)")
            }
        }
        // One component of a diffusers folder given as if it were a whole checkpoint.
        let component = Components.folder("sd1", "unet").appendingPathComponent("diffusion_pytorch_model.safetensors")
        do {
            _ = try StableDiffusionCheckpoint(url: component)
            Issue.record("a diffusers U-Net file was accepted as a single-file checkpoint")
        } catch let error as ConfigurationError {
            #expect(error.message.contains("unknown model family") && error.message.contains("diffusers key names"), "\(error)")
        }
    }

    /// The SDXL refiner (one OpenCLIP-bigG encoder as `conditioner.embedders.0.model`) is named and refused.
    @Test func sdxlRefinerIsRefusedByName() throws {
        try Self.withTemporaryFolder { folder in
            let refiner = folder.appendingPathComponent("refiner.safetensors")
            try SafeTensorsFile.write(["model.diffusion_model.input_blocks.0.0.weight": HostTensor(shape: [1], scalars: [0]),
                                       "conditioner.embedders.0.model.token_embedding.weight": HostTensor(shape: [1], scalars: [0])], to: refiner)
            do {
                _ = try StableDiffusionCheckpoint(url: refiner)
                Issue.record("a refiner checkpoint was accepted")
            } catch let error as ConfigurationError {
                #expect(error.file == refiner.path && error.message.contains("refiner"), "\(error)")
            }
        }
    }

    @Test func truncatedFileIsASafeTensorsError() throws {
        try Self.withTemporaryFolder { folder in
            let truncated = folder.appendingPathComponent("truncated.safetensors")
            try Data(try Data(contentsOf: Self.singleFile("sd1")).prefix(4096)).write(to: truncated)
            #expect(throws: SafeTensorsError.self) { try StableDiffusionCheckpoint(url: truncated, configFolder: Self.diffusers("sd1")) }
        }
    }

    /// A config folder of another family is refused before any shape is compared.
    @Test func configFolderOfAnotherFamilyIsRefused() throws {
        do {
            _ = try StableDiffusionCheckpoint(url: Self.singleFile("sd2"), configFolder: Self.diffusers("sd1"))
            Issue.record("an sd1 config folder was accepted for an sd2 file")
        } catch let error as ConfigurationError {
            #expect(error.file == Self.singleFile("sd2").path && error.message.contains("sd1"), "\(error)")
        }
    }

    // MARK: VAE override

    /// `vae:` swaps in another VAE, here the same weights as a diffusers folder and as a bare
    /// original-names file; both must reproduce the recorded VAE outputs.
    @Test func vaeOverrideFromFolderAndFile() throws {
        let fromFolder = try StableDiffusionCheckpoint(url: Self.singleFile("sd1"), configFolder: Self.diffusers("sd1"),
                                                       vae: Components.folder("sd1", "vae"))
        #expect(fromFolder.vae.weights.origin.hasSuffix("vae/diffusion_pytorch_model.safetensors"))
        try Components.expectVAE(fromFolder.vae.model, fromFolder.vae.weights, "sd1", label: "vae folder override: ")
        try Self.withTemporaryFolder { folder in
            let original = try SafeTensorsFile(url: Self.singleFile("sd1"))
            var bare: [String: HostTensor] = [:]
            for name in original.names where name.hasPrefix("first_stage_model.") {
                bare[String(name.dropFirst("first_stage_model.".count))] = try original.tensor(name)
            }
            let file = folder.appendingPathComponent("vae.safetensors")
            try SafeTensorsFile.write(bare, to: file)
            let fromFile = try StableDiffusionCheckpoint(url: Self.singleFile("sd1"), configFolder: Self.diffusers("sd1"), vae: file)
            #expect(fromFile.vae.weights.origin == file.path)
            try Components.expectVAE(fromFile.vae.model, fromFile.vae.weights, "sd1", label: "vae file override: ")
        }
    }
}
