import Foundation
import Kiln
import ServiceLifecycle

/// The server's engine, apart from HTTP: the model catalog, the loaded model, the one queue and
/// its worker, the metrics. Runs as a service: its worker serves the queue until a graceful
/// shutdown (SIGTERM), which cancels queued jobs and stops the running one at its next step.
public final class GenerationService: Service, Sendable {
    public let configuration: ServerConfiguration
    public let catalog: ModelCatalog
    public let metrics = ServerMetrics()
    public let queue: JobQueue
    let slot: ModelSlot
    let worker: GenerationWorker
    /// A1111 options set by clients (`POST /sdapi/v1/options`) that Kiln keeps but does not act on.
    let storedOptions = Locked<[(String, JSONValue)]>([])
    let started = Date()

    /// Opens the device and loads `configuration.model`; every failure here stops the server
    /// before it listens, with the reason.
    public init(configuration: ServerConfiguration, device: BackendChoice, dtype: DType,
                opener: (@Sendable (ModelEntry, BackendChoice, DType) throws -> any DiffusionPipeline)? = nil) throws {
        self.configuration = configuration
        catalog = ModelCatalog(primary: configuration.model, directory: configuration.modelsDirectory)
        queue = JobQueue(capacity: configuration.maximumQueue, retention: configuration.resultRetention, metrics: metrics)
        let tinyAutoencoder = configuration.tinyAutoencoder
        slot = ModelSlot(device: device, dtype: dtype, catalog: catalog, opener: opener ?? { entry, device, dtype in
            try ModelSlot.open(entry, device: device, dtype: dtype, tinyAutoencoder: tinyAutoencoder)
        })
        worker = GenerationWorker(queue: queue, slot: slot, metrics: metrics)
        guard let model = configuration.model else {
            // The front end gives Kiln's default model when it was given none.
            throw PipelineError.invalidModel("no model: give --model PATH")
        }
        try slot.load(ModelEntry(url: model))
        if let summary = slot.summary { metrics.device(weightBytes: summary.weightBytes, device.backend) }
    }

    public var model: ModelSummary? { slot.summary }
    public var device: BackendChoice { slot.device }

    public func run() async throws {
        // The worker waits on the queue without polling, so both a graceful shutdown and a
        // cancellation (a service group tearing down) must shut the queue to end it.
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await worker.run()
            } onGracefulShutdown: {
                self.queue.shutDown()
            }
        } onCancel: {
            self.queue.shutDown()
        }
    }

    /// Checks every request of `plan` against the model now, when the worker is not using it
    /// (a pipeline is never called from two threads at once); the worker checks again before it
    /// runs each one, so a busy model only delays the answer.
    func precheck(_ plan: GenerationPlan) throws {
        // What holds for every family (sizes are multiples of the VAE's 8 at least, sane ranges)
        // is checked at once, busy or not, so such a request never takes a place in the queue.
        for request in plan.requests { try request.validate(sizeMultiple: 8) }
        guard plan.model == nil else { return }
        _ = try slot.tryUse { model in
            for request in plan.requests { try model.pipeline.check(request) }
        }
    }

    /// Queues `plan` (after the pre-check), waits for it, and cancels it if the waiting task is
    /// cancelled (the client went away). The job is forgotten once answered.
    func runToCompletion(_ plan: GenerationPlan) async throws -> Job {
        try precheck(plan)
        let job = try submit(.generate(plan))
        await withTaskCancellationHandler {
            await job.waitUntilFinished()
        } onCancel: {
            self.queue.cancel(job)
        }
        try Task.checkCancellation()
        return job
    }

    /// Queues `work`, counting refusals.
    func submit(_ work: JobWork) throws -> Job {
        do {
            return try queue.submit(work)
        } catch let error as APIError where error.status == .tooManyRequests {
            metrics.jobRejected()
            throw error
        }
    }
}
