import Foundation
import KilnGraph

/// Checkpoint tensors from one or more safetensors files (shards), addressed by key.
public struct SafeTensorsSource: TensorSource {
    public let files: [SafeTensorsFile]
    public let origin: String
    private let fileOfName: [String: Int]

    /// Opens `urls` as one checkpoint; a key present in two files is an error.
    public init(files urls: [URL]) throws {
        guard let first = urls.first else {
            throw ConfigurationError(file: "(no files)", message: "a checkpoint needs at least one safetensors file")
        }
        files = try urls.map { try SafeTensorsFile(url: $0) }
        origin = urls.count == 1 ? first.path : first.deletingLastPathComponent().path
        var fileOfName: [String: Int] = [:]
        for (index, file) in files.enumerated() {
            for name in file.entries.keys {
                if let other = fileOfName[name] {
                    throw SafeTensorsError(file: file.url.path, tensor: name, message: "also present in \(files[other].url.lastPathComponent)")
                }
                fileOfName[name] = index
            }
        }
        self.fileOfName = fileOfName
    }

    public var names: [String] { fileOfName.keys.sorted() }
    public func shape(of name: String) -> Shape? { fileOfName[name].flatMap { files[$0].entries[name]?.shape } }

    public func load(_ name: String) throws -> HostTensor {
        guard let index = fileOfName[name] else { throw WeightError.missing(origin: origin, name: name, expected: nil) }
        return try files[index].tensor(name)
    }

    /// The weights of one diffusers component folder: `<base>.safetensors`, its `.fp16` variant,
    /// or the shards listed by `<base>[.fp16].safetensors.index.json`.
    public static func component(folder: URL, baseName: String, preferFP16: Bool = false) throws -> SafeTensorsSource {
        let manager = FileManager.default
        let variants = preferFP16 ? [".fp16", ""] : ["", ".fp16"]
        for variant in variants {
            let single = folder.appendingPathComponent("\(baseName)\(variant).safetensors")
            if manager.fileExists(atPath: single.path) { return try SafeTensorsSource(files: [single]) }
            let index = folder.appendingPathComponent("\(baseName)\(variant).safetensors.index.json")
            if manager.fileExists(atPath: index.path) { return try SafeTensorsSource(files: shards(index: index)) }
        }
        throw ConfigurationError(file: folder.path, message: "no \(baseName)[.fp16].safetensors or .safetensors.index.json in this folder")
    }

    /// The shard files an index's `weight_map` names, each once, in order of first mention.
    static func shards(index: URL) throws -> [URL] {
        guard let json = try? JSONSerialization.jsonObject(with: Data(contentsOf: index)) as? [String: Any],
              let map = json["weight_map"] as? [String: String] else {
            throw ConfigurationError(file: index.path, message: "not a safetensors index (needs a weight_map object)")
        }
        guard !map.isEmpty else { throw ConfigurationError(file: index.path, message: "weight_map names no tensors, so no shard files") }
        var seen = Set<String>(), files: [URL] = []
        for name in map.keys.sorted() where !seen.contains(map[name]!) {
            let file = map[name]!
            guard !file.contains("/"), !file.contains("..") else {
                throw ConfigurationError(file: index.path, message: "shard name '\(file)' must be a plain file name")
            }
            seen.insert(file)
            files.append(index.deletingLastPathComponent().appendingPathComponent(file))
        }
        return files
    }
}
