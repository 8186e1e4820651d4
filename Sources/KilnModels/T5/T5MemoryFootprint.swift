import KilnGraph

/// What a T5 encoder needs on a device, from its graph alone (synthetic weights, nothing
/// loaded or run): weight bytes in the chosen storage type and the activation arena the
/// backends' memory planner reserves for one batch.
public struct T5MemoryFootprint: Sendable, Equatable {
    /// Parameters the graph binds (the token table, every block, the final norm).
    public let parameterCount: Int
    /// `parameterCount` in the weights' storage type.
    public let weightBytes: Int
    /// Peak of simultaneously live activations, as `MemoryPlan` places them.
    public let plannedActivationBytes: Int

    /// Builds `configuration`'s encoder for `batch` prompts of `length` tokens with weights stored as `dtype`.
    public init(configuration: T5Configuration, batch: Int, length: Int, dtype: DType) throws {
        let graph = Graph()
        let binder = WeightBinder(graph: graph, source: SyntheticTensors(), dtype: dtype)
        let model = T5EncoderModel(configuration: configuration)
        let ids = graph.input("ids", [batch, length], dtype: .int32)
        let buckets = graph.input("buckets", [length, length], dtype: .int32)
        let output = try model(ids: ids, relativePositionBuckets: buckets, weights: WeightScope(binder))
        let order = graph.dependencies(of: [output])
        parameterCount = order.reduce(0) { total, id in
            if case .constant = graph.nodes[id].operation { total + graph.nodes[id].shape.elementCount } else { total }
        }
        weightBytes = parameterCount * dtype.byteCount
        plannedActivationBytes = MemoryPlan(activationsOf: graph, outputs: [output]).arenaBytes
    }
}
