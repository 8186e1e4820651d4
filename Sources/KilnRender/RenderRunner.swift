import Foundation
import Kiln

/// Renders one shard of a manifest into a folder: every job's PNGs written atomically, every
/// event in the shard's ledger before the next job starts, jobs already done (by any earlier run,
/// of any shard layout) skipped, a failing job retried or recorded and never the end of the
/// batch, and a stop request honoured at the next step boundary.
///
/// Each worker (one per device) opens each model once and keeps it resident; jobs run grouped by
/// model and size so consecutive jobs reuse prepared graphs. Names and bytes do not depend on
/// the order.
public final class RenderRunner: @unchecked Sendable {
    public struct Options: Sendable {
        public var outputFolder: URL
        public var shard: Shard
        /// Further attempts for a job whose failure may pass (the device, the disk).
        public var retries: Int
        /// The model of jobs that name none.
        public var defaultModel: URL?
        /// For single-file models: the diffusers folder with their configs.
        public var configFolder: URL?
        /// `vulkan` or `cpu`, and one device selector per worker (nil: the default device).
        public var backend: String
        public var devices: [String?]
        public var dtype: DType

        public init(outputFolder: URL, shard: Shard = .whole, retries: Int = 1, defaultModel: URL?, configFolder: URL? = nil,
                    backend: String = "vulkan", devices: [String?] = [nil], dtype: DType = .float16) {
            self.outputFolder = outputFolder
            self.shard = shard
            self.retries = retries
            self.defaultModel = defaultModel
            self.configFolder = configFolder
            self.backend = backend
            self.devices = devices.isEmpty ? [nil] : devices
            self.dtype = dtype
        }
    }

    /// What happens to a job, in order, for progress lines and machine logs.
    public enum Event: Sendable {
        case alreadyDone(RenderJob)
        case started(RenderJob, attempt: Int, worker: Int)
        case progress(RenderJob, GenerationProgress)
        /// `memory`: the process and its worker's device after the job, for leak checks.
        case done(RenderJob, outputs: [LedgerRecord.Output], seconds: Double, memory: MemoryUse)
        case failed(RenderJob, error: String, retryable: Bool, willRetry: Bool)
        case interrupted(RenderJob)
    }

    public struct Summary: Encodable, Sendable {
        /// Jobs of this shard, and how they ended up.
        public var total = 0
        public var done = 0
        public var alreadyDone = 0
        public var failed = 0
        public var interrupted = 0
        public var images = 0
        public var seconds = 0.0
        public var imagesPerMinute: Double { seconds > 0 ? Double(images) / seconds * 60 : 0 }
        /// Whether a stop request ended the run.
        public var stopped = false

        enum CodingKeys: String, CodingKey {
            case total, done, failed, interrupted, images, seconds, stopped
            case alreadyDone = "already_done"
            case imagesPerMinute = "images_per_minute"
        }

        public func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(total, forKey: .total)
            try container.encode(done, forKey: .done)
            try container.encode(alreadyDone, forKey: .alreadyDone)
            try container.encode(failed, forKey: .failed)
            try container.encode(interrupted, forKey: .interrupted)
            try container.encode(images, forKey: .images)
            try container.encode(seconds, forKey: .seconds)
            try container.encode(imagesPerMinute, forKey: .imagesPerMinute)
            try container.encode(stopped, forKey: .stopped)
        }
    }

    public let manifest: RenderManifest
    public let options: Options
    private let lock = NSLock()
    private var workers: [Worker] = []

    public init(manifest: RenderManifest, options: Options) {
        self.manifest = manifest
        self.options = options
    }

    /// The jobs this runner's shard renders.
    public var shardJobs: [RenderJob] { manifest.jobs.filter(options.shard.contains) }

    // MARK: Checking

    /// Checks everything before any work: the output folder, every model (opened once), and
    /// every job of the manifest — its images readable and its request one its model takes.
    /// Throws `RenderError.badInput` listing the first problems, each with its line and field.
    public func validate() throws {
        try Self.checkOutputFolder(options.outputFolder)
        let worker = try worker(0)
        var problems: [String] = []
        for job in manifest.jobs where problems.count < 20 {
            do {
                let pipeline = try worker.pipeline(for: job, runner: self)
                let request = try JobRequests.request(for: job, defaults: pipeline.defaults, manifest: manifest.url)
                try pipeline.check(request)
            } catch let error as ManifestError {
                problems.append("\(error)")
            } catch {
                problems.append("\(manifest.url.path): line \(job.line) (job '\(job.id)'): \(error)")
            }
        }
        if !problems.isEmpty { throw RenderError.badInput(problems.joined(separator: "\n")) }
    }

    /// The output folder must exist (it is made if missing) and take new files.
    static func checkOutputFolder(_ folder: URL) throws {
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw RenderError.badInput("--out \(folder.path): cannot be created: \(error.localizedDescription)")
        }
        guard access(folder.path, W_OK) == 0 else { throw RenderError.badInput("--out \(folder.path): is not writable") }
    }

    // MARK: Running

    /// Renders the shard's pending jobs; `stopRequested` is polled at every step boundary.
    public func run(events: @escaping @Sendable (Event) -> Void, stopRequested: @escaping @Sendable () -> Bool) throws -> Summary {
        let start = Date()
        let folder = options.outputFolder
        try Self.checkOutputFolder(folder)
        let ledger = try RenderLedger(folder: folder, shard: options.shard)
        let jobs = shardJobs
        let statuses = JobStatus.of(jobs, records: try RenderLedger.records(in: folder), folder: folder)
        removeTemporaryFiles(of: jobs)

        var summary = Summary()
        summary.total = jobs.count
        var pending: [RenderJob] = []
        for job in jobs {
            if case .done = statuses[job.id] {
                summary.alreadyDone += 1
                events(.alreadyDone(job))
            } else {
                pending.append(job)
            }
        }
        // Grouped by model and size, so consecutive jobs reuse prepared graphs.
        pending.sort { (groupKey($0), $0.id) < (groupKey($1), $1.id) }
        let queue = JobQueue(pending)
        let outcome = Outcome()
        DispatchQueue.concurrentPerform(iterations: options.devices.count) { index in
            do {
                let worker = try worker(index)
                while !stopRequested(), let job = queue.next() {
                    worker.render(job, runner: self, ledger: ledger, events: events, stopRequested: stopRequested, outcome: outcome)
                }
            } catch {
                outcome.record(setupError: "\(error)")
            }
        }
        if let setupError = outcome.setupError { throw RenderError.output(setupError) }
        summary.done = outcome.done
        summary.failed = outcome.failed
        summary.interrupted = outcome.interrupted
        summary.images = outcome.images
        summary.stopped = stopRequested()
        summary.seconds = Date().timeIntervalSince(start)
        return summary
    }

    private func groupKey(_ job: RenderJob) -> String {
        "\(job.settings.model ?? "")|\(job.settings.width ?? 0)x\(job.settings.height ?? 0)|\(job.settings.initImage ?? "")"
    }

    /// Worker `index`, made (with its device) the first time.
    private func worker(_ index: Int) throws -> Worker {
        try lock.withLock {
            while workers.count <= index { workers.append(Worker(index: workers.count)) }
            let worker = workers[index]
            try worker.openDevice(kind: options.backend, selector: options.devices[index])
            return worker
        }
    }

    /// Temporary files left by an atomic write a crash cut short, for this shard's outputs
    /// only (another process may be writing its own right now).
    private func removeTemporaryFiles(of jobs: [RenderJob]) {
        let folder = options.outputFolder
        let names = Set(jobs.flatMap(\.outputNames))
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [] {
            guard entry.hasPrefix("."), entry.hasSuffix(".tmp"), let marker = entry.range(of: ".kiln-") else { continue }
            if names.contains(String(entry[entry.index(after: entry.startIndex)..<marker.lowerBound])) {
                try? FileManager.default.removeItem(at: folder.appendingPathComponent(entry))
            }
        }
    }

    func modelURL(for job: RenderJob) throws -> URL {
        try JobRequests.modelURL(for: job, manifest: manifest.url, defaultModel: options.defaultModel)
    }
}

/// The shard's pending jobs, taken one at a time by the workers.
final class JobQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var jobs: [RenderJob]
    private var taken = 0

    init(_ jobs: [RenderJob]) { self.jobs = jobs }

    func next() -> RenderJob? {
        lock.withLock {
            guard taken < jobs.count else { return nil }
            defer { taken += 1 }
            return jobs[taken]
        }
    }
}

/// What the workers did, counted under a lock.
final class Outcome: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var done = 0
    private(set) var failed = 0
    private(set) var interrupted = 0
    private(set) var images = 0
    private(set) var setupError: String?

    func recordDone(images count: Int) { lock.withLock { done += 1; images += count } }
    func recordFailed() { lock.withLock { failed += 1 } }
    func recordInterrupted() { lock.withLock { interrupted += 1 } }
    func record(setupError: String) { lock.withLock { self.setupError = self.setupError ?? setupError } }
}
