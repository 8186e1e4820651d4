import Foundation
import Kiln
import KilnModels

/// A render manifest: JSON Lines, one job per line (`#` lines and blank lines ignored), or a
/// plain text file of prompts, one per line, as A1111's "prompts from file". Lists in `prompt`,
/// `seed`, `sampler`, `cfg_scale` and `steps` (and `"seed": {"range": [a, b]}`) expand to every
/// combination, in that field order with the last varying fastest.
///
/// ```jsonl
/// {"id": "fox", "prompt": "a red fox", "seed": {"range": [0, 3]}, "sampler": ["euler", "dpm++2m"]}
/// {"prompt": "a lighthouse", "steps": 30, "init_image": "inputs/sea.png", "strength": 0.6}
/// ```
///
/// Every problem is found before any work, named by file, line and field.
public struct RenderManifest: Sendable {
    public let url: URL
    public let jobs: [RenderJob]

    /// The folder relative paths in the manifest start from.
    public var folder: URL { url.deletingLastPathComponent() }

    /// The most jobs one manifest may expand to, and one line.
    public static let maximumJobs = 1_000_000
    public static let maximumExpansion = 100_000

    public init(url: URL, jobs: [RenderJob]) {
        self.url = url
        self.jobs = jobs
    }

    /// Reads and expands the manifest at `url`.
    public static func load(_ url: URL) throws -> RenderManifest {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw ManifestError(file: url.path, line: nil, field: nil, message: "cannot be read: \(error.localizedDescription)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ManifestError(file: url.path, line: nil, field: nil, message: "is not UTF-8 text")
        }
        return RenderManifest(url: url, jobs: try parse(text, name: url.path, plainText: isPlainText(url: url, text: text)))
    }

    /// JSON Lines unless the file is named `.txt`, or (any other name) its first line that is
    /// not blank or a comment does not start with `{`.
    static func isPlainText(url: URL, text: String) -> Bool {
        switch url.pathExtension.lowercased() {
        case "jsonl", "json", "ndjson": return false
        case "txt": return true
        default:
            let first = text.split(separator: "\n", omittingEmptySubsequences: false).lazy
                .map { $0.trimmingCharacters(in: .whitespaces) }.first { !$0.isEmpty && !$0.hasPrefix("#") }
            return !(first?.hasPrefix("{") ?? true)
        }
    }

    /// The jobs of `text`; `name` names the file in errors.
    public static func parse(_ text: String, name: String, plainText: Bool = false) throws -> [RenderJob] {
        var jobs: [RenderJob] = []
        var lineOfID: [String: Int] = [:]
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = index + 1
            let content = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if content.isEmpty || content.hasPrefix("#") { continue }
            let expanded: [RenderJob]
            if plainText {
                var settings = JobSettings()
                settings.prompt = content
                expanded = [RenderJob(id: RenderJob.stableID(for: settings), line: line, settings: settings)]
            } else {
                expanded = try ManifestLine(content, file: name, line: line).jobs()
            }
            for job in expanded {
                if let first = lineOfID[job.id] {
                    throw ManifestError(file: name, line: line, field: "id",
                                        message: "job '\(job.id)' is also made by line \(first); give each job its own id")
                }
                lineOfID[job.id] = line
            }
            jobs += expanded
            if jobs.count > maximumJobs {
                throw ManifestError(file: name, line: line, field: nil, message: "the manifest expands to more than \(maximumJobs) jobs")
            }
        }
        return jobs
    }
}

/// A problem in a manifest: the file, the line and the field, and what is wrong.
public typealias ManifestError = InputFileError

/// One JSON line of a manifest, read field by field with its types checked.
struct ManifestLine {
    let object: [String: Any]
    let file: String
    let line: Int

    init(_ text: String, file: String, line: Int) throws {
        self.file = file
        self.line = line
        let value: Any
        do {
            value = try ExactJSONParser.parse(Array(text.utf8))
        } catch {
            throw ManifestError(file: file, line: line, field: nil, message: "not valid JSON (\(error))")
        }
        guard let object = value as? [String: Any] else {
            throw ManifestError(file: file, line: line, field: nil, message: "a job must be a JSON object")
        }
        self.object = object
        if let unknown = object.keys.sorted().first(where: { !JobSettings.fieldNames.contains($0) }) {
            throw fail(unknown, "unknown field; the fields are \(JobSettings.fieldNames.joined(separator: ", "))")
        }
    }

    func fail(_ field: String?, _ message: String) -> ManifestError {
        ManifestError(file: file, line: line, field: field, message: message)
    }

    /// The line's jobs: one per combination of its lists.
    func jobs() throws -> [RenderJob] {
        var base = JobSettings()
        base.negativePrompt = try optional("negative_prompt", string)
        base.classLabel = try optional("class_label") { try integer($0, $1, in: 0...Int(Int32.max)) }
        base.scheduler = try optional("scheduler", string)
        base.width = try optional("width") { try integer($0, $1, in: 1...65_536) }
        base.height = try optional("height") { try integer($0, $1, in: 1...65_536) }
        base.initImage = try optional("init_image", string)
        base.mask = try optional("mask", string)
        base.strength = try optional("strength") { try number($0, $1) }
        base.batchCount = try optional("batch_count") { try integer($0, $1, in: 1...256) }
        base.model = try optional("model", string)
        base.loras = try optional("loras", loras)
        if base.mask != nil && base.initImage == nil { throw fail("mask", "a mask needs an init_image") }

        let axes: [(field: String, values: [(label: String, apply: (inout JobSettings) -> Void)])] = [
            ("prompt", try list("prompt", string).map { value in (value, { $0.prompt = value }) }),
            ("seed", try seeds().map { value in ("\(value)", { $0.seed = value }) }),
            ("sampler", try list("sampler", string).map { value in (value, { $0.sampler = value }) }),
            ("cfg_scale", try list("cfg_scale", number).map { value in (Self.label(value), { $0.cfgScale = value }) }),
            ("steps", try list("steps") { try integer($0, $1, in: 1...10_000) }.map { value in ("\(value)", { $0.steps = value }) }),
        ].filter { !$0.values.isEmpty }
        let count = axes.reduce(1) { $0 * $1.values.count }
        guard count <= RenderManifest.maximumExpansion else {
            throw fail(nil, "expands to \(count) jobs, more than \(RenderManifest.maximumExpansion) for one line")
        }
        let explicitID = try optional("id", string)
        if let explicitID, !RenderJob.isValidID(explicitID) {
            throw fail("id", "'\(explicitID)' is not a file name: use letters, digits, '.', '_' and '-' (not a leading '.'), at most 200")
        }
        let expanded = axes.filter { $0.values.count > 1 || object[$0.field] is [Any] || object[$0.field] is [String: Any] }
        return (0..<count).map { index in
            var settings = base
            var remainder = index
            var chosen: [RenderJob.Axis] = []
            // The last axis varies fastest.
            var picks: [(String, (label: String, apply: (inout JobSettings) -> Void))] = []
            for axis in axes.reversed() {
                picks.append((axis.field, axis.values[remainder % axis.values.count]))
                remainder /= axis.values.count
            }
            for (field, pick) in picks.reversed() {
                pick.apply(&settings)
                if expanded.contains(where: { $0.field == field }) { chosen.append(.init(field: field, value: pick.label)) }
            }
            let id = explicitID.map { count > 1 ? "\($0)-\(index)" : $0 } ?? RenderJob.stableID(for: settings)
            return RenderJob(id: id, line: line, settings: settings, axes: chosen)
        }
    }

    // MARK: Fields

    private func optional<Value>(_ field: String, _ read: (String, Any) throws -> Value) throws -> Value? {
        guard let value = object[field], !(value is ExactJSONParser.JSONNull) else { return nil }
        return try read(field, value)
    }

    /// A field that may hold one value or a list of them; absent: no values.
    private func list<Value>(_ field: String, _ read: (String, Any) throws -> Value) throws -> [Value] {
        guard let value = object[field], !(value is ExactJSONParser.JSONNull) else { return [] }
        guard let values = value as? [Any] else { return [try read(field, value)] }
        if values.isEmpty { throw fail(field, "an empty list expands to no job") }
        return try values.map { try read(field, $0) }
    }

    private func seeds() throws -> [UInt64] {
        let field = "seed"
        if let range = object[field] as? [String: Any] {
            guard range.count == 1, let bounds = range["range"] as? [Any], bounds.count == 2 else {
                throw fail(field, "a seed range is written {\"range\": [first, last]}")
            }
            let first = try seed(field, bounds[0]), last = try seed(field, bounds[1])
            guard first <= last else { throw fail(field, "the range [\(first), \(last)] runs backwards") }
            guard last - first < UInt64(RenderManifest.maximumExpansion) else {
                throw fail(field, "the range [\(first), \(last)] holds more than \(RenderManifest.maximumExpansion) seeds")
            }
            return Array(first...last)
        }
        return try list(field, seed)
    }

    private func seed(_ field: String, _ value: Any) throws -> UInt64 {
        guard let number = value as? JSONNumber, let seed = UInt64(number.text) else {
            throw fail(field, "expected a whole number from 0 to \(UInt64.max), got \(Self.describe(value)) (leave the seed out for one derived from the job's id)")
        }
        return seed
    }

    /// `[{"path": "a.safetensors", "weight": 0.8}, ...]`.
    private func loras(_ field: String, _ value: Any) throws -> [JobSettings.LoRA] {
        guard let entries = value as? [Any] else { throw fail(field, "expected a list of {\"path\": ..., \"weight\": ...}, got \(Self.describe(value))") }
        return try entries.map { entry in
            guard let object = entry as? [String: Any], let path = object["path"] as? String, !path.isEmpty else {
                throw fail(field, "each LoRA is {\"path\": \"file.safetensors\", \"weight\": 0.8}, got \(Self.describe(entry))")
            }
            if let unknown = object.keys.sorted().first(where: { $0 != "path" && $0 != "weight" }) {
                throw fail(field, "a LoRA has a path and a weight, not '\(unknown)'")
            }
            return JobSettings.LoRA(path: path, weight: try object["weight"].map { try number(field, $0) })
        }
    }

    private func string(_ field: String, _ value: Any) throws -> String {
        guard let text = value as? String else { throw fail(field, "expected a string, got \(Self.describe(value))") }
        return text
    }

    private func integer(_ field: String, _ value: Any, in range: ClosedRange<Int>) throws -> Int {
        guard let number = value as? JSONNumber, let integer = Int(number.text), range.contains(integer) else {
            throw fail(field, "expected a whole number in \(range.lowerBound)...\(range.upperBound), got \(Self.describe(value))")
        }
        return integer
    }

    private func number(_ field: String, _ value: Any) throws -> Float {
        guard let number = value as? JSONNumber, let double = number.double, case let float = Float(double),
              float.isFinite else {
            throw fail(field, "expected a number, got \(Self.describe(value))")
        }
        return float
    }

    static func describe(_ value: Any) -> String {
        switch value {
        case let text as String: "\"\(text.prefix(40))\""
        case let number as JSONNumber: number.text
        case let flag as Bool: "\(flag)"
        case is [Any]: "a list"
        case is [String: Any]: "an object"
        default: "null"
        }
    }

    /// `7.5` -> "7.5", `7` -> "7".
    static func label(_ value: Float) -> String {
        value == value.rounded() && abs(value) < 1e7 ? String(Int(value)) : String(value)
    }
}
