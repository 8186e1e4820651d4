import Foundation
import Kiln
import Testing

/// Sharded checkpoints' `*.safetensors.index.json`, as a component folder holds them.
struct ShardIndexTests {
    @Test func anIndexThatNamesNoShardsIsRefused() throws {
        // Found by Fuzz/ (safetensors-index): `"weight_map": {}` gave no shard files, and opening
        // none indexed the first of an empty list.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-shard-index-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let index = folder.appendingPathComponent("diffusion_pytorch_model.safetensors.index.json")
        try Data(#"{"metadata": {"total_size": 30}, "weight_map": {}}"#.utf8).write(to: index)
        let error = #expect(throws: ConfigurationError.self) {
            try SafeTensorsSource.component(folder: folder, baseName: "diffusion_pytorch_model")
        }
        #expect(error?.file == index.path)
        #expect(error?.message == "weight_map names no tensors, so no shard files")
        #expect(throws: ConfigurationError.self) { try SafeTensorsSource(files: []) }
    }
}
