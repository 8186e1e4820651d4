import Foundation

/// The one bounded FIFO queue every generation goes through (A1111, OpenAI and async routes
/// alike), served by one worker. A full queue refuses with 429 and `Retry-After`; finished jobs
/// are kept for `retention` seconds, then answer 410.
public final class JobQueue: Sendable {
    /// Jobs that may wait (the running one is not counted).
    public let capacity: Int
    /// Seconds a finished job's results are kept.
    public let retention: TimeInterval

    struct State {
        var pending: [Job] = []
        var running: Job?
        var jobs: [String: Job] = [:]
        /// Ids of jobs whose results expired, oldest first, so they answer 410 rather than 404;
        /// bounded so memory stays flat over months.
        var expired: [String] = []
        var expiredSet: Set<String> = []
        var accepting = true
        var counter = 0
        /// Seconds the recent jobs took, for `Retry-After` and A1111's ETA.
        var recentSeconds: [Double] = []
        var workerWaiting: CheckedContinuation<Job?, Never>?
    }

    static let expiredMemory = 10_000

    private let state = Locked(State())
    private let metrics: ServerMetrics

    init(capacity: Int, retention: TimeInterval, metrics: ServerMetrics) {
        self.capacity = capacity
        self.retention = retention
        self.metrics = metrics
    }

    // MARK: Submitting

    /// Queues `work`; 429 when `capacity` jobs already wait, 503 while shutting down.
    public func submit(_ work: JobWork) throws -> Job {
        sweep()
        let (job, worker): (Job, CheckedContinuation<Job?, Never>?) = try state.withLock { state in
            guard state.accepting else { throw APIError(.serviceUnavailable, field: nil, "the server is shutting down") }
            if state.pending.count >= capacity {
                let average = state.recentSeconds.isEmpty ? 5 : state.recentSeconds.reduce(0, +) / Double(state.recentSeconds.count)
                var error = APIError(
                    .tooManyRequests, field: nil,
                    "the queue is full (\(capacity) jobs waiting, --max-queue); retry later")
                error.headers[.retryAfter] = String(max(1, Int((average * Double(state.pending.count + 1)).rounded(.up))))
                throw error
            }
            state.counter += 1
            let id = String(format: "%06d-", state.counter) + UUID().uuidString.lowercased().prefix(8)
            let job = Job(id: id, work: work)
            state.jobs[id] = job
            if state.running == nil, let worker = state.workerWaiting {
                // The worker is idle: hand the job over at once.
                state.workerWaiting = nil
                state.running = job
                job.state.withLock { $0.position = 0 }
                return (job, worker)
            }
            state.pending.append(job)
            job.state.withLock { $0.position = state.pending.count }
            return (job, nil)
        }
        metrics.jobSubmitted()
        if let worker {
            worker.resume(returning: job)
        } else {
            job.update { .queued(position: $0.position ?? 0) }
        }
        updateGauges()
        return job
    }

    // MARK: The worker's side

    /// The next job, waiting until there is one; nil once shut down and drained.
    func next() async -> Job? {
        enum Outcome { case job(Job), wait, stop }
        return await withCheckedContinuation { continuation in
            let (outcome, moved): (Outcome, [Job]) = state.withLock { state in
                state.running = nil
                if !state.pending.isEmpty {
                    let job = state.pending.removeFirst()
                    state.running = job
                    return (.job(job), state.pending)
                }
                if !state.accepting { return (.stop, []) }
                // `submit` or `shutDown` resumes the continuation from here on.
                state.workerWaiting = continuation
                return (.wait, [])
            }
            for (index, waiting) in moved.enumerated() {
                waiting.update {
                    $0.position = index + 1
                    return .queued(position: index + 1)
                }
            }
            updateGauges()
            switch outcome {
            case .job(let job): continuation.resume(returning: job)
            case .stop: continuation.resume(returning: nil)
            case .wait: break
            }
        }
    }

    /// Records a finished job's time and status.
    func finished(_ job: Job, seconds: Double) {
        state.withLock { state in
            state.recentSeconds.append(seconds)
            if state.recentSeconds.count > 20 { state.recentSeconds.removeFirst() }
            if state.running === job { state.running = nil }
        }
        metrics.jobFinished(job.status, seconds: seconds)
        updateGauges()
    }

    // MARK: Control

    /// The job `id`: 404 if never known, 410 once its results expired.
    public func job(_ id: String) throws -> Job {
        sweep()
        return try state.withLock { state in
            if let job = state.jobs[id] { return job }
            if state.expiredSet.contains(id) {
                throw APIError(.gone, field: nil, "job \(id) finished more than \(Int(retention)) s ago; its results are gone")
            }
            throw APIError(.notFound, field: nil, "no job \(id)")
        }
    }

    /// Cancels a queued job at once, or a running one at its next step. Returns false if the
    /// job had already finished.
    @discardableResult
    public func cancel(_ job: Job) -> Bool {
        let wasQueued = state.withLock { state -> Bool? in
            if let index = state.pending.firstIndex(where: { $0 === job }) {
                state.pending.remove(at: index)
                return true
            }
            return state.running === job ? false : nil
        }
        switch wasQueued {
        case true?:
            job.finish(.cancelled)
            metrics.jobFinished(.cancelled, seconds: 0)
            renumber()
            return true
        case false?:
            job.state.withLock { $0.cancelRequested = true }
            return true
        case nil:
            return false
        }
    }

    /// A1111's `interrupt`: stops the running job at its next step, keeping its images so far.
    public func interruptRunning() -> Job? {
        guard let job = running else { return nil }
        job.state.withLock {
            $0.cancelRequested = true
            $0.interrupted = true
        }
        return job
    }

    /// A1111's `skip`: stops the running job's current generation; the job goes on.
    public func skipRunning() -> Job? {
        guard let job = running else { return nil }
        job.state.withLock { $0.skippedIteration = $0.iteration }
        return job
    }

    public var running: Job? { state.withLock { $0.running } }
    public var pending: [Job] { state.withLock { $0.pending } }
    /// Jobs known (queued, running, finished and kept), oldest first.
    public var all: [Job] { state.withLock { Array($0.jobs.values) }.sorted { $0.id < $1.id } }
    public var averageJobSeconds: Double? {
        state.withLock { $0.recentSeconds.isEmpty ? nil : $0.recentSeconds.reduce(0, +) / Double($0.recentSeconds.count) }
    }

    /// Forgets a finished job now (a synchronous request got its answer); later look-ups say 410.
    func forget(_ job: Job) {
        state.withLock { state in
            guard state.jobs.removeValue(forKey: job.id) != nil else { return }
            Self.remember(expired: job.id, in: &state)
        }
        job.releaseResults()
    }

    /// Stops taking jobs and cancels every queued one; the running one is asked to stop at its
    /// next step. The worker's `next()` then returns nil.
    func shutDown() {
        let (cancelled, running, worker) = state.withLock { state -> ([Job], Job?, CheckedContinuation<Job?, Never>?) in
            state.accepting = false
            let cancelled = state.pending
            state.pending = []
            let worker = state.workerWaiting
            state.workerWaiting = nil
            return (cancelled, state.running, worker)
        }
        for job in cancelled { job.finish(.cancelled) }
        running?.state.withLock { $0.cancelRequested = true }
        worker?.resume(returning: nil)
        updateGauges()
    }

    // MARK: Housekeeping

    private func renumber() {
        let pending = self.pending
        for (index, job) in pending.enumerated() {
            job.update {
                $0.position = index + 1
                return .queued(position: index + 1)
            }
        }
        updateGauges()
    }

    /// Drops finished jobs older than `retention`.
    func sweep(now: Date = Date()) {
        let expired: [Job] = state.withLock { state in
            let old = state.jobs.values.filter { job in
                guard let finished = job.state.withLock({ $0.finished }) else { return false }
                return now.timeIntervalSince(finished) > retention
            }
            for job in old {
                state.jobs.removeValue(forKey: job.id)
                Self.remember(expired: job.id, in: &state)
            }
            return old
        }
        for job in expired { job.releaseResults() }
    }

    private static func remember(expired id: String, in state: inout State) {
        state.expired.append(id)
        state.expiredSet.insert(id)
        while state.expired.count > expiredMemory { state.expiredSet.remove(state.expired.removeFirst()) }
    }

    private func updateGauges() {
        let (pending, running) = state.withLock { ($0.pending.count, $0.running == nil ? 0 : 1) }
        metrics.queue(pending: pending, running: running)
    }
}
