import Foundation

/// A model the server can load: the `--model` given at start, or a folder or file found in
/// `--models-dir`. Only catalogued models can be loaded, so no path in a request ever reaches
/// the filesystem: clients name a model by its title, name or hash.
public struct ModelEntry: Sendable, Equatable {
    /// The folder's name, or the file's name without `.safetensors` (A1111's `model_name`).
    public let name: String
    /// The folder's or file's name (A1111's title, less the hash it appends when known).
    public let fileName: String
    public let url: URL

    public init(url: URL) {
        self.url = url.standardizedFileURL
        fileName = url.lastPathComponent
        name = url.pathExtension == "safetensors" ? url.deletingPathExtension().lastPathComponent : url.lastPathComponent
    }

    /// What A1111 clients see and send back as `sd_model_checkpoint`.
    public var title: String { fileName }

    /// Bytes of the weight files on disk: what loading will at most need on the device (f32
    /// files stored as f16 need half), for the memory check before a switch.
    public var weightFileBytes: Int {
        let files: [URL]
        if url.pathExtension == "safetensors" {
            files = [url]
        } else {
            let enumerator = FileManager.default.enumerator(at: url, includingPropertiesForKeys: [.fileSizeKey])
            files = (enumerator?.allObjects as? [URL] ?? []).filter { $0.pathExtension == "safetensors" }
        }
        return files.reduce(0) { total, file in total + ((try? file.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0) }
    }
}

/// The models `sd-models` lists: the start-up model plus what `--models-dir` holds (diffusers
/// folders with `model_index.json` or `unet/config.json`, and `.safetensors` files), rescanned
/// by `refresh-checkpoints`.
public final class ModelCatalog: Sendable {
    public let primary: URL?
    public let directory: URL?
    private let entries = Locked<[ModelEntry]>([])
    /// SHA-256 of models once computed (at load), for A1111's `hash` and `sha256` fields.
    private let hashes = Locked<[URL: String]>([:])

    public init(primary: URL?, directory: URL?) {
        self.primary = primary
        self.directory = directory
        refresh()
    }

    /// Rescans `--models-dir`.
    public func refresh() {
        var found: [ModelEntry] = primary.map { [ModelEntry(url: $0)] } ?? []
        if let directory, let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) {
            for name in names.sorted() where !name.hasPrefix(".") {
                let url = directory.appendingPathComponent(name)
                if Self.isModel(url), !found.contains(where: { $0.url == url.standardizedFileURL }) { found.append(ModelEntry(url: url)) }
            }
        }
        entries.withLock { $0 = found }
    }

    private static func isModel(_ url: URL) -> Bool {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder) else { return false }
        if !isFolder.boolValue { return url.pathExtension == "safetensors" }
        return ["model_index.json", "unet/config.json", "transformer/config.json"].contains {
            FileManager.default.fileExists(atPath: url.appendingPathComponent($0).path)
        }
    }

    public var all: [ModelEntry] { entries.current }

    func recordHash(_ sha256: String, for entry: ModelEntry) {
        hashes.withLock { $0[entry.url] = sha256 }
    }

    public func sha256(of entry: ModelEntry) -> String? { hashes.current[entry.url] }

    /// A1111's title with the short hash when it is known: `sd15 [0123456789]`.
    public func displayTitle(of entry: ModelEntry) -> String {
        sha256(of: entry).map { "\(entry.title) [\($0.prefix(10))]" } ?? entry.title
    }

    /// The entry a client names: by title (with or without A1111's ` [hash]` suffix), name,
    /// file name, or a hash prefix of at least 8 hex digits, case-insensitively.
    public func find(_ query: String) -> ModelEntry? {
        let wanted = query.trimmingCharacters(in: .whitespaces)
        var bare = wanted.lowercased()
        if let bracket = bare.range(of: " [", options: .backwards), bare.hasSuffix("]") { bare = String(bare[..<bracket.lowerBound]) }
        let all = entries.current
        if let entry = all.first(where: { [$0.title, $0.name, $0.fileName].map { $0.lowercased() }.contains(bare) }) { return entry }
        let hex = wanted.lowercased()
        if hex.count >= 8, hex.allSatisfy(\.isHexDigit) {
            let known = hashes.current
            return all.first { known[$0.url]?.hasPrefix(hex) == true }
        }
        return nil
    }
}
