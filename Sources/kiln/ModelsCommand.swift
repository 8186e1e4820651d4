import ArgumentParser
import Foundation
import Kiln

/// `kiln models`: which model runs when no `--model` is given, where it is, and what it draws.
/// Exits 1 when the default model is in none of the places it is looked for.
struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models", abstract: "Show Kiln's default model (used when no --model is given) and where it is.")

    @Flag(help: "Print one JSON object: name, path (null when not found), searched, family, bytes, prompt_template.")
    var json = false

    struct Description: Encodable {
        let name: String
        let path: String?
        let searched: [String]
        let family: String?
        let bytes: Int?
        let promptTemplate: String?

        enum CodingKeys: String, CodingKey {
            case name, path, searched, family, bytes
            case promptTemplate = "prompt_template"
        }
    }

    func run() throws {
        let folder = DefaultModel.location()
        let description = Description(
            name: DefaultModel.name, path: folder?.path, searched: DefaultModel.searchedLocations.map(\.path),
            family: folder.flatMap { try? Pipelines.family(of: Pipelines.Source(url: $0)).displayName },
            bytes: folder.map(Self.folderBytes), promptTemplate: folder.flatMap(Self.promptTemplate))
        if json {
            try printJSON(description)
        } else if let path = description.path {
            print("default model  \(description.name)")
            print("  path         \(path)")
            if let family = description.family { print("  family       \(family)") }
            if let bytes = description.bytes { print("  size         \(formatBytes(UInt64(bytes)))") }
            if let template = description.promptTemplate { print("  prompts      \(template)") }
        } else {
            printError("kiln models: the default model \(description.name) is not installed; looked in:")
            for path in description.searched { printError("  \(path)") }
        }
        if folder == nil { throw ExitCode.failure }
    }

    private static func folderBytes(_ folder: URL) -> Int {
        let files = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: [.fileSizeKey])
        return (files?.allObjects as? [URL] ?? []).reduce(0) { $0 + ((try? $1.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0) }
    }

    /// The prompt grammar the training script wrote beside the weights.
    private static func promptTemplate(_ folder: URL) -> String? {
        guard let data = try? Data(contentsOf: folder.appendingPathComponent("scene_grammar.json")),
              let grammar = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return grammar["template"] as? String
    }
}
