import Foundation
import KilnGraph

/// SHA-256 of model weights for image metadata, remembered per file (path, size, modification
/// time) in `$KILN_CACHE_DIR/model-hashes.json` (default `~/.cache/kiln`), since hashing a
/// multi-gigabyte checkpoint takes seconds and a render farm opens the same model all day.
public enum ModelHashCache {
    private struct Entry: Codable {
        let size: UInt64
        let modified: Double
        let sha256: String
    }

    private static var file: URL {
        let base = ProcessInfo.processInfo.environment["KILN_CACHE_DIR"].map(URL.init(fileURLWithPath:))
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/kiln")
        return base.appendingPathComponent("model-hashes.json")
    }

    /// The hash of a single file, or of a diffusers folder's denoiser weights (the U-Net or
    /// transformer: the part that makes the model what it is).
    public static func sha256(of model: URL) throws -> String {
        let target = try weightsFile(for: model)
        let attributes = try FileManager.default.attributesOfItem(atPath: target.path)
        let size = (attributes[.size] as? NSNumber)?.uint64Value ?? 0
        let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        var entries = (try? JSONDecoder().decode([String: Entry].self, from: Data(contentsOf: file))) ?? [:]
        if let entry = entries[target.path], entry.size == size, entry.modified == modified { return entry.sha256 }
        let hash = try SHA256.hex(fileAt: target)
        entries[target.path] = Entry(size: size, modified: modified, sha256: hash)
        try? FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        if let data = try? JSONEncoder().encode(entries) { try? data.write(to: file, options: .atomic) }
        return hash
    }

    private static func weightsFile(for model: URL) throws -> URL {
        guard model.isExistingFolder else { return model }
        for component in ["unet", "transformer"] {
            for name in ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.safetensors.index.json"] {
                let candidate = model.appendingPathComponent(component).appendingPathComponent(name)
                if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
            }
        }
        throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: model.appendingPathComponent("unet").path])
    }
}
