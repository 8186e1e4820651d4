import Foundation
import Kiln

/// A sharded checkpoint as a diffusers component folder holds it: the parts of one input are
/// `diffusion_pytorch_model.safetensors.index.json` and then its shards, named as
/// `save_pretrained` names two shards; the folder is opened as a pipeline opens a component.
enum SafeTensorsIndexTarget {
    static let baseName = "diffusion_pytorch_model"

    static func run(_ data: Data) {
        let parts = FuzzParts.split(data, maximum: 3)
        var files = [(path: "\(baseName).safetensors.index.json", data: parts[0])]
        for (index, shard) in parts.dropFirst().enumerated() {
            files.append((path: "\(baseName)-0000\(index + 1)-of-00002.safetensors", data: shard))
        }
        let folder = ScratchFolder.write(files)
        guard let source = try? SafeTensorsSource.component(folder: folder, baseName: baseName) else { return }
        for name in source.names {
            _ = source.shape(of: name)
            _ = try? source.load(name)
        }
    }
}
