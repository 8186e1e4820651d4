import Foundation
import Kiln
import Testing

/// The cases Tests/Fixtures/generate_pipeline_fixtures.py recorded from diffusers' pipelines,
/// and complete copies of the tiny model folders they ran on.
enum PipelineFixtures {
    struct Case: Decodable, CustomStringConvertible, Sendable {
        let name: String
        let family: String
        let mode: String
        let unet: String
        let sampler: String?
        let scheduler: String
        let prompt: String
        let negativePrompt: String?
        let width: Int
        let height: Int
        let steps: Int
        let cfgScale: Float
        let guidanceRescale: Float
        let seed: UInt64
        let batchCount: Int
        let strength: Float?
        let initImage: String?
        let mask: String?
        let images: [String]
        let latentShape: [Int]

        var description: String { name }

        enum CodingKeys: String, CodingKey {
            case name, family, mode, unet, sampler, scheduler, prompt, width, height, steps, seed, strength, mask, images
            case negativePrompt = "negative_prompt"
            case cfgScale = "cfg_scale"
            case guidanceRescale = "guidance_rescale"
            case batchCount = "batch_count"
            case initImage = "init_image"
            case latentShape = "latent_shape"
        }
    }

    static let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("pipelines")
    /// The tiny models live with the model tests' fixtures.
    static let models = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("KilnModelsTests/Fixtures")

    static let cases: [Case] = cases(in: folder)

    /// The 8-bit images against diffusers' PNGs `files` in `folder`: one per file, the same format,
    /// and at least 99.5 % of pixel values within 2.
    static func expectPixelsMatch(_ images: [PNGImage], files: [String], in folder: URL) throws {
        #expect(images.count == files.count)
        for (image, file) in zip(images, files) {
            let expected = try PNGImage(contentsOf: folder.appendingPathComponent(file))
            #expect(expected.width == image.width && expected.height == image.height && expected.layout == image.layout, "\(file): format")
            let close = zip(image.pixels, expected.pixels).filter { abs(Int($0) - Int($1)) <= 2 }.count
            let share = Double(close) / Double(max(expected.pixels.count, 1))
            let exact = zip(image.pixels, expected.pixels).filter { $0 == $1 }.count
            print("\(file): \(exact) of \(expected.pixels.count) values equal, \(String(format: "%.4f", share)) within 2")
            #expect(share >= 0.995, "\(file): only \(share) of pixel values within 2")
        }
    }

    /// The `cases` array of a generator's `cases.json` in `folder` (SD, SD3, DiT fixtures); empty
    /// when the file is missing or unreadable.
    static func cases<Loaded: Decodable>(in folder: URL) -> [Loaded] {
        guard let data = try? Data(contentsOf: folder.appendingPathComponent("cases.json")),
              let file = try? JSONDecoder().decode(CaseFile<Loaded>.self, from: data) else { return [] }
        return file.cases
    }

    static func records() throws -> SafeTensorsFile {
        try SafeTensorsFile(url: folder.appendingPathComponent("latents.safetensors"))
    }

    nonisolated(unsafe) private static var completedFolders: [String: URL] = [:]
    private static let lock = NSLock()

    /// Kiln's default model as it ships, for the family `kiln-shapes`; else
    /// `sd/<family>/diffusers` with its tokenizers completed: the fixtures leave out vocab.json
    /// and merges.txt (see Fixtures/sd/README.md); they follow from the committed CLIP merges.
    /// Weights are linked, not copied.
    /// `unet` replaces the folder's U-Net (the recorded LCM-distilled one).
    static func modelFolder(_ family: String, unet: URL? = nil) throws -> URL {
        if family == DefaultModel.name { return try DefaultModel.requiredLocation() }
        lock.lock()
        defer { lock.unlock() }
        let key = family + (unet?.path ?? "")
        if let folder = completedFolders[key] { return folder }
        let source = models.appendingPathComponent("sd/\(family)/diffusers")
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-pipeline-\(family)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: true)
        let merges = models.appendingPathComponent("clip/merges.txt")
        let vocabulary = try JSONSerialization.data(withJSONObject: CLIPTokenizer.vocabulary(fromMerges: try CLIPTokenizer.readMerges(at: merges)))
        for entry in try FileManager.default.contentsOfDirectory(atPath: source.path) {
            var from = source.appendingPathComponent(entry)
            let to = copy.appendingPathComponent(entry)
            if entry == "unet", let unet { from = unet }
            if entry.hasPrefix("tokenizer") {
                try FileManager.default.copyItem(at: from, to: to)
                try FileManager.default.copyItem(at: merges, to: to.appendingPathComponent("merges.txt"))
                try vocabulary.write(to: to.appendingPathComponent("vocab.json"))
            } else {
                try FileManager.default.createSymbolicLink(at: to, withDestinationURL: from)
            }
        }
        completedFolders[key] = copy
        return copy
    }

    /// The request `kiln generate` would build for `testCase`.
    static func request(_ testCase: Case) throws -> GenerationRequest {
        let records = try records()
        var mode = GenerationRequest.Mode.textToImage
        if testCase.mode != "txt2img" {
            let image = ShapedArray(try records.tensor("inputs.init_image"))
            mode = testCase.mode == "inpaint"
                ? .inpainting(image: image, mask: ShapedArray(try records.tensor("inputs.mask")), strength: testCase.strength ?? 1)
                : .imageToImage(image: image, strength: testCase.strength ?? 0.8)
        }
        return GenerationRequest(
            prompt: testCase.prompt, negativePrompt: testCase.negativePrompt, mode: mode, width: testCase.width, height: testCase.height,
            steps: testCase.steps, guidanceScale: testCase.cfgScale, sampler: try testCase.sampler.map(SamplerName.init(parsing:)),
            sigmaSpacing: testCase.scheduler == "default" ? nil : try SigmaSpacing(parsing: testCase.scheduler), seed: testCase.seed,
            batchCount: testCase.batchCount, options: .init(guidanceRescale: testCase.guidanceRescale))
    }
}

extension ShapedArray {
    init(_ tensor: HostTensor) { self.init(shape: tensor.shape.dimensions, scalars: tensor.scalars) }
}

/// A generator's `cases.json`: `{"cases": [...]}`.
private struct CaseFile<Loaded: Decodable>: Decodable {
    let cases: [Loaded]
}
