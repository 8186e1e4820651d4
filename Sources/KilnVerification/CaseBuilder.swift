import KilnGraph

/// Builds cases: each creates random inputs of the case's dtype, rounded to what that dtype
/// stores, so the reference and the device see identical values.
struct CaseBuilder {
    let graph: Graph
    let dtype: DType
    var random: SeededRandom
    var inputs: [String: HostTensor] = [:]

    /// A random input stored as the case's dtype, or as `storage` where an op fixes the type.
    /// `replacing` puts chosen values at chosen flat indices (NaN, +-inf, a finite value past f16's
    /// range): like every value they are rounded to storage, so 70000 stored as f16 is +inf.
    mutating func input(
        _ name: String, _ shape: Shape, scale: Float = 1, offset: Float = 0, storage: DType? = nil, replacing special: [Int: Float] = [:]
    ) -> Tensor {
        var values = random.normals(shape.elementCount, scale: scale).map { $0 + offset }
        for (index, value) in special {
            precondition(values.indices.contains(index), "\(name): index \(index) outside \(shape)")
            values[index] = value
        }
        inputs[name] = HostTensor(shape: shape, scalars: values, dtype: storage ?? dtype).roundedToStorage()
        return graph.input(name, shape, dtype: storage ?? dtype)
    }

    mutating func ids(_ name: String, _ shape: Shape, below limit: Int) -> Tensor {
        inputs[name] = HostTensor(shape: shape, integers: (0..<shape.elementCount).map { _ in Int32(random.next() % UInt64(limit)) })
        return graph.input(name, shape, dtype: .int32)
    }
}
