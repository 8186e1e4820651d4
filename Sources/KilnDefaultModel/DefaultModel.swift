import Foundation

/// Kiln's own small text-to-image model, `kiln-shapes`: a Stable Diffusion 1.x-style diffusers
/// folder trained by `scripts/default-model/train.py` on scenes it draws itself (flat shapes on
/// flat backgrounds, described by `a {size} {colour} {shape} on a {background} background[, {position}]`),
/// shipped with Kiln so that a first command makes a real picture with no download.
///
/// SwiftPM copies the folder next to the built products, into `Kiln_KilnDefaultModel.resources`;
/// it is found there beside the executable or the library that carries this code, or at
/// `$KILN_DEFAULT_MODEL`, or in the source checkout it was built from.
public enum DefaultModel {
    public static let name = "kiln-shapes"
    static let bundleName = "Kiln_KilnDefaultModel.resources"

    /// The folder, or nil when it is in none of `searchedLocations`.
    public static func location() -> URL? {
        searchedLocations.first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("model_index.json").path) }
    }

    /// Where the folder is looked for, in order.
    public static var searchedLocations: [URL] {
        var candidates: [URL] = []
        if let explicit = ProcessInfo.processInfo.environment["KILN_DEFAULT_MODEL"], !explicit.isEmpty {
            candidates.append(URL(fileURLWithPath: explicit))
        }
        for folder in [Bundle.main.executableURL?.deletingLastPathComponent(), imageFolder()].compactMap({ $0 }) {
            candidates.append(folder.appendingPathComponent(bundleName).appendingPathComponent(name))
        }
        candidates.append(URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Resources").appendingPathComponent(name))
        var seen = Set<String>()
        return candidates.filter { seen.insert($0.standardizedFileURL.path).inserted }
    }

    /// The folder of the executable or shared library this code was linked into (a program that
    /// embeds Kiln through libkiln.so finds the model beside the library): the file mapped at
    /// `#dsohandle` in /proc/self/maps; nil where there is no such file (not Linux).
    private static func imageFolder() -> URL? {
        let address = UInt(bitPattern: #dsohandle)
        guard let maps = try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8) else { return nil }
        for line in maps.split(separator: "\n") {
            // start-end perms offset device inode path
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count == 6, let dash = fields[0].firstIndex(of: "-"),
                  let start = UInt(fields[0][..<dash], radix: 16), let end = UInt(fields[0][fields[0].index(after: dash)...], radix: 16),
                  (start..<end).contains(address) else { continue }
            let path = fields[5].trimmingCharacters(in: .whitespaces)
            return path.hasPrefix("/") ? URL(fileURLWithPath: path).deletingLastPathComponent() : nil
        }
        return nil
    }
}
