import Foundation
import Kiln
import KilnVerification
import Testing

/// `kiln generate` on a FLUX folder as a user runs it: the built executable on the assembled tiny
/// FluxPipeline (FluxFullPipelineTests.modelFolder), its saved latents against diffusers'
/// `num_images_per_prompt=2` run, the PNGs' parameters, a single transformer file with
/// `--config`, and options FLUX does not have refused with exit code 2.
@Suite(.serialized) struct FluxGenerateCommandTests {
    static func arguments(model: URL, settings: FluxFullPipelineTests.Case, folder: URL) -> [String] {
        ["generate", "--model", model.path, "--prompt", settings.prompts[0], "--width", "\(settings.width)", "--height", "\(settings.height)",
         "--steps", "\(settings.steps)", "--cfg-scale", "\(settings.guidance)", "--seed", "\(settings.seed)", "--batch-count", "2",
         "--max-sequence-length", "\(settings.maxSequenceLength)", "--backend", "cpu", "--quiet",
         "--output", folder.appendingPathComponent("flux-%d.png").path, "--save-latents", folder.appendingPathComponent("latents.safetensors").path]
    }

    @Test func generatesFluxImagesAndDiffusersLatents() throws {
        let model = try FluxFullPipelineTests.modelFolder()
        let (settings, records) = try FluxFullPipelineTests.fixture()
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = try GenerateCommandTests.kiln(Self.arguments(model: model, settings: settings, folder: folder))
        #expect(run.status == 0, "\(run.errors)")
        let saved = try SafeTensorsFile(url: folder.appendingPathComponent("latents.safetensors")).tensor("latents")
        let expected = try records.tensor("single_prompt_final_latents")
        #expect(saved.shape == expected.shape)
        #expect(Verification.compare(saved, expected).relative <= 1e-3)
        for index in 0..<2 { #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("flux-\(index).png").path)) }

        let info = try GenerateCommandTests.kiln(["info", folder.appendingPathComponent("flux-1.png").path, "--json"])
        #expect(info.status == 0, "\(info.errors)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(info.output.utf8)) as? [String: Any])
        let kiln = try #require(object["kiln"] as? [String: Any])
        #expect(kiln["sampler"] as? String == "flow_euler")
        #expect(kiln["seed"] as? Int == Int(settings.seed))
        #expect(kiln["cfg_scale"] as? Double == Double(settings.guidance))
    }

    /// The folder's transformer as a single file in diffusers' names, and ComfyUI's all-in-one
    /// file (original transformer names behind `model.diffusion_model.`, VAE, T5).
    @Test(arguments: ["transformer/diffusion_pytorch_model.safetensors", "all_in_one.safetensors"])
    func singleTransformerFileWithConfigFolder(_ path: String) throws {
        let model = try FluxFullPipelineTests.modelFolder()
        let (settings, records) = try FluxFullPipelineTests.fixture()
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = model.appendingPathComponent(path)
        let run = try GenerateCommandTests.kiln(Self.arguments(model: file, settings: settings, folder: folder) + ["--config", model.path])
        #expect(run.status == 0, "\(run.errors)")
        let saved = try SafeTensorsFile(url: folder.appendingPathComponent("latents.safetensors")).tensor("latents")
        #expect(Verification.compare(saved, try records.tensor("single_prompt_final_latents")).relative <= 1e-3)
    }

    /// With an all-in-one file, a config folder without `vae` and `text_encoder_2` weights is
    /// enough: the file's own VAE and T5 are used.
    @Test func allInOneFileSuppliesItsVAEAndT5() throws {
        let model = try FluxFullPipelineTests.modelFolder()
        let (settings, records) = try FluxFullPipelineTests.fixture()
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let manager = FileManager.default
        let config = folder.appendingPathComponent("config")
        try manager.createDirectory(at: config, withIntermediateDirectories: true)
        for entry in try manager.contentsOfDirectory(atPath: model.path) where !["vae", "text_encoder_2", "all_in_one.safetensors"].contains(entry) {
            try manager.createSymbolicLink(at: config.appendingPathComponent(entry), withDestinationURL: model.appendingPathComponent(entry))
        }
        for (component, file) in [("vae", "config.json"), ("text_encoder_2", "config.json")] {
            try manager.createDirectory(at: config.appendingPathComponent(component), withIntermediateDirectories: true)
            try manager.copyItem(at: model.appendingPathComponent("\(component)/\(file)"), to: config.appendingPathComponent("\(component)/\(file)"))
        }
        let run = try GenerateCommandTests.kiln(Self.arguments(model: model.appendingPathComponent("all_in_one.safetensors"), settings: settings,
                                                               folder: folder) + ["--config", config.path])
        #expect(run.status == 0, "\(run.errors)")
        let saved = try SafeTensorsFile(url: folder.appendingPathComponent("latents.safetensors")).tensor("latents")
        #expect(Verification.compare(saved, try records.tensor("single_prompt_final_latents")).relative <= 1e-3)
    }

    @Test func imageToImageFromAPNG() throws {
        let model = try FluxFullPipelineTests.modelFolder()
        let (settings, records) = try FluxFullPipelineTests.fixture()
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        var arguments = Self.arguments(model: model, settings: settings, folder: folder)
        arguments[arguments.firstIndex(of: "--steps")! + 1] = "\(settings.img2imgSteps)"
        let run = try GenerateCommandTests.kiln(arguments + ["--init-image", PipelineFixtures.folder.appendingPathComponent("init.png").path,
                                                             "--strength", "\(settings.img2imgStrength)"])
        #expect(run.status == 0, "\(run.errors)")
        let saved = try SafeTensorsFile(url: folder.appendingPathComponent("latents.safetensors")).tensor("latents")
        #expect(Verification.compare(saved, try records.tensor("img2img_final_latents")).relative <= 1e-3)
        let info = try GenerateCommandTests.kiln(["info", folder.appendingPathComponent("flux-0.png").path, "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(info.output.utf8)) as? [String: Any])
        let kiln = try #require(object["kiln"] as? [String: Any])
        #expect(kiln["mode"] as? String == "img2img")
    }

    @Test func inpaintingFromPNGs() throws {
        let model = try FluxFullPipelineTests.modelFolder()
        let (settings, records) = try FluxFullPipelineTests.fixture()
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        var arguments = Self.arguments(model: model, settings: settings, folder: folder)
        arguments[arguments.firstIndex(of: "--steps")! + 1] = "\(settings.inpaintSteps)"
        let run = try GenerateCommandTests.kiln(arguments + [
            "--init-image", PipelineFixtures.folder.appendingPathComponent("init.png").path,
            "--mask", PipelineFixtures.folder.appendingPathComponent("mask.png").path, "--strength", "\(settings.inpaintStrength)"])
        #expect(run.status == 0, "\(run.errors)")
        let saved = try SafeTensorsFile(url: folder.appendingPathComponent("latents.safetensors")).tensor("latents")
        #expect(Verification.compare(saved, try records.tensor("inpaint_final_latents")).relative <= 1e-3)
    }

    @Test func aTransformerFileWithoutConfigIsRefusedByName() throws {
        let model = try FluxFullPipelineTests.modelFolder()
        let (settings, _) = try FluxFullPipelineTests.fixture()
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = try GenerateCommandTests.kiln(Self.arguments(model: model.appendingPathComponent("all_in_one.safetensors"),
                                                               settings: settings, folder: folder))
        #expect(run.status == 2)
        #expect(run.errors.contains("FLUX transformer") && run.errors.contains("--config"), "\(run.errors)")
    }

    @Test(arguments: [["--negative-prompt", "blurry"], ["--width", "72"], ["--sampler", "euler"], ["--max-sequence-length", "600"]])
    func refusesWhatFluxCannotDo(_ extra: [String]) throws {
        let model = try FluxFullPipelineTests.modelFolder()
        let (settings, _) = try FluxFullPipelineTests.fixture()
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = try GenerateCommandTests.kiln(Self.arguments(model: model, settings: settings, folder: folder) + extra)
        #expect(run.status == 2, "\(extra): \(run.errors)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("flux-0.png").path))
    }
}
