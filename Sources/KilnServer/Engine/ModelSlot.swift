import Foundation
import Kiln

/// The model a worker has loaded: its pipeline and how its images are labelled.
final class LoadedModel: @unchecked Sendable {
    // Unchecked: the pipeline is a class that is not Sendable; it is only ever used while the
    // owning `ModelSlot`'s lock is held, so no two threads call it at once.
    let entry: ModelEntry
    let pipeline: any DiffusionPipeline
    let origin: GenerationMetadata.Origin

    init(entry: ModelEntry, pipeline: any DiffusionPipeline, origin: GenerationMetadata.Origin) {
        self.entry = entry
        self.pipeline = pipeline
        self.origin = origin
    }
}

/// What handlers may read about the loaded model at any time, without waiting for the worker.
public struct ModelSummary: Sendable {
    public let entry: ModelEntry
    public let family: ModelFamily
    public let defaults: GenerationDefaults
    public let weightBytes: Int
    public let sha256: String?
    public let dtype: String
}

/// One device's model: the pipeline behind a lock, held by the worker for a whole generation
/// and by a handler only to check a request when the worker is idle (`tryUse`). Switching
/// checks memory first, frees the old model, loads the new one, and reloads the old one if the
/// new one fails, so the server always has a model. A lost device is opened again, with the
/// model, before the next use.
final class ModelSlot: @unchecked Sendable {
    // Unchecked: `model` is only read or written with `lock` held.
    private let lock = NSLock()
    private var model: LoadedModel?
    private let summaryBox = Locked<ModelSummary?>(nil)
    private let deviceBox: Locked<BackendChoice>
    let dtype: DType
    let catalog: ModelCatalog
    /// Opens a model; replaceable in tests.
    private let opener: @Sendable (ModelEntry, BackendChoice, DType) throws -> any DiffusionPipeline

    init(device: BackendChoice, dtype: DType, catalog: ModelCatalog,
         opener: @escaping @Sendable (ModelEntry, BackendChoice, DType) throws -> any DiffusionPipeline = { try ModelSlot.open($0, device: $1, dtype: $2) }) {
        deviceBox = Locked(device)
        self.dtype = dtype
        self.catalog = catalog
        self.opener = opener
    }

    /// `tinyAutoencoder` (TAESD) makes the progress previews full-size decodes.
    static func open(_ entry: ModelEntry, device: BackendChoice, dtype: DType, tinyAutoencoder: URL? = nil) throws -> any DiffusionPipeline {
        try Pipelines.open(Pipelines.Source(url: entry.url, tinyAutoencoder: tinyAutoencoder), backend: device.backend, dtype: device.storage(dtype))
    }

    var summary: ModelSummary? { summaryBox.current }

    var device: BackendChoice { deviceBox.current }

    /// Runs `body` with the model, waiting while another holder has it.
    func use<Result>(_ body: (LoadedModel) throws -> Result) throws -> Result {
        lock.lock()
        defer { lock.unlock() }
        try recoverIfLost()
        guard let model else { throw APIError(.serviceUnavailable, field: nil, "no model is loaded") }
        return try body(model)
    }

    /// Runs `body` with the model only if no one holds it now; nil if busy.
    func tryUse<Result>(_ body: (LoadedModel) throws -> Result) throws -> Result? {
        guard lock.try() else { return nil }
        defer { lock.unlock() }
        guard let model else { return nil }
        return try body(model)
    }

    /// Makes `entry` the loaded model (nothing to do if it already is). Refuses with
    /// `PipelineError.insufficientMemory` before freeing anything when its weight files exceed
    /// the device's memory.
    func load(_ entry: ModelEntry) throws {
        lock.lock()
        defer { lock.unlock() }
        if model?.entry == entry { return }
        let capacity = device.backend.memoryCapacityBytes
        // Files stored f32 and loaded as f16 need half their size: the file size is an upper bound.
        let needed = entry.weightFileBytes / (dtype == .float16 && device.kind == "vulkan" ? 2 : 1)
        if capacity > 0, needed > capacity {
            throw PipelineError.insufficientMemory(
                "\(entry.title) needs about \(needed / 1_048_576) MiB of weights; the device has \(capacity / 1_048_576) MiB")
        }
        let previous = model
        // The old pipeline (and its resident weights) is released before the new one loads, so
        // the two never need the device's memory at once.
        model = nil
        summaryBox.withLock { $0 = nil }
        do {
            try install(entry)
        } catch {
            if let previous { try? install(previous.entry) }
            throw error
        }
    }

    /// After a lost device: opens the device again and reloads the model on it (now, so that the
    /// next request does not wait for it).
    func recover() throws {
        lock.lock()
        defer { lock.unlock() }
        try recoverIfLost()
    }

    /// With `lock` held.
    private func recoverIfLost() throws {
        let lost = device
        guard lost.backend.deviceFailure != nil else { return }
        let entry = model?.entry ?? summaryBox.current?.entry
        // Everything on the lost device goes before the new one is opened.
        model = nil
        let reopened = try lost.reopened()
        deviceBox.withLock { $0 = reopened }
        if let entry { try install(entry) }
    }

    private func install(_ entry: ModelEntry) throws {
        let pipeline = try opener(entry, device, dtype)
        let origin = GenerationMetadata.Origin(pipeline: pipeline, device: device)
        if let sha256 = origin.modelSHA256 { catalog.recordHash(sha256, for: entry) }
        model = LoadedModel(entry: entry, pipeline: pipeline, origin: origin)
        let summary = ModelSummary(
            entry: entry, family: pipeline.family, defaults: pipeline.defaults, weightBytes: pipeline.weightBytes,
            sha256: origin.modelSHA256, dtype: pipeline.dtype.shortName)
        summaryBox.withLock { $0 = summary }
    }
}
