import Foundation
import KilnGraph

/// One event of one job, as a ledger line.
public struct LedgerRecord: Codable, Sendable, Equatable {
    public enum Event: String, Codable, Sendable {
        case started, done, failed, interrupted
    }

    public struct Output: Codable, Sendable, Equatable {
        public let file: String
        public let sha256: String

        public init(file: String, sha256: String) {
            self.file = file
            self.sha256 = sha256
        }
    }

    public var event: Event
    public var id: String
    /// Seconds since 1970, for ordering records of several ledgers.
    public var time: Double
    public var shard: String
    public var attempt: Int
    public var pid: Int32
    public var host: String
    /// `done`: the files written and their hashes, and the job's seconds.
    public var outputs: [Output]?
    public var seconds: Double?
    /// `failed`: the error, and whether running the job again could succeed.
    public var error: String?
    public var retryable: Bool?

    public init(event: Event, id: String, shard: Shard, attempt: Int, outputs: [Output]? = nil, seconds: Double? = nil,
                error: String? = nil, retryable: Bool? = nil) {
        self.event = event
        self.id = id
        time = Date().timeIntervalSince1970
        self.shard = shard.description
        self.attempt = attempt
        pid = getpid()
        host = ProcessInfo.processInfo.hostName
        self.outputs = outputs
        self.seconds = seconds
        self.error = error
        self.retryable = retryable
    }
}

/// A shard's append-only record of job events, `DIR/ledger-{I}-of-{N}.jsonl`: each record is
/// written and fsynced before the next job starts, and an exclusive lock on the file keeps a
/// second process off the same shard.
public final class RenderLedger: @unchecked Sendable {
    public let url: URL
    private let descriptor: Int32
    private let lock = NSLock()

    public static func fileName(for shard: Shard) -> String { "ledger-\(shard).jsonl" }

    public init(folder: URL, shard: Shard) throws {
        url = folder.appendingPathComponent(Self.fileName(for: shard))
        descriptor = open(url.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw RenderError.output("\(url.path): cannot open the ledger: \(systemMessage(errno))") }
        if flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            close(descriptor)
            throw RenderError.output(code == EWOULDBLOCK
                ? "\(url.path): shard \(shard) is being rendered by another process (its ledger is locked)"
                : "\(url.path): cannot lock the ledger: \(systemMessage(code))")
        }
    }

    deinit { close(descriptor) }

    /// Appends `record` as one line and waits until it is on disk.
    public func append(_ record: LedgerRecord) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var line = try encoder.encode(record)
        line.append(UInt8(ascii: "\n"))
        try lock.withLock {
            // A write cut short (a full disk) is taken back, so the next record starts a line of
            // its own rather than joining a fragment that would make both unreadable.
            let end = lseek(descriptor, 0, SEEK_END)
            let failure: Int32? = line.withUnsafeBytes { raw -> Int32? in
                guard let base = raw.baseAddress else { return nil }
                var offset = 0
                while offset < raw.count {
                    let written = Foundation.write(descriptor, base + offset, raw.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        return errno
                    }
                    offset += written
                }
                return nil
            }
            if let failure {
                if end >= 0 { _ = ftruncate(descriptor, end) }
                throw RenderError.output("\(url.path): cannot append to the ledger: \(systemMessage(failure))")
            }
            if fsync(descriptor) != 0 {
                let code = errno
                if end >= 0 { _ = ftruncate(descriptor, end) }
                throw RenderError.output("\(url.path): cannot flush the ledger: \(systemMessage(code))")
            }
        }
    }

    /// Every record of every ledger in `folder`, oldest first. A line that does not parse (the
    /// tail of a write cut short by a crash) is skipped.
    public static func records(in folder: URL) throws -> [LedgerRecord] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        var records: [(record: LedgerRecord, file: Int, line: Int)] = []
        for (fileIndex, name) in names.filter({ $0.hasPrefix("ledger-") && $0.hasSuffix(".jsonl") }).sorted().enumerated() {
            let text = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
            for (lineIndex, line) in text.split(separator: "\n").enumerated() {
                guard let record = try? JSONDecoder().decode(LedgerRecord.self, from: Data(line.utf8)) else { continue }
                records.append((record, fileIndex, lineIndex))
            }
        }
        return records.sorted { ($0.record.time, $0.file, $0.line) < ($1.record.time, $1.file, $1.line) }.map(\.record)
    }
}

/// Where each job stands, from the ledgers and the files in the output folder.
public enum JobStatus: Equatable, Sendable {
    /// Done, with every output present and hashing as recorded.
    case done([LedgerRecord.Output])
    case failed(error: String, retryable: Bool)
    case interrupted
    /// Never started, started without an end (the process died), or done but an output is
    /// missing or changed.
    case pending

    /// Each job's status: its last record decides, and `done` holds only while its files do.
    public static func of(_ jobs: [RenderJob], records: [LedgerRecord], folder: URL) -> [String: JobStatus] {
        var last: [String: LedgerRecord] = [:]
        for record in records { last[record.id] = record }
        var statuses: [String: JobStatus] = [:]
        for job in jobs {
            guard let record = last[job.id] else {
                statuses[job.id] = .pending
                continue
            }
            switch record.event {
            case .done:
                let outputs = record.outputs ?? []
                let intact = outputs.count == job.outputNames.count && outputs.allSatisfy { output in
                    (try? SHA256.hex(fileAt: folder.appendingPathComponent(output.file))) == output.sha256
                }
                statuses[job.id] = intact ? .done(outputs) : .pending
            case .failed: statuses[job.id] = .failed(error: record.error ?? "unknown error", retryable: record.retryable ?? true)
            case .interrupted: statuses[job.id] = .interrupted
            case .started: statuses[job.id] = .pending
            }
        }
        return statuses
    }
}
