import Foundation
import Kiln
import KilnRender
import Testing

/// `kiln render` as a farm runs it: exit codes, a bad manifest refused before any work with its
/// line and field, SIGTERM mid-run (exit 75, the running job recorded as interrupted, no
/// temporary file) and the same command finishing the set, a Kubernetes pod's shard, the sbatch
/// script, `status`.
@Suite(.serialized) struct RenderCommandTests {
    static func write(_ lines: [String], to folder: URL) throws -> URL {
        let url = folder.appendingPathComponent("jobs.jsonl")
        try lines.joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    static func render(_ arguments: [String], environment: [String: String] = [:]) throws -> GenerateCommandTests.Outcome {
        try GenerateCommandTests.kiln(["render"] + arguments, environment: environment)
    }

    @Test func aBadManifestExitsTwoNamingLineAndFieldAndRendersNothing() throws {
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try PipelineFixtures.modelFolder("sd1")
        for (lines, message) in [
            ([#"{"prompt": "a", "steps": 2}"#, #"{"prompt": "b", "stpes": 2}"#], "line 2: field 'stpes': unknown field"),
            ([#"{"prompt": "a", "width": 61}"#], "line 1"),
            ([#"{"prompt": "a", "init_image": "nope.png"}"#], "field 'init_image'"),
        ] {
            let manifest = try Self.write(lines, to: folder)
            let out = folder.appendingPathComponent("out")
            let run = try Self.render([manifest.path, "--model", model.path, "--out", out.path, "--backend", "cpu"])
            #expect(run.status == 2, "\(lines): \(run.errors)")
            #expect(run.errors.contains(message), "\(run.errors)")
            #expect((try? FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasSuffix(".png") })?.isEmpty ?? true)
        }
    }

    @Test func sigtermStopsWithSeventyFiveAndTheSameCommandFinishes() throws {
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try PipelineFixtures.modelFolder("sd1")
        let manifest = try Self.write([#"{"id": "j", "prompt": "a lighthouse", "seed": {"range": [0, 5]}, "steps": 40, "width": 64, "height": 64}"#], to: folder)
        let out = folder.appendingPathComponent("out")
        let arguments = ["render", manifest.path, "--model", model.path, "--out", out.path, "--backend", "cpu", "--log", "jsonl"]

        let process = Process()
        process.executableURL = GenerateCommandTests.executable
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = Pipe()
        try process.run()
        // Wait until a job is running, then ask the process to stop.
        var log = ""
        let reader = errors.fileHandleForReading
        while !log.contains("\"started\"") {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            log += String(decoding: chunk, as: UTF8.self)
        }
        process.terminate()
        log += String(decoding: reader.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 75, "\(log)")
        #expect(log.contains("\"interrupted\""), "\(log)")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasSuffix(".tmp") }
        #expect(leftovers.isEmpty)

        let finish = try GenerateCommandTests.kiln(arguments + ["--json"])
        #expect(finish.status == 0, "\(finish.errors)")
        let status = try Self.render(["status", manifest.path, "--out", out.path, "--json"])
        let report = try #require(try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any])
        #expect(report["total"] as? Int == 6 && report["done"] as? Int == 6 && report["pending"] as? Int == 0, "\(status.output)")
        let pngs = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasSuffix(".png") }
        #expect(pngs.sorted() == (0..<6).map { "j-\($0).png" })
    }

    @Test func aKubernetesPodTakesItsIndexsShard() throws {
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try PipelineFixtures.modelFolder("sd1")
        let manifest = try Self.write([#"{"id": "k", "prompt": "a cat", "seed": {"range": [0, 7]}, "steps": 1, "width": 64, "height": 64}"#], to: folder)
        let out = folder.appendingPathComponent("out")
        let run = try Self.render([manifest.path, "--model", model.path, "--out", out.path, "--backend", "cpu", "--shards", "3", "--json"],
                                  environment: ["JOB_COMPLETION_INDEX": "2"])
        #expect(run.status == 0, "\(run.errors)")
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("ledger-2-of-3.jsonl").path))
        let jobs = try RenderManifest.load(manifest).jobs.filter(Shard(index: 2, count: 3).contains)
        let pngs = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasSuffix(".png") }
        #expect(Set(pngs) == Set(jobs.flatMap(\.outputNames)) && !jobs.isEmpty)
        let missing = try Self.render([manifest.path, "--model", model.path, "--out", out.path, "--backend", "cpu"],
                                      environment: ["JOB_COMPLETION_INDEX": "2"])
        #expect(missing.status == 2 && missing.errors.contains("--shards"), "\(missing.errors)")
    }

    @Test func emitSbatchPrintsAnArrayScript() throws {
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let manifest = try Self.write([#"{"prompt": "a cat"}"#], to: folder)
        let run = try Self.render([manifest.path, "--model", "/models/sd15", "--out", "/farm/out", "--emit-sbatch", "--shards", "4"])
        #expect(run.status == 0, "\(run.errors)")
        #expect(run.output.contains("#SBATCH --array=0-3") && run.output.contains("--shards 4") && run.output.contains(manifest.path))
    }
}
