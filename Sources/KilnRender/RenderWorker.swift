import Foundation
import Kiln

/// One device's share of a render: its backend, and the model of the jobs it is on, kept
/// resident until a job needs another (jobs come grouped by model, so each model opens once).
final class Worker: @unchecked Sendable {
    let index: Int
    private(set) var device: BackendChoice?
    private var model: (url: URL, pipeline: any DiffusionPipeline)?

    init(index: Int) {
        self.index = index
    }

    func openDevice(kind: String, selector: String?) throws {
        if device == nil { device = try BackendChoice.open(kind, device: selector) }
    }

    /// The pipeline of `job`'s model, opened when it differs from the last job's.
    func pipeline(for job: RenderJob, runner: RenderRunner) throws -> any DiffusionPipeline {
        let url = try runner.modelURL(for: job)
        let device = try workingDevice()
        if let model, model.url == url { return model.pipeline }
        model = nil
        let pipeline: any DiffusionPipeline
        do {
            let config = url.isExistingFolder ? nil : runner.options.configFolder
            pipeline = try Pipelines.open(url, config: config, backend: device.backend, dtype: device.storage(runner.options.dtype))
        } catch {
            throw ManifestError(file: runner.manifest.url.path, line: job.line, field: job.settings.model == nil ? nil : "model",
                                message: "\(error)")
        }
        model = (url, pipeline)
        return pipeline
    }

    /// The worker's device, opened again when it was lost (the model on it is dropped first). A
    /// reopening that fails is tried again by the next job.
    private func workingDevice() throws -> BackendChoice {
        guard let device else { throw RenderError.output("worker \(index) has no device") }
        guard device.backend.deviceFailure != nil else { return device }
        model = nil
        let reopened = try device.reopened()
        self.device = reopened
        return reopened
    }

    /// Runs `job` with its retries, recording every event.
    func render(
        _ job: RenderJob, runner: RenderRunner, ledger: RenderLedger, events: @Sendable (RenderRunner.Event) -> Void,
        stopRequested: @escaping @Sendable () -> Bool, outcome: Outcome
    ) {
        let shard = runner.options.shard
        for attempt in 1...(runner.options.retries + 1) {
            let start = Date()
            do {
                try ledger.append(LedgerRecord(event: .started, id: job.id, shard: shard, attempt: attempt))
                events(.started(job, attempt: attempt, worker: index))
                let outputs = try renderOnce(job, runner: runner, events: events, stopRequested: stopRequested)
                let seconds = Date().timeIntervalSince(start)
                try ledger.append(LedgerRecord(event: .done, id: job.id, shard: shard, attempt: attempt, outputs: outputs, seconds: seconds))
                outcome.recordDone(images: outputs.count)
                events(.done(job, outputs: outputs, seconds: seconds, memory: MemoryUse.current(device?.backend)))
                return
            } catch PipelineError.cancelled {
                try? ledger.append(LedgerRecord(event: .interrupted, id: job.id, shard: shard, attempt: attempt))
                outcome.recordInterrupted()
                events(.interrupted(job))
                return
            } catch {
                let retryable = Self.isRetryable(error)
                let willRetry = retryable && attempt <= runner.options.retries && !stopRequested()
                try? ledger.append(LedgerRecord(event: .failed, id: job.id, shard: shard, attempt: attempt, error: "\(error)", retryable: retryable))
                events(.failed(job, error: "\(error)", retryable: retryable, willRetry: willRetry))
                // A failure while working may have left the device or the model unusable: the
                // next attempt opens the model again.
                model = nil
                if !willRetry {
                    outcome.recordFailed()
                    return
                }
            }
        }
    }

    /// Bad input (a job its model cannot do, an unreadable image) fails the same way every
    /// time; everything else (the device, the disk) may pass.
    static func isRetryable(_ error: Error) -> Bool {
        switch error {
        case let error as PipelineError: !error.isBadInput
        case is ManifestError: false
        default: true
        }
    }

    /// Generates `job` and writes its PNGs; the outputs and their hashes.
    private func renderOnce(
        _ job: RenderJob, runner: RenderRunner, events: @Sendable (RenderRunner.Event) -> Void, stopRequested: @escaping @Sendable () -> Bool
    ) throws -> [LedgerRecord.Output] {
        let pipeline = try pipeline(for: job, runner: runner)
        guard let device else { throw RenderError.output("worker \(index) has no device") }
        let request = try JobRequests.request(for: job, defaults: pipeline.defaults, manifest: runner.manifest.url)
        let result = try pipeline.generate(request, progress: { events(.progress(job, $0)) }, isCancelled: stopRequested)
        let origin = GenerationMetadata.Origin(pipeline: pipeline, device: device)
        var outputs: [LedgerRecord.Output] = []
        for (index, name) in job.outputNames.enumerated() {
            let metadata = GenerationMetadata(result: result, index: index, pipeline: pipeline, origin: origin)
            let data = try GeneratedImages.pngData(result, index: index, metadata: metadata)
            do {
                try AtomicFile.write(data, to: runner.options.outputFolder.appendingPathComponent(name))
            } catch {
                throw RenderError.output("\(error)")
            }
            outputs.append(LedgerRecord.Output(file: name, sha256: SHA256.hex(data)))
        }
        return outputs
    }
}
