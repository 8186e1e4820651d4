import Foundation
import Kiln

/// A problem with the pairs file or one of its images, named by file, line and field
/// (`pairs.jsonl: line 12: field 'winner': b.jpg is a JPEG file ...`).
public typealias PreferenceInputError = InputFileError

/// One preference pair: a prompt and two images of it, the preferred one first.
public struct PreferencePair: Sendable, Equatable {
    /// The line of the pairs file it came from (1-based).
    public let line: Int
    public let prompt: String
    /// The paths as the file spells them, and resolved against the file's folder.
    public let winnerPath: String
    public let loserPath: String
    public let winner: URL
    public let loser: URL
}

/// `PAIRS.jsonl`: one pair a line, `{"prompt": ..., "winner": "a.png", "loser": "b.png"}`, paths
/// relative to the file (absolute ones kept); blank lines and lines starting with `#` are skipped,
/// other fields are ignored. Every line and every image header is checked before any work.
public enum PreferencePairsFile {
    /// The most pairs one file may hold.
    public static let maximumPairs = 10_000_000

    /// Reads and checks the file at `url`: each line's fields, and that each image exists and is
    /// a PNG Kiln reads (`PreferenceImageFile.check`).
    public static func load(_ url: URL) throws -> [PreferencePair] {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw PreferenceInputError(file: url.path, line: nil, field: nil, message: "cannot be read: \(error.localizedDescription)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw PreferenceInputError(file: url.path, line: nil, field: nil, message: "is not UTF-8 text")
        }
        let pairs = try parse(text, name: url.path, folder: url.deletingLastPathComponent())
        for pair in pairs {
            for (field, file) in [("winner", pair.winner), ("loser", pair.loser)] {
                do {
                    try PreferenceImageFile.check(file)
                } catch {
                    throw PreferenceInputError(file: url.path, line: pair.line, field: field, message: "\(error)")
                }
            }
        }
        return pairs
    }

    /// The pairs of `text` (no file is opened); `name` names the file in errors.
    public static func parse(_ text: String, name: String, folder: URL) throws -> [PreferencePair] {
        var pairs: [PreferencePair] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = index + 1
            let content = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if content.isEmpty || content.hasPrefix("#") { continue }
            func fail(_ field: String?, _ message: String) -> PreferenceInputError {
                PreferenceInputError(file: name, line: line, field: field, message: message)
            }
            guard let object = (try? JSONSerialization.jsonObject(with: Data(content.utf8), options: [.fragmentsAllowed])) as? [String: Any] else {
                throw fail(nil, "expected a JSON object {\"prompt\": ..., \"winner\": ..., \"loser\": ...}")
            }
            func string(_ field: String) throws -> String {
                guard let value = object[field] else { throw fail(field, "missing") }
                guard let text = value as? String else { throw fail(field, "expected a string, got \(describe(value))") }
                return text
            }
            let prompt = try string("prompt")
            var paths: [String] = []
            for field in ["winner", "loser"] {
                let path = try string(field)
                if path.isEmpty { throw fail(field, "expected a path to a PNG file, got an empty string") }
                paths.append(path)
            }
            if pairs.count >= maximumPairs { throw fail(nil, "more than \(maximumPairs) pairs in one file") }
            pairs.append(PreferencePair(
                line: line, prompt: prompt, winnerPath: paths[0], loserPath: paths[1],
                winner: resolve(paths[0], in: folder), loser: resolve(paths[1], in: folder)))
        }
        if pairs.isEmpty { throw PreferenceInputError(file: name, line: nil, field: nil, message: "holds no pairs") }
        return pairs
    }

    /// `path` against `folder` unless it is absolute.
    static func resolve(_ path: String, in folder: URL) -> URL {
        path.hasPrefix("/") ? URL(fileURLWithPath: path) : folder.appendingPathComponent(path)
    }

    private static func describe(_ value: Any) -> String {
        switch value {
        case is NSNull: "null"
        case let number as NSNumber: "\(number)"
        case is [Any]: "an array"
        case is [String: Any]: "an object"
        default: "\(value)"
        }
    }
}
