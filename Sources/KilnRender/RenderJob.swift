import Foundation
import KilnGraph

/// One job of a render manifest after expansion: an id (its outputs' name), where it came from,
/// and its settings. The id decides the job's shard and, when the manifest gives no seed, its
/// seed, so a job renders the same bytes whatever else the manifest holds or which process runs it.
public struct RenderJob: Sendable, Equatable {
    public let id: String
    /// The manifest line it came from (1-based).
    public let line: Int
    public var settings: JobSettings
    /// The expanded axes' values for this job, in expansion order (`[("sampler", "euler"), ...]`).
    public let axes: [Axis]

    public struct Axis: Sendable, Equatable {
        public let field: String
        public let value: String
    }

    public init(id: String, line: Int, settings: JobSettings, axes: [Axis] = []) {
        self.id = id
        self.line = line
        self.settings = settings
        self.axes = axes
    }

    /// The seed it renders with: the manifest's, else one derived from the id (below 2^32, as
    /// A1111's seeds are), the same in every process and on every re-run.
    public var seed: UInt64 {
        settings.seed ?? UInt64(Self.hashPrefix("seed:" + id) >> 32)
    }

    /// The output files' names: `{id}.png`, or `{id}-{n}.png` for a batch.
    public var outputNames: [String] {
        settings.imageCount > 1 ? (0..<settings.imageCount).map { "\(id)-\($0).png" } : ["\(id).png"]
    }

    /// An id for settings without one: a hash of their canonical form.
    static func stableID(for settings: JobSettings) -> String {
        "job-" + String(SHA256.hex(Array(settings.canonicalJSON().utf8)).prefix(16))
    }

    /// The first 8 bytes of the SHA-256 of `text`, as a number.
    static func hashPrefix(_ text: String) -> UInt64 {
        SHA256.digest(Array(text.utf8)).prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Ids become file names: letters, digits, `.`, `_` and `-`, not starting with `.`.
    static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.count <= 200 && !id.hasPrefix(".")
            && id.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || "._-".unicodeScalars.contains($0) }
    }
}
