import Foundation
import Kiln

/// Runs the queue's jobs one at a time on one device: the only caller of the model's
/// pipeline while a job runs. Each job runs on a dispatch queue of its own (the pipeline works
/// synchronously for seconds to minutes, which must not hold up Swift's cooperative threads that
/// serve HTTP).
final class GenerationWorker: Sendable {
    let queue: JobQueue
    let slot: ModelSlot
    let metrics: ServerMetrics
    private let thread = DispatchQueue(label: "kiln.serve.worker", qos: .userInitiated)

    init(queue: JobQueue, slot: ModelSlot, metrics: ServerMetrics) {
        self.queue = queue
        self.slot = slot
        self.metrics = metrics
    }

    /// Serves jobs until the queue shuts down.
    func run() async {
        while let job = await queue.next() {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                thread.async {
                    self.execute(job)
                    continuation.resume()
                }
            }
        }
    }

    /// Runs `job` to its end; every failure is the job's own (the worker goes on).
    func execute(_ job: Job) {
        let start = Date()
        job.markRunning()
        switch job.work {
        case .loadModel(let entry):
            do {
                try slot.load(entry)
                job.finish(.done)
            } catch {
                job.finish(.failed, error: Self.apiError(error))
            }
        case .generate(let plan):
            generate(plan, job: job)
        }
        if let summary = slot.summary { metrics.device(weightBytes: summary.weightBytes, slot.device.backend) }
        queue.finished(job, seconds: Date().timeIntervalSince(start))
    }

    private func generate(_ plan: GenerationPlan, job: Job) {
        let previous = slot.summary?.entry
        if let wanted = plan.model, wanted != previous {
            do {
                try slot.load(wanted)
            } catch {
                job.finish(.failed, error: Self.apiError(error))
                return
            }
        }
        defer {
            if plan.restoresModel, let previous, plan.model != nil, previous != plan.model { try? slot.load(previous) }
        }
        for (iteration, request) in plan.requests.enumerated() {
            if job.state.withLock({ $0.cancelRequested }) { break }
            job.beginIteration(iteration)
            let started = Date()
            do {
                let images = try slot.use { model -> [JobImage] in
                    try model.pipeline.check(request)
                    let result = try model.pipeline.generate(
                        request,
                        progress: { progress in
                            job.report(progress, iteration: iteration)
                            if progress.stage == .denoising { self.metrics.step(seconds: progress.lastSeconds) }
                        },
                        isCancelled: { job.shouldStop(iteration: iteration) })
                    return try (0..<result.imageCount).map { index in
                        // The same metadata and bytes `kiln generate` writes for this request.
                        let metadata = GenerationMetadata(result: result, index: index, pipeline: model.pipeline, origin: model.origin)
                        return JobImage(png: try GeneratedImages.pngData(result, index: index, metadata: metadata), metadata: metadata)
                    }
                }
                metrics.images(images.count)
                job.add(images, secondsPerIteration: Date().timeIntervalSince(started))
            } catch PipelineError.cancelled {
                let skipped = job.state.withLock { $0.skippedIteration == iteration && !$0.cancelRequested }
                if skipped { continue }
                break
            } catch {
                job.finish(.failed, error: Self.apiError(error))
                if let error = error as? PipelineError, error.requiresReopening { try? slot.recover() }
                return
            }
        }
        let (cancelled, interrupted) = job.state.withLock { ($0.cancelRequested, $0.interrupted) }
        // An A1111 interrupt ends the job with the images made so far, as A1111 answers.
        job.finish(cancelled && !interrupted ? .cancelled : .done)
    }

    static func apiError(_ error: Error) -> APIError {
        switch error {
        case let error as APIError: error
        case let error as PipelineError: APIError.from(error)
        default: APIError(.internalServerError, field: nil, "\(error)")
        }
    }
}
