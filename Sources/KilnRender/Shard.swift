/// Which part of a manifest one process renders: job `j` belongs to shard
/// `hash(j.id) mod count`, so a shard's jobs depend only on their ids — not on the manifest's
/// order or on other jobs — and a shard run again after a requeue does exactly its own jobs.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    public static let whole = Shard(index: 0, count: 1)

    public init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    public func contains(_ job: RenderJob) -> Bool {
        count == 1 || Int(RenderJob.hashPrefix("shard:" + job.id) % UInt64(count)) == index
    }

    /// `2-of-4`: how ledgers are named.
    public var description: String { "\(index)-of-\(count)" }

    /// The shard from `--shard I/N`; else from a Slurm array task (`SLURM_ARRAY_TASK_ID` offset by
    /// `SLURM_ARRAY_TASK_MIN`, of `SLURM_ARRAY_TASK_COUNT`); else from a Kubernetes Indexed Job's
    /// `JOB_COMPLETION_INDEX` with `--shards N`; else the whole manifest.
    public static func resolve(shard: String?, shards: Int?, environment: [String: String]) throws -> Shard {
        func bad(_ message: String) -> ShardError { ShardError(message: message) }
        if let shard {
            let parts = shard.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, let index = Int(parts[0]), let count = Int(parts[1]), count >= 1, (0..<count).contains(index) else {
                throw bad("--shard '\(shard)': write it I/N with 0 <= I < N, e.g. 0/4")
            }
            if let shards, shards != count { throw bad("--shard \(shard) and --shards \(shards) disagree") }
            return Shard(index: index, count: count)
        }
        if let task = environment["SLURM_ARRAY_TASK_ID"] {
            guard let id = Int(task) else { throw bad("SLURM_ARRAY_TASK_ID '\(task)' is not a number") }
            let minimum = Int(environment["SLURM_ARRAY_TASK_MIN"] ?? "0") ?? 0
            guard let count = environment["SLURM_ARRAY_TASK_COUNT"].flatMap(Int.init) ?? shards, count >= 1 else {
                throw bad("a Slurm array task without SLURM_ARRAY_TASK_COUNT needs --shards N")
            }
            guard (0..<count).contains(id - minimum) else {
                throw bad("array task \(id) (first \(minimum)) is outside the \(count) shards")
            }
            if let shards, shards != count { throw bad("--shards \(shards) but the array has \(count) tasks") }
            return Shard(index: id - minimum, count: count)
        }
        if let completion = environment["JOB_COMPLETION_INDEX"] {
            guard let index = Int(completion) else { throw bad("JOB_COMPLETION_INDEX '\(completion)' is not a number") }
            guard let shards, shards >= 1 else { throw bad("JOB_COMPLETION_INDEX is set: give --shards N (the Job's completions)") }
            guard (0..<shards).contains(index) else { throw bad("JOB_COMPLETION_INDEX \(index) is outside --shards \(shards)") }
            return Shard(index: index, count: shards)
        }
        if let shards, shards > 1 { throw bad("--shards \(shards) without a shard: give --shard I/\(shards), or run as an array task") }
        return .whole
    }
}

public struct ShardError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
