/// A handle to one node's output in a `Graph`. Cheap to copy; carries the node's shape and dtype.
public struct Tensor: Hashable, Sendable, CustomStringConvertible {
    public let id: Int
    public let shape: Shape
    public let dtype: DType

    public var description: String { "%\(id)\(shape) \(dtype.shortName)" }
}

/// One operation applied to earlier nodes' outputs.
public struct Node: Sendable {
    public let id: Int
    public let operation: Operation
    public let inputs: [Int]
    public let shape: Shape
    public let dtype: DType
}

/// A lazily built computation: builder methods append nodes after checking shapes, and a
/// `Backend` later runs the nodes that the requested outputs depend on. Nodes are stored in
/// creation order, which is always a valid execution order.
///
/// ```swift
/// let graph = Graph()
/// let x = graph.input("x", [2, 77, 768])
/// let y = try graph.linear(x, weight: graph.constant("w", [320, 768]), bias: nil)   // [2, 77, 320]
/// ```
public final class Graph: @unchecked Sendable {
    public private(set) var nodes: [Node] = []

    public init() {}

    /// Appends a node; builders call this after their shape checks.
    @discardableResult
    public func append(_ operation: Operation, _ inputs: [Tensor], shape: Shape, dtype: DType) -> Tensor {
        let node = Node(id: nodes.count, operation: operation, inputs: inputs.map(\.id), shape: shape, dtype: dtype)
        nodes.append(node)
        return Tensor(id: node.id, shape: shape, dtype: dtype)
    }

    public func tensor(_ id: Int) -> Tensor {
        Tensor(id: id, shape: nodes[id].shape, dtype: nodes[id].dtype)
    }

    /// Per-run data, supplied to every `run`.
    public func input(_ name: String, _ shape: Shape, dtype: DType = .float32) -> Tensor {
        append(.input(name: name), [], shape: shape, dtype: dtype)
    }

    /// Weights, supplied once when the graph is prepared.
    public func constant(_ name: String, _ shape: Shape, dtype: DType = .float32) -> Tensor {
        append(.constant(name: name), [], shape: shape, dtype: dtype)
    }

    /// Ids of the nodes `outputs` depend on, in execution order.
    public func dependencies(of outputs: [Tensor]) -> [Int] {
        var needed = [Bool](repeating: false, count: nodes.count)
        var stack = outputs.map(\.id)
        while let id = stack.popLast() {
            if needed[id] { continue }
            needed[id] = true
            stack.append(contentsOf: nodes[id].inputs)
        }
        return needed.indices.filter { needed[$0] }
    }
}

// MARK: - Shared checks

extension Graph {
    func requireFloat(_ op: String, _ tensors: Tensor...) throws {
        for tensor in tensors where !tensor.dtype.isFloatingPoint {
            throw GraphError(op, "expects floating-point tensors, got \(tensor.dtype.shortName) \(tensor.shape)")
        }
        if let first = tensors.first, let other = tensors.first(where: { $0.dtype != first.dtype }) {
            throw GraphError(op, "mixes \(first.dtype.shortName) \(first.shape) with \(other.dtype.shortName) \(other.shape); cast first")
        }
    }

    func requireRank(_ op: String, _ tensor: Tensor, _ rank: Int, _ role: String) throws {
        if tensor.shape.rank != rank {
            throw GraphError(op, "\(role) must have rank \(rank), got \(tensor.shape)")
        }
    }

    func requireShape(_ op: String, _ tensor: Tensor, _ shape: Shape, _ role: String) throws {
        if tensor.shape != shape {
            throw GraphError(op, "\(role) must be \(shape), got \(tensor.shape)")
        }
    }

    func normalizedAxis(_ op: String, _ axis: Int, rank: Int) throws -> Int {
        let resolved = axis < 0 ? axis + rank : axis
        guard resolved >= 0, resolved < rank else {
            throw GraphError(op, "axis \(axis) out of range for rank \(rank)")
        }
        return resolved
    }
}

extension Graph {
    /// Floating-point operations node `id` performs, a multiply-add counting 2 (elementwise ops
    /// count one per output), for GFLOP/s figures.
    public func flops(of id: Int) -> Double {
        let node = nodes[id]
        let inputs = node.inputs.map { nodes[$0].shape }
        let outputs = Double(node.shape.elementCount)
        switch node.operation {
        case .input, .constant, .reshape:
            return 0
        case .matmul(let transposeA, _, _, let hasAddend):
            return 2 * outputs * Double(transposeA ? inputs[0][-2] : inputs[0][-1]) + (hasAddend ? outputs : 0)
        case .conv2d(let parameters):
            return 2 * outputs * Double(inputs[1][1] * inputs[1][2] * inputs[1][3]) + (parameters.hasAddend ? outputs : 0)
        case .attention(_, _, _, let heads) where heads > 0:
            // [B, L, H * D]: every head's scores and weighted sum over its slice of the width.
            let (q, k, v) = (inputs[0], inputs[1], inputs[2])
            return 2 * Double(q[0] * q[1] * k[1]) * Double(q[2] + v[2])
        case .attention:
            let (q, k, v) = (inputs[0], inputs[1], inputs[2])
            return 2 * Double(q[0] * q[1] * q[2] * k[2]) * Double(q[3] + v[3])
        default:
            return outputs
        }
    }

    /// Total floating-point operations of the nodes `outputs` depend on.
    public func flops(of outputs: [Tensor]) -> Double { dependencies(of: outputs).reduce(0) { $0 + flops(of: $1) } }
}
