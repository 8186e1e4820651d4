import KilnGraph

/// A tensor source in which the named tensors have the two halves of their first dimension
/// exchanged (`[a; b] -> [b; a]`); every other tensor passes through.
public struct HalvesSwappedTensorSource: TensorSource {
    public let base: TensorSource
    public let swapped: Set<String>

    public init(base: TensorSource, swapped: Set<String>) {
        self.base = base
        self.swapped = swapped
    }

    public var names: [String] { base.names }
    public var origin: String { base.origin }
    public func shape(of name: String) -> Shape? { base.shape(of: name) }

    public func load(_ name: String) throws -> HostTensor {
        let tensor = try base.load(name)
        guard swapped.contains(name) else { return tensor }
        guard tensor.shape.rank >= 1, tensor.shape[0] % 2 == 0 else {
            throw WeightError.wrongShape(origin: origin, name: name, expected: [2 * (tensor.shape[0] / 2)], found: tensor.shape)
        }
        let half = tensor.scalars.count / 2
        return HostTensor(shape: tensor.shape, scalars: Array(tensor.scalars[half...] + tensor.scalars[..<half]), dtype: tensor.dtype)
    }
}
