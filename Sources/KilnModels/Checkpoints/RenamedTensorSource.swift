import KilnGraph

/// A checkpoint seen under other key names: each presented key reads one stored tensor, possibly
/// reshaped, transposed or cut to a block of rows (a fused q/k/v projection split in three).
public struct RenamedTensorSource: TensorSource {
    /// How a presented tensor is derived from the stored one.
    public enum Transform: Sendable, Equatable {
        case identity
        /// Rows `start..<start+count` of the first dimension.
        case rows(start: Int, count: Int)
        /// `[A, B] -> [B, A]`.
        case transpose
        /// Drops trailing 1-sized dims (a 1x1 convolution kernel read as a linear weight).
        case squeeze
    }

    public let base: TensorSource
    public let origin: String
    /// Presented key -> (stored key, transform).
    public let mapping: [String: (stored: String, transform: Transform)]

    public init(base: TensorSource, mapping: [String: (stored: String, transform: Transform)], origin: String) {
        self.base = base
        self.mapping = mapping
        self.origin = origin
    }

    public var names: [String] { mapping.keys.sorted() }

    public func shape(of name: String) -> Shape? {
        guard let (stored, transform) = mapping[name], let shape = base.shape(of: stored) else { return nil }
        return Self.apply(transform, to: shape)
    }

    public func load(_ name: String) throws -> HostTensor {
        guard let (stored, transform) = mapping[name] else { throw WeightError.missing(origin: origin, name: name, expected: nil) }
        let tensor = try base.load(stored)
        guard let shape = Self.apply(transform, to: tensor.shape) else {
            throw WeightError.wrongShape(origin: origin, name: stored, expected: tensor.shape, found: tensor.shape)
        }
        switch transform {
        case .identity, .squeeze:
            return HostTensor(shape: shape, scalars: tensor.scalars, dtype: tensor.dtype)
        case .rows(let start, let count):
            let width = tensor.shape.count(from: 1)
            return HostTensor(shape: shape, scalars: Array(tensor.scalars[(start * width)..<((start + count) * width)]), dtype: tensor.dtype)
        case .transpose:
            let (rows, columns) = (tensor.shape[0], tensor.shape[1])
            var values = [Float](repeating: 0, count: tensor.scalars.count)
            for r in 0..<rows { for c in 0..<columns { values[c * rows + r] = tensor.scalars[r * columns + c] } }
            return HostTensor(shape: shape, scalars: values, dtype: tensor.dtype)
        }
    }

    /// Stored keys no presented key reads.
    public var unusedStoredNames: [String] {
        let used = Set(mapping.values.map(\.stored))
        return base.names.filter { !used.contains($0) }
    }

    static func apply(_ transform: Transform, to shape: Shape) -> Shape? {
        switch transform {
        case .identity: return shape
        case .rows(let start, let count):
            guard shape.rank >= 1, start + count <= shape[0] else { return nil }
            return Shape([count] + shape.dimensions.dropFirst())
        case .transpose:
            guard shape.rank == 2 else { return nil }
            return [shape[1], shape[0]]
        case .squeeze:
            var dimensions = shape.dimensions
            while dimensions.count > 2, dimensions.last == 1 { dimensions.removeLast() }
            return Shape(dimensions)
        }
    }
}
