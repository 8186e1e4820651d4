import Foundation
import Kiln

/// Where a job is in its life.
public enum JobStatus: String, Sendable, CaseIterable {
    case queued, running, done, failed, cancelled

    var isFinished: Bool { self == .done || self == .failed || self == .cancelled }
}

/// What a job does: generations (A1111's `n_iter` runs one request after the other), or a
/// model switch, which waits its turn in the same queue so no generation sees a half-loaded model.
public enum JobWork: Sendable {
    case generate(GenerationPlan)
    case loadModel(ModelEntry)
}

/// The generations of one job.
public struct GenerationPlan: Sendable {
    /// Run in order; each one's images are appended to the job's.
    public var requests: [GenerationRequest]
    /// A1111's `override_settings.sd_model_checkpoint`: the model to load first, if not loaded.
    public var model: ModelEntry?
    /// Whether to load the previous model back afterwards (`override_settings_restore_afterwards`).
    public var restoresModel: Bool
    /// Which API made the job (`a1111`, `openai`, `jobs`): for the queue listing and metrics.
    public var origin: String

    public init(requests: [GenerationRequest], model: ModelEntry? = nil, restoresModel: Bool = false, origin: String) {
        self.requests = requests
        self.model = model
        self.restoresModel = restoresModel
        self.origin = origin
    }
}

/// One finished image: its PNG (with the `parameters` chunk) and what made it.
public struct JobImage: Sendable {
    public let png: Data
    public let metadata: GenerationMetadata
    /// The A1111 `parameters` text of the image (its infotext).
    public var infotext: String { metadata.a1111Parameters }
}

/// What a job's subscribers (the events stream, the page) are told.
public enum JobEvent: Sendable {
    case queued(position: Int)
    case started
    /// Step `step` of `steps` in generation `iteration` of `iterations` (0-based iteration).
    case progress(iteration: Int, iterations: Int, step: Int, steps: Int)
    case done
    case failed(APIError)
    case cancelled
}

/// A queued, running or finished job. Its state is shared by the HTTP handlers and the worker,
/// behind a lock; waiters and event subscribers are told of every change.
public final class Job: Sendable {
    public let id: String
    public let work: JobWork
    public let created = Date()

    struct State {
        var status = JobStatus.queued
        var position: Int?
        var iteration = 0
        var step = 0
        var steps = 0
        var stage: GenerationProgress.Stage?
        var secondsLeftInIteration: Double = 0
        var secondsPerIteration: Double?
        var latents: LatentSnapshot?
        var preview: (step: Int, iteration: Int, png: Data)?
        /// A client asked for a preview newer than `preview`; the next step decodes one.
        var previewWanted = false
        var images: [JobImage] = []
        var error: APIError?
        /// Cancelled by the client or by A1111's `interrupt` (then the images so far are kept).
        var cancelRequested = false
        var interrupted = false
        /// A1111's `skip`: the generation with this index stops; the job goes on with the next.
        var skippedIteration: Int?
        var started: Date?
        var finished: Date?
        var waiters: [CheckedContinuation<Void, Never>] = []
        var subscribers: [UUID: AsyncStream<JobEvent>.Continuation] = [:]
    }

    let state = Locked(State())

    init(id: String, work: JobWork) {
        self.id = id
        self.work = work
    }

    public var status: JobStatus { state.current.status }

    public var iterationCount: Int {
        if case .generate(let plan) = work { return plan.requests.count }
        return 1
    }

    /// The first request, for listings (prompt, size).
    public var firstRequest: GenerationRequest? {
        if case .generate(let plan) = work { return plan.requests.first }
        return nil
    }

    var origin: String {
        switch work {
        case .generate(let plan): plan.origin
        case .loadModel: "model"
        }
    }

    // MARK: Changes (by the queue and the worker)

    /// Applies `change` and tells subscribers the event it returns (outside the lock: a
    /// subscriber's stream may end and call back into the job).
    func update(_ change: (inout State) -> JobEvent?) {
        let (event, subscribers, waiters, finished) = state.withLock {
            state -> (JobEvent?, [AsyncStream<JobEvent>.Continuation], [CheckedContinuation<Void, Never>], Bool) in
            let event = change(&state)
            let finished = state.status.isFinished
            let waiters = finished ? state.waiters : []
            if finished { state.waiters = [] }
            let subscribers = Array(state.subscribers.values)
            if finished { state.subscribers = [:] }
            return (event, subscribers, waiters, finished)
        }
        if let event { for subscriber in subscribers { subscriber.yield(event) } }
        if finished { for subscriber in subscribers { subscriber.finish() } }
        for waiter in waiters { waiter.resume() }
    }

    func markRunning() {
        update {
            $0.status = .running
            $0.position = nil
            $0.started = Date()
            return .started
        }
    }

    func report(_ progress: GenerationProgress, iteration: Int) {
        let iterations = iterationCount
        update { state in
            state.stage = progress.stage
            state.iteration = iteration
            guard progress.stage == .denoising else { return nil }
            state.step = progress.step
            state.steps = progress.stepCount
            state.secondsLeftInIteration = progress.estimatedSecondsLeft
            if let latents = progress.latents { state.latents = latents }
            return .progress(iteration: iteration, iterations: iterations, step: progress.step, steps: progress.stepCount)
        }
        // Previews are decoded here, on the thread that runs the pipeline: a tiny autoencoder
        // uses the device, which request handlers must not share with a running generation.
        guard progress.stage == .denoising, let latents = progress.latents, state.withLock({ $0.previewWanted }),
              let decoded = try? latents.decodedPreview(), let png = try? GeneratedImages.pngData(decoded.preview, scale: decoded.scale)
        else { return }
        state.withLock {
            $0.previewWanted = false
            $0.preview = (progress.step, iteration, png)
        }
    }

    func beginIteration(_ iteration: Int) {
        update {
            $0.iteration = iteration
            $0.step = 0
            $0.latents = nil
            return nil
        }
    }

    func add(_ images: [JobImage], secondsPerIteration: Double) {
        update {
            $0.images += images
            $0.secondsPerIteration = secondsPerIteration
            return nil
        }
    }

    func finish(_ status: JobStatus, error: APIError? = nil) {
        let event: JobEvent = switch status {
        case .failed: .failed(error ?? APIError(.internalServerError, field: nil, "failed"))
        case .cancelled: .cancelled
        default: .done
        }
        update {
            $0.status = status
            $0.error = error
            $0.position = nil
            $0.finished = Date()
            $0.latents = nil
            $0.preview = nil
            return event
        }
    }

    /// Whether the worker should stop generation `iteration` at its next step.
    func shouldStop(iteration: Int) -> Bool {
        state.withLock { $0.cancelRequested || $0.skippedIteration == iteration }
    }

    /// Drops the images of a finished job whose results were delivered, so memory stays flat.
    func releaseResults() {
        state.withLock { $0.images = [] }
    }

    // MARK: Reading (by handlers)

    /// Waits until the job is done, failed or cancelled.
    public func waitUntilFinished() async {
        await withCheckedContinuation { continuation in
            let finishedAlready = state.withLock { state -> Bool in
                if state.status.isFinished { return true }
                state.waiters.append(continuation)
                return false
            }
            if finishedAlready { continuation.resume() }
        }
    }

    /// A stream of this job's events, starting with where it is now; it ends when the job does.
    public func events() -> AsyncStream<JobEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: JobEvent.self, bufferingPolicy: .bufferingNewest(32))
        let key = UUID()
        let current = state.withLock { state -> State in
            if !state.status.isFinished { state.subscribers[key] = continuation }
            return state
        }
        switch current.status {
        case .queued: continuation.yield(.queued(position: current.position ?? 0))
        case .running:
            continuation.yield(.started)
            if current.steps > 0 {
                continuation.yield(.progress(iteration: current.iteration, iterations: iterationCount, step: current.step, steps: current.steps))
            }
        case .done: continuation.yield(.done)
        case .failed: continuation.yield(.failed(current.error ?? APIError(.internalServerError, field: nil, "failed")))
        case .cancelled: continuation.yield(.cancelled)
        }
        if current.status.isFinished {
            continuation.finish()
        } else {
            continuation.onTermination = { [weak self] _ in
                self?.state.withLock { _ = $0.subscribers.removeValue(forKey: key) }
            }
        }
        return stream
    }

    /// The latest preview as a PNG at the image's size: the pipeline's tiny autoencoder's decode
    /// (TAESD) when it has one, else the latent-to-RGB approximation enlarged 8 times. Asking
    /// makes the next step decode a fresh one; until then the last one (of this generation)
    /// answers, or the approximation, which is computed here on the host.
    public func previewPNG() -> Data? {
        let (latents, step, iteration, cached) = state.withLock { state in
            if state.preview.map({ $0.step != state.step || $0.iteration != state.iteration }) ?? true { state.previewWanted = true }
            return (state.latents, state.step, state.iteration, state.preview)
        }
        if let cached, cached.iteration == iteration, cached.step <= step { return cached.png }
        guard let latents, let preview = latents.preview(), let png = try? GeneratedImages.pngData(preview, scale: 8) else { return nil }
        return png
    }
}
