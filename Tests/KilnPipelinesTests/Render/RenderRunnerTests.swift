import Foundation
import Kiln
import KilnRender
import Testing

/// The render runner on the tiny SD1 model (CPU backend): every job once, resumes that skip what
/// is done and redo what is missing or changed, interruptions that finish byte-identical to an
/// uninterrupted run, failures that never stop the batch, shards that add up to the whole.
@Suite(.serialized) struct RenderRunnerTests {
    static func manifest(_ lines: [String], in folder: URL) throws -> RenderManifest {
        let url = folder.appendingPathComponent("manifest.jsonl")
        try lines.joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
        return try RenderManifest.load(url)
    }

    static let lines = [
        #"{"id": "cat", "prompt": "a cat", "seed": {"range": [1, 3]}, "steps": 2, "width": 64, "height": 48, "sampler": "euler"}"#,
        #"{"prompt": "a dog", "steps": 2, "width": 48, "height": 64, "batch_count": 2, "sampler": "euler_a"}"#,
        #"{"id": "boat", "prompt": "a boat", "steps": 2, "width": 64, "height": 64, "cfg_scale": [1, 4], "sampler": "ddim"}"#,
    ]

    static func runner(_ manifest: RenderManifest, out: URL, shard: Shard = .whole, retries: Int = 1) throws -> RenderRunner {
        RenderRunner(manifest: manifest, options: .init(
            outputFolder: out, shard: shard, retries: retries, defaultModel: try PipelineFixtures.modelFolder("sd1"), backend: "cpu"))
    }

    /// Every file of `folder` but the ledgers, by name.
    static func images(in folder: URL) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) where !name.hasPrefix("ledger-") {
            files[name] = try Data(contentsOf: folder.appendingPathComponent(name))
        }
        return files
    }

    final class Events: @unchecked Sendable {
        private let lock = NSLock()
        private var recorded: [RenderRunner.Event] = []
        var all: [RenderRunner.Event] { lock.withLock { recorded } }
        var record: @Sendable (RenderRunner.Event) -> Void { { [self] event in lock.withLock { recorded.append(event) } } }
        var started: [String] { all.compactMap { if case .started(let job, _, _) = $0 { job.id } else { nil } } }
        var progressCount: Int { all.filter { if case .progress(_, let progress) = $0 { progress.stage == .denoising } else { false } }.count }
    }

    @Test func rendersEveryJobOnceAndResumesOnlyWhatIsMissingOrChanged() throws {
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let manifest = try Self.manifest(Self.lines, in: folder)
        let out = folder.appendingPathComponent("out")
        let runner = try Self.runner(manifest, out: out)
        try runner.validate()
        let summary = try runner.run(events: { _ in }, stopRequested: { false })
        #expect(summary.total == 6 && summary.done == 6 && summary.images == 7 && summary.failed == 0)
        let first = try Self.images(in: out)
        #expect(Set(first.keys) == Set(manifest.jobs.flatMap(\.outputNames)))
        // The ledger's hashes are the files'.
        for record in try RenderLedger.records(in: out) where record.event == .done {
            for output in record.outputs ?? [] { #expect(SHA256.hex(first[output.file]!) == output.sha256) }
        }

        let again = Events()
        let resumed = try runner.run(events: again.record, stopRequested: { false })
        #expect(resumed.alreadyDone == 6 && resumed.done == 0 && again.started.isEmpty)

        try FileManager.default.removeItem(at: out.appendingPathComponent("cat-1.png"))
        try Data("not the image".utf8).write(to: out.appendingPathComponent("boat-0.png"))
        let repair = Events()
        let repaired = try runner.run(events: repair.record, stopRequested: { false })
        #expect(Set(repair.started) == ["cat-1", "boat-0"] && repaired.alreadyDone == 4)
        #expect(try Self.images(in: out) == first, "the redone files are byte-identical")
    }

    @Test func anInterruptedRunFinishesByteIdenticalToAnUninterruptedOne() throws {
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let manifest = try Self.manifest(Self.lines, in: folder)
        let whole = folder.appendingPathComponent("whole"), interrupted = folder.appendingPathComponent("interrupted")
        _ = try Self.runner(manifest, out: whole).run(events: { _ in }, stopRequested: { false })

        let events = Events()
        let runner = try Self.runner(manifest, out: interrupted)
        let stopped = try runner.run(events: events.record, stopRequested: { events.progressCount >= 5 })
        #expect(stopped.stopped && stopped.interrupted == 1 && stopped.done < 6, "\(stopped)")
        let records = try RenderLedger.records(in: interrupted)
        #expect(records.last?.event == .interrupted)
        let finished = try runner.run(events: { _ in }, stopRequested: { false })
        #expect(finished.done + finished.alreadyDone == 6 && !finished.stopped)
        #expect(try Self.images(in: interrupted) == Self.images(in: whole), "same names, same bytes, no temporary files")
        let statuses = JobStatus.of(manifest.jobs, records: try RenderLedger.records(in: interrupted), folder: interrupted)
        #expect(statuses.values.allSatisfy { if case .done = $0 { true } else { false } })
    }

    @Test func aFailingJobIsRetriedRecordedAndNeverStopsTheBatch() throws {
        let folder = try GenerateCommandTests.scratch()
        let poisoned = try ModelFolders.poisoned(.stableDiffusion1)
        defer {
            try? FileManager.default.removeItem(at: folder)
            try? FileManager.default.removeItem(at: poisoned)
        }
        let manifest = try Self.manifest(Self.lines + [
            #"{"id": "broken", "prompt": "x", "steps": 2, "width": 64, "height": 64, "model": "\#(poisoned.path)"}"#,
        ], in: folder)
        let out = folder.appendingPathComponent("out")
        let events = Events()
        let summary = try Self.runner(manifest, out: out, retries: 2).run(events: events.record, stopRequested: { false })
        #expect(summary.done == 6 && summary.failed == 1)
        #expect(events.started.filter { $0 == "broken" }.count == 3, "1 attempt + 2 retries")
        let statuses = JobStatus.of(manifest.jobs, records: try RenderLedger.records(in: out), folder: out)
        guard case .failed(let error, let retryable) = statuses["broken"] else { Issue.record("\(String(describing: statuses["broken"]))"); return }
        #expect(error.contains("numerical failure") && retryable)
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("broken.png").path))
    }

    @Test func badJobsAreRefusedBeforeAnyWork() throws {
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let manifest = try Self.manifest([
            Self.lines[0],
            #"{"prompt": "x", "width": 60, "height": 64}"#,
            #"{"prompt": "x", "init_image": "missing.png"}"#,
            #"{"prompt": "x", "sampler": "euler_b"}"#,
            #"{"prompt": "x", "model": "no/such/model"}"#,
        ], in: folder)
        let out = folder.appendingPathComponent("out")
        do {
            try Self.runner(manifest, out: out).validate()
            Issue.record("the manifest was accepted")
        } catch RenderError.badInput(let message) {
            for part in ["line 2", "multiples of 8", "line 3: field 'init_image'", "missing.png", "line 4: field 'sampler'", "line 5"] {
                #expect(message.contains(part), "\(part) in \(message)")
            }
        }
        #expect((try? FileManager.default.contentsOfDirectory(atPath: out.path))?.isEmpty ?? true, "nothing rendered")
    }

    @Test func shardsTogetherRenderTheWholeManifestOnce() throws {
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let manifest = try Self.manifest(Self.lines, in: folder)
        let out = folder.appendingPathComponent("out")
        var rendered: [String] = []
        for index in 0..<3 {
            let events = Events()
            _ = try Self.runner(manifest, out: out, shard: Shard(index: index, count: 3)).run(events: events.record, stopRequested: { false })
            rendered += events.started
        }
        #expect(rendered.sorted() == manifest.jobs.map(\.id).sorted())
        let ledgers = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasPrefix("ledger-") }.sorted()
        #expect(ledgers == ["ledger-0-of-3.jsonl", "ledger-1-of-3.jsonl", "ledger-2-of-3.jsonl"])
        // A later unsharded run finds everything done.
        #expect(try Self.runner(manifest, out: out).run(events: { _ in }, stopRequested: { false }).alreadyDone == 6)
    }

    /// `--devices a,b`: a worker per device, each with its own resident model, the same files.
    @Test func twoWorkersMakeTheSameFilesAsOne() throws {
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let manifest = try Self.manifest(Self.lines, in: folder)
        let one = folder.appendingPathComponent("one"), two = folder.appendingPathComponent("two")
        _ = try Self.runner(manifest, out: one).run(events: { _ in }, stopRequested: { false })
        let events = Events()
        let runner = RenderRunner(manifest: manifest, options: .init(
            outputFolder: two, defaultModel: try PipelineFixtures.modelFolder("sd1"), backend: "cpu", devices: ["a", "b"]))
        let summary = try runner.run(events: events.record, stopRequested: { false })
        #expect(summary.done == 6)
        let workers = Set(events.all.compactMap { if case .started(_, _, let worker) = $0 { worker } else { nil } })
        #expect(workers == [0, 1], "both workers took jobs")
        #expect(try Self.images(in: two) == Self.images(in: one))
    }

    @Test func aSecondProcessCannotTakeTheSameShard() throws {
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let manifest = try Self.manifest(Self.lines, in: folder)
        let out = folder.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let held = try RenderLedger(folder: out, shard: .whole)
        #expect { _ = try Self.runner(manifest, out: out).run(events: { _ in }, stopRequested: { false }) } throws: {
            "\($0)".contains("another process")
        }
        _ = held
    }

    @Test func gridLaysOutTwoAxesWithLabels() throws {
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let manifest = try Self.manifest([
            #"{"id": "g", "prompt": "a cat", "steps": 2, "width": 64, "height": 48, "sampler": ["euler", "ddim", "heun"], "cfg_scale": [1, 7.5]}"#,
        ], in: folder)
        let out = folder.appendingPathComponent("out")
        _ = try Self.runner(manifest, out: out).run(events: { _ in }, stopRequested: { false })
        let grid = try ComparisonGrid(manifest: manifest)
        #expect(grid.rowField == "sampler" && grid.columnField == "cfg_scale" && grid.cells.count == 3 && grid.cells[0].count == 2)
        let image = try grid.image(folder: out)
        #expect(image.height > 3 * 48 && image.width > 2 * 64)
        // The label bands hold ink; the cells are the images themselves.
        let cell = try PNGImage(contentsOf: out.appendingPathComponent("g-3.png")).rgb()
        let (left, top) = (image.width - 2 * 64 + 64, image.height - 3 * 48 + 48)
        #expect(Array(image.pixels[((top + 5) * image.width + left) * 3..<((top + 5) * image.width + left + 1) * 3]) == Array(cell.pixels[(5 * 64) * 3..<(5 * 64 + 1) * 3]))
        #expect(image.pixels[0..<(image.width * 3 * 8)].contains(0), "the top band has labels")
        let threeAxes = try Self.manifest([#"{"prompt": ["a", "b"], "seed": [1, 2], "steps": [1, 2]}"#], in: folder)
        #expect(throws: RenderError.self) { _ = try ComparisonGrid(manifest: threeAxes) }
    }
}
