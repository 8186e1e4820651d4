import Foundation
import Kiln
import Testing

/// Text handling end to end on the tiny SD folders: each folder's tokenizer settings give the
/// token ids diffusers' pipeline recorded, and CLIP weights load with or without the
/// `text_model.` key prefix (newer transformers versions drop it).
@Suite struct StableDiffusionTextInputTests {
    static let merges = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("clip/merges.txt")

    /// The fixture folders omit vocab.json/merges.txt (size budget, see Fixtures/sd/README.md):
    /// complete a copy the way the generator built them, from the real merges.
    static func completeTokenizerFolder(_ folder: URL) throws -> URL {
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-tokenizer-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: folder, to: copy)
        try FileManager.default.copyItem(at: merges, to: copy.appendingPathComponent("merges.txt"))
        let vocabulary = CLIPTokenizer.vocabulary(fromMerges: try CLIPTokenizer.readMerges(at: merges))
        try JSONSerialization.data(withJSONObject: vocabulary).write(to: copy.appendingPathComponent("vocab.json"))
        return copy
    }

    @Test(arguments: [("sd1", "tokenizer"), ("sd2", "tokenizer"), ("sdxl", "tokenizer"), ("sdxl", "tokenizer_2")])
    func folderTokenizerMatchesPipeline(_ family: String, _ name: String) throws {
        let root = StableDiffusionComponentTests.root.appendingPathComponent(family)
        let folder = try Self.completeTokenizerFolder(root.appendingPathComponent("diffusers/\(name)"))
        defer { try? FileManager.default.removeItem(at: folder) }
        let tokenizer = try CLIPTokenizer.load(folder: folder)
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("manifest.json"))) as? [String: Any])
        let prompts = try #require(manifest["prompts"] as? [String])
        let recorded = try StableDiffusionComponentTests.records(family)("\(name).input_ids")
        #expect(recorded.shape == [prompts.count, 77])
        for (index, prompt) in prompts.enumerated() {
            let expected = recorded.integers[(index * 77)..<((index + 1) * 77)].map(Int.init)
            #expect(tokenizer.encode(prompt, padding: true, truncation: true) == expected, "\(family)/\(name) prompt \(index)")
        }
    }

    @Test func clipKeysWithoutTextModelPrefix() throws {
        let folder = StableDiffusionComponentTests.folder("sd1", "text_encoder")
        let configuration = try CLIPTextConfiguration.load(folder.appendingPathComponent("config.json"))
        let original = try SafeTensorsSource.component(folder: folder, baseName: "model")
        var stripped: [String: HostTensor] = [:]
        for name in original.names {
            stripped[name.hasPrefix("text_model.") ? String(name.dropFirst("text_model.".count)) : name] = try original.load(name)
        }
        let renamed = InMemoryTensors(stripped, origin: "stripped")
        #expect(CLIPTextModel.detectPrefix(in: original) == "text_model.")
        #expect(CLIPTextModel.detectPrefix(in: renamed) == "")
        let ids = try StableDiffusionComponentTests.records("sd1")("tokenizer.input_ids")
        let rows = CLIPTextModel.pooledRows(ids: ids.integers, sequenceLength: 77)
        let inputs = ["ids": ids, "rows": HostTensor(shape: [rows.count], integers: rows)]
        var results: [[HostTensor]] = []
        for source in [original, renamed] as [TensorSource] {
            let model = CLIPTextModel(configuration: configuration, prefix: CLIPTextModel.detectPrefix(in: source))
            results.append(try StableDiffusionComponentTests.run(source: source, backend: CPUBackend(), dtype: .float32, inputs: inputs) { weights, x in
                let outputs = try model(ids: x["ids"]!, pooledRows: x["rows"]!, weights: weights)
                return [outputs.lastHiddenState, outputs.pooled]
            })
        }
        #expect(results[0] == results[1])
        StableDiffusionComponentTests.expectClose(results[1][0], try StableDiffusionComponentTests.records("sd1")("text_encoder.last_hidden_state"), 1e-4, "stripped keys")
    }
}
