import Foundation
import Kiln
import Prometheus

/// The server's Prometheus metrics: queue depth, jobs by status, step, job and request latency
/// histograms, device and process memory. `text()` is what `GET /metrics` answers.
public final class ServerMetrics: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let queueDepth: Gauge
    private let runningJobs: Gauge
    private let submitted: Counter
    private let rejected: Counter
    private let finishedByStatus: [JobStatus: Counter]
    private let stepSeconds: DurationHistogram
    private let jobSeconds: DurationHistogram
    private let imagesMade: Counter
    private let weightBytes: Gauge
    private let deviceCapacityBytes: Gauge
    private let residentBytes: Gauge
    private let deviceReservedBytes: Gauge
    private let requestSeconds = Locked<[String: DurationHistogram]>([:])

    private static let stepBuckets: [Duration] = [0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100].map { .milliseconds(Int64($0 * 1000)) }
    private static let requestBuckets: [Duration] = [0.001, 0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300].map { .microseconds(Int64($0 * 1_000_000)) }

    public init() {
        queueDepth = registry.makeGauge(descriptor: .init(namespace: "kiln", metricName: "queue", unitName: "depth", helpText: "Jobs waiting in the queue"))
        runningJobs = registry.makeGauge(descriptor: .init(namespace: "kiln", metricName: "jobs", unitName: "running", helpText: "Jobs running now"))
        submitted = registry.makeCounter(descriptor: .init(namespace: "kiln", metricName: "jobs_submitted", unitName: "total", helpText: "Jobs accepted into the queue"))
        rejected = registry.makeCounter(descriptor: .init(namespace: "kiln", metricName: "jobs_rejected", unitName: "total", helpText: "Jobs refused because the queue was full"))
        var finished: [JobStatus: Counter] = [:]
        for status in [JobStatus.done, .failed, .cancelled] {
            finished[status] = registry.makeCounter(
                descriptor: .init(namespace: "kiln", metricName: "jobs_finished", unitName: "total", helpText: "Jobs finished, by status"),
                labels: [("status", status.rawValue)])
        }
        finishedByStatus = finished
        stepSeconds = registry.makeDurationHistogram(
            descriptor: .init(namespace: "kiln", metricName: "step_duration", unitName: "seconds", helpText: "Seconds per sampling step"),
            buckets: Self.stepBuckets)
        jobSeconds = registry.makeDurationHistogram(
            descriptor: .init(namespace: "kiln", metricName: "job_duration", unitName: "seconds", helpText: "Seconds a job ran"),
            buckets: Self.requestBuckets)
        imagesMade = registry.makeCounter(descriptor: .init(namespace: "kiln", metricName: "images", unitName: "total", helpText: "Images generated"))
        weightBytes = registry.makeGauge(descriptor: .init(namespace: "kiln", metricName: "device_weight", unitName: "bytes", helpText: "Bytes of model weights resident on the device"))
        deviceCapacityBytes = registry.makeGauge(descriptor: .init(namespace: "kiln", metricName: "device_memory_capacity", unitName: "bytes", helpText: "Device memory Kiln may use"))
        deviceReservedBytes = registry.makeGauge(descriptor: .init(namespace: "kiln", metricName: "device_memory_reserved", unitName: "bytes", helpText: "Device memory Kiln holds from the driver (weights, activations, staging)"))
        residentBytes = registry.makeGauge(descriptor: .init(namespace: "kiln", metricName: "process_resident_memory", unitName: "bytes", helpText: "Resident memory of the server process"))
    }

    func jobSubmitted() { submitted.increment() }
    func jobRejected() { rejected.increment() }

    func jobFinished(_ status: JobStatus, seconds: Double) {
        finishedByStatus[status]?.increment()
        if seconds > 0 { jobSeconds.record(Self.duration(seconds)) }
    }

    func step(seconds: Double) { stepSeconds.record(Self.duration(seconds)) }
    func images(_ count: Int) { imagesMade.increment(by: Int64(count)) }

    func queue(pending: Int, running: Int) {
        queueDepth.set(Double(pending))
        runningJobs.set(Double(running))
    }

    func device(weightBytes weights: Int, _ backend: Backend) {
        weightBytes.set(Double(weights))
        deviceCapacityBytes.set(Double(backend.memoryCapacityBytes))
        deviceReservedBytes.set(Double(MemoryUse.current(backend).deviceBytes))
    }

    /// Records one HTTP request's latency under its route group (`sdapi`, `kiln`, `v1`, ...).
    func request(route: String, seconds: Double) {
        let histogram = requestSeconds.withLock { histograms in
            if let histogram = histograms[route] { return histogram }
            let histogram = registry.makeDurationHistogram(
                descriptor: .init(namespace: "kiln", metricName: "http_request_duration", unitName: "seconds", helpText: "Seconds to answer an HTTP request"),
                labels: [("route", route)], buckets: Self.requestBuckets)
            histograms[route] = histogram
            return histogram
        }
        histogram.record(Self.duration(seconds))
    }

    /// The exposition text, with process memory read now.
    public func text() -> String {
        residentBytes.set(Double(MemoryUse.residentSetBytes()))
        return registry.emitToString()
    }

    private static func duration(_ seconds: Double) -> Duration {
        .nanoseconds(Int64(max(seconds, 0) * 1e9))
    }
}

/// Memory of the machine, from /proc (Linux); nil where unavailable.
enum ProcessMemory {
    /// `MemTotal` and `MemAvailable` in bytes.
    static func system() -> (total: Int, available: Int)? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        var values: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == ":" })
            if parts.count >= 2, let kilobytes = Int(parts[1]) { values[String(parts[0])] = kilobytes * 1024 }
        }
        guard let total = values["MemTotal"], let available = values["MemAvailable"] else { return nil }
        return (total, available)
    }
}
