import KilnGraph
import KilnModels

/// The device memory a model's weights take, component by component, as stored on the device.
/// A pipeline checks it against the backend's capacity when it opens a model, so a model that
/// cannot fit is refused before any weight is read, with the numbers that decide it.
struct WeightFootprint {
    /// Bytes per component (`text_encoder`, `unet`, ...), in the order given.
    var components: [(name: String, bytes: Int)] = []

    /// Adds every tensor of `source`, stored as `dtype` (f32 on the CPU backend).
    mutating func add(_ name: String, _ source: TensorSource, dtype: DType) {
        components.append((name, Self.bytes(of: source, dtype: dtype)))
    }

    static func bytes(of source: TensorSource, dtype: DType) -> Int {
        source.names.reduce(0) { $0 + (source.shape(of: $1)?.elementCount ?? 0) } * dtype.byteCount
    }

    var totalBytes: Int { components.reduce(0) { $0 + $1.bytes } }

    /// Throws `PipelineError.insufficientMemory` when the weights alone exceed what `backend`
    /// can hold; activations are checked graph by graph when each is prepared.
    func check(on backend: Backend) throws {
        let capacity = backend.memoryCapacityBytes
        guard capacity > 0, totalBytes > capacity else { return }
        let parts = components.map { "\($0.name) \(MemoryLimitError.format($0.bytes))" }.joined(separator: " + ")
        throw PipelineError.insufficientMemory(
            "the model's weights need \(MemoryLimitError.format(totalBytes)) (\(parts)) but \(backend.name) has \(MemoryLimitError.format(capacity)) of memory for weights and activations; use f16 weights or a larger device")
    }
}
