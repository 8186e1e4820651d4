import Foundation
import Kiln
import Testing

/// Real full and read-only file systems (small tmpfs mounts; the tests need root, as CI has):
/// a job whose output does not fit fails with the system's reason and leaves no partial file,
/// the ledger stays readable line by line, a resumed render finishes the set, and a read-only
/// output folder is refused before any work.
@Suite(.serialized) struct DiskFaultTests {
    /// A tmpfs of `kibibytes` mounted on a new folder.
    static func mount(kibibytes: Int, readOnly: Bool = false) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-tmpfs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let options = "size=\(kibibytes)k" + (readOnly ? ",ro" : "")
        let status = try run("/bin/mount", ["-t", "tmpfs", "-o", options, "tmpfs", folder.path])
        guard status == 0 else {
            throw GraphError("mount", "cannot mount a tmpfs on \(folder.path) (exit \(status)): the disk fault tests need root")
        }
        return folder
    }

    static func unmount(_ folder: URL) {
        _ = try? run("/bin/umount", [folder.path])
        try? FileManager.default.removeItem(at: folder)
    }

    static func run(_ tool: String, _ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    @Test func aFullDiskFailsItsJobsLeavesNoPartialFileAndTheRenderResumes() throws {
        let scratch = try GenerateCommandTests.scratch()
        let disk = try Self.mount(kibibytes: 40)
        defer {
            Self.unmount(disk)
            try? FileManager.default.removeItem(at: scratch)
        }
        let manifest = try RenderCommandTests.write(
            [#"{"id": "full", "prompt": "a large green triangle on a black background", "seed": {"range": [0, 7]}, "steps": 2}"#], to: scratch)
        let first = try RenderCommandTests.render([manifest.path, "--out", disk.path, "--retries", "0"])
        #expect(first.status == 1, "exit \(first.status): \(first.errors)")
        #expect(first.errors.contains("No space left on device"), "\(first.errors)")

        let names = try FileManager.default.contentsOfDirectory(atPath: disk.path)
        #expect(!names.contains { $0.hasSuffix(".tmp") }, "\(names)")
        let ledgerName = try #require(names.first { $0.hasPrefix("ledger-") })
        let lines = try String(contentsOf: disk.appendingPathComponent(ledgerName), encoding: .utf8).split(separator: "\n")
        for line in lines { #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "a partial ledger line: \(line)") }
        // Every PNG there is whole: the ledger's hash of it matches.
        let status = try RenderCommandTests.render(["status", manifest.path, "--out", disk.path, "--json"])
        let report = try #require(try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any])
        let pngs = names.filter { $0.hasSuffix(".png") }
        let done = try #require(report["done"] as? Int)
        #expect(done == pngs.count && done > 0 && done < 8, "\(status.output) \(names)")

        // The same folder on a disk with room: only what is missing is rendered.
        let roomy = scratch.appendingPathComponent("moved")
        try FileManager.default.copyItem(at: disk, to: roomy)
        let resumed = try RenderCommandTests.render([manifest.path, "--out", roomy.path, "--json"])
        #expect(resumed.status == 0, "\(resumed.errors)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(resumed.output.utf8)) as? [String: Any])
        #expect(summary["already_done"] as? Int == done && summary["done"] as? Int == 8 - done, "\(resumed.output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: roomy.path).filter { $0.hasSuffix(".png") }.count == 8)
    }

    @Test func generateOnAFullDiskExitsOneAndLeavesNothing() throws {
        let disk = try Self.mount(kibibytes: 16)
        defer { Self.unmount(disk) }
        // Filled up to the last byte, so even a small PNG cannot be written.
        let filler = disk.appendingPathComponent("filler")
        FileManager.default.createFile(atPath: filler.path, contents: nil)
        let handle = try FileHandle(forWritingTo: filler)
        while (try? handle.write(contentsOf: Data(count: 1024))) != nil {}
        try? handle.close()
        let output = disk.appendingPathComponent("out.png")
        let run = try GenerateCommandTests.kiln(["generate", "--prompt", "a small red star on a white background", "--steps", "2", "--quiet", "--output", output.path])
        #expect(run.status == 1 && run.errors.contains("No space left on device"), "exit \(run.status): \(run.errors)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: disk.path) == ["filler"])
    }

    @Test func aReadOnlyOutputFolderIsRefusedBeforeWork() throws {
        let disk = try Self.mount(kibibytes: 64, readOnly: true)
        let scratch = try GenerateCommandTests.scratch()
        defer {
            Self.unmount(disk)
            try? FileManager.default.removeItem(at: scratch)
        }
        let manifest = try RenderCommandTests.write([#"{"prompt": "a small red star on a white background", "steps": 2}"#], to: scratch)
        let start = Date()
        let render = try RenderCommandTests.render([manifest.path, "--out", disk.path])
        #expect(render.status == 2 && render.errors.contains("is not writable"), "exit \(render.status): \(render.errors)")
        let generate = try GenerateCommandTests.kiln(["generate", "--prompt", "x", "--output", disk.appendingPathComponent("x.png").path])
        #expect(generate.status == 2 && generate.errors.contains("not writable"), "exit \(generate.status): \(generate.errors)")
        #expect(Date().timeIntervalSince(start) < 30)
    }
}
