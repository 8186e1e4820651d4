import KilnGraph

/// Turns checkpoint tensors into graph constants while a model builds its graph, checking each
/// shape against what the model's configuration implies. Afterwards `constants()` loads exactly
/// the tensors the graph uses, and `unusedNames` tells what the checkpoint held that nothing read.
public final class WeightBinder: @unchecked Sendable {
    public let graph: Graph
    public let source: TensorSource
    /// Storage type of the weights on the device (f16 by default on GPUs, f32 on the CPU).
    public let dtype: DType
    /// Where backends keep the device copies for every graph bound to the same weights; nil
    /// gives each prepared graph its own copy.
    public let residency: ResidentWeights?
    private var bound: [String: Tensor] = [:]

    public init(graph: Graph, source: TensorSource, dtype: DType, residency: ResidentWeights? = nil) {
        self.graph = graph
        self.source = source
        self.dtype = dtype
        self.residency = residency
    }

    /// The constant for checkpoint key `name`, which must have shape `expected`.
    public func weight(_ name: String, _ expected: Shape) throws -> Tensor {
        if let existing = bound[name] { return existing }
        guard let found = source.shape(of: name, expected: expected) else {
            throw WeightError.missing(origin: source.origin, name: name, expected: expected)
        }
        guard found == expected else {
            throw WeightError.wrongShape(origin: source.origin, name: name, expected: expected, found: found)
        }
        let tensor = graph.constant(name, expected, dtype: dtype)
        bound[name] = tensor
        return tensor
    }

    /// True if the checkpoint has `name` (for optional tensors such as biases).
    public func has(_ name: String) -> Bool { source.shape(of: name) != nil }

    /// Every bound weight, keyed as the graph's constants are, read from the source only when a
    /// backend asks for it (see `ConstantValues`).
    public func constants() -> BoundWeights {
        BoundWeights(source: source, shapes: bound.mapValues(\.shape), dtype: dtype, residency: residency)
    }

    /// Keys in the checkpoint that no bound weight used, among those starting with `prefix`.
    public func unusedNames(prefix: String = "") -> [String] {
        source.names.filter { $0.hasPrefix(prefix) && bound[$0] == nil }
    }
}

/// A path inside a checkpoint's key space, e.g. `text_model.encoder.layers.3.`: model code
/// builds its layers through scopes so keys read like the checkpoint's module tree.
public struct WeightScope: Sendable {
    public let binder: WeightBinder
    public let prefix: String

    public init(_ binder: WeightBinder, prefix: String = "") {
        self.binder = binder
        self.prefix = prefix
    }

    public var graph: Graph { binder.graph }

    public func callAsFunction(_ child: String) -> WeightScope { WeightScope(binder, prefix: prefix + child + ".") }
    public func callAsFunction(_ index: Int) -> WeightScope { WeightScope(binder, prefix: prefix + "\(index).") }

    public func weight(_ name: String, _ shape: Shape) throws -> Tensor { try binder.weight(prefix + name, shape) }
    public func has(_ name: String) -> Bool { binder.has(prefix + name) }
}

/// The weights a graph was built with, loaded one at a time on demand: a backend preparing the
/// graph pulls each tensor from the checkpoint (usually a memory-mapped file) as it uploads it.
public struct BoundWeights: ConstantValues, Sendable {
    public let source: TensorSource
    /// Shape of each bound weight, by checkpoint key.
    public let shapes: [String: Shape]
    /// Storage type the weights take on the device.
    public let dtype: DType
    /// Shared device copies, when the weights stay resident between graphs.
    public let residency: ResidentWeights?

    public func shape(ofConstant name: String) -> (shape: Shape, isInteger: Bool)? {
        shapes[name].map { ($0, false) }
    }

    public func value(ofConstant name: String) throws -> HostTensor {
        guard shapes[name] != nil else { throw WeightError.missing(origin: source.origin, name: name, expected: nil) }
        var tensor = try source.load(name)
        tensor.dtype = dtype
        return tensor
    }

    public func residency(ofConstant name: String) -> ResidentWeights? { residency }

    /// Bytes the weights take on the device in `dtype`.
    public var deviceBytes: Int { shapes.values.reduce(0) { $0 + $1.elementCount * dtype.byteCount } }
}
