import Foundation

/// A folder of this process's own for parsers that only read files (a model folder, a tokenizer
/// folder): each input replaces its whole contents. In /dev/shm where there is one, so that
/// millions of executions do not wear a disk.
enum ScratchFolder {
    static let url: URL = {
        let shared = URL(fileURLWithPath: "/dev/shm")
        let base = FileManager.default.fileExists(atPath: shared.path) ? shared : FileManager.default.temporaryDirectory
        let folder = base.appendingPathComponent("kiln-fuzz-\(getpid())", isDirectory: true)
        atexit { try? FileManager.default.removeItem(at: ScratchFolder.url) }
        return folder
    }()

    /// Empties the folder and writes `files` (relative path → bytes; a path may name subfolders).
    static func write(_ files: [(path: String, data: Data)]) -> URL {
        let manager = FileManager.default
        try? manager.removeItem(at: url)
        try? manager.createDirectory(at: url, withIntermediateDirectories: true)
        for (path, data) in files {
            let file = url.appendingPathComponent(path)
            try? manager.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            guard manager.createFile(atPath: file.path, contents: data) else {
                fatalError("kiln-fuzz: cannot write \(file.path)")
            }
        }
        return url
    }
}
