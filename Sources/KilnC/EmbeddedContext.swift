import CKiln
import Foundation
import Kiln

/// What a `kiln_context *` points to: one pipeline on one device, its generations serialised,
/// its cancellation requests and its error messages. Nothing here is shared with any other
/// context. A generation that loses the device fails (KILN_FAILED), and the context opens the
/// device and the model again, so it stays usable.
final class EmbeddedContext: @unchecked Sendable {
    /// Opens the context's model on a device (again, after a lost device).
    typealias Opener = (BackendChoice) throws -> any DiffusionPipeline
    private let opener: Opener
    private var opened: (pipeline: any DiffusionPipeline, device: BackendChoice)
    var pipeline: any DiffusionPipeline { stateLock.withLock { opened.pipeline } }
    var device: BackendChoice { stateLock.withLock { opened.device } }
    /// `kiln_last_error(ctx)`, per thread.
    let messages = ThreadMessages()

    /// Held for a whole generation: one context runs one at a time.
    private let generationLock = NSLock()
    /// Guards the fields below; never held while working.
    private let stateLock = NSLock()
    /// How many times `kiln_cancel` was called. A generation stops once it differs from the value
    /// it saw when it began, so a cancel reaches every generation begun before it and none after.
    private var cancellations = 0
    /// The thread inside `generate`, to refuse a call from that thread's own progress callback
    /// (it would wait for itself forever).
    private var generatingThread: pthread_t?
    /// Where images are made (model name and SHA-256, device), computed by the first generation.
    private var origin: GenerationMetadata.Origin?

    init(device: BackendChoice, opener: @escaping Opener) throws {
        self.opener = opener
        opened = (try opener(device), device)
    }

    /// Asks every generation begun so far to stop at its next step boundary.
    func cancel() {
        stateLock.lock()
        cancellations += 1
        stateLock.unlock()
    }

    /// Runs `request` once the context is free, reporting each denoising step to `progress`.
    /// Throws `PipelineError.cancelled` when a `cancel()` came after this call began.
    func generate(_ request: kiln_request, progress: (GenerationProgress) -> Void) throws -> [GeneratedImage] {
        stateLock.lock()
        let ticket = cancellations
        let reentrant = generatingThread.map { pthread_equal($0, pthread_self()) != 0 } ?? false
        stateLock.unlock()
        if reentrant {
            throw EmbeddingError("called from inside a progress callback of the same context, which would wait for itself")
        }
        let isCancelled = { [self] in
            stateLock.lock()
            defer { stateLock.unlock() }
            return cancellations != ticket
        }

        generationLock.lock()
        defer { generationLock.unlock() }
        setGeneratingThread(pthread_self())
        defer { setGeneratingThread(nil) }
        if isCancelled() { throw PipelineError.cancelled }

        try reopenIfLost()
        let pipeline = self.pipeline
        let generation = try RequestTranslation.request(from: request, defaults: pipeline.defaults)
        try pipeline.check(generation)
        let result: GenerationResult
        do {
            result = try pipeline.generate(generation, progress: progress, isCancelled: isCancelled)
        } catch let error as PipelineError where error.requiresReopening {
            // Reopened now, so the next call does not pay for it; this call still fails.
            try? reopenIfLost()
            throw error
        }
        let origin = self.origin ?? GenerationMetadata.Origin(pipeline: pipeline, device: device)
        self.origin = origin
        return try (0..<result.imageCount).map { index in
            let metadata = GenerationMetadata(result: result, index: index, pipeline: pipeline, origin: origin)
            let image = try GeneratedImages.png(result, index: index, metadata: metadata)
            return GeneratedImage(rgb: image.rgb(), png: try image.pngData())
        }
    }

    /// Waits for the generation running now (if any) to finish; with `cancel()` first, what
    /// `kiln_close` does before the context goes.
    func waitUntilIdle() {
        generationLock.lock()
        generationLock.unlock()
    }

    /// With `generationLock` held: a lost device and the model on it opened again.
    private func reopenIfLost() throws {
        let lost = device
        guard lost.backend.deviceFailure != nil else { return }
        let device = try lost.reopened()
        let pipeline = try opener(device)
        stateLock.withLock { opened = (pipeline, device) }
        origin = nil
    }

    private func setGeneratingThread(_ thread: pthread_t?) {
        stateLock.lock()
        generatingThread = thread
        stateLock.unlock()
    }
}

extension EmbeddedContext {
    /// The handle C holds: the context retained once, released by `kiln_close`.
    var handle: OpaquePointer { OpaquePointer(Unmanaged.passRetained(self).toOpaque()) }

    /// The context behind a handle, or nil for NULL.
    static func from(_ handle: OpaquePointer?) -> EmbeddedContext? {
        handle.map { Unmanaged<EmbeddedContext>.fromOpaque(UnsafeRawPointer($0)).takeUnretainedValue() }
    }

    /// Gives up the handle's reference: the context is freed once nothing else holds it.
    static func release(_ handle: OpaquePointer) {
        Unmanaged<EmbeddedContext>.fromOpaque(UnsafeRawPointer(handle)).release()
    }
}

/// One finished image: its 8-bit RGB pixels and the PNG file `kiln generate` would write.
struct GeneratedImage {
    let rgb: PNGImage
    let png: Data
}
