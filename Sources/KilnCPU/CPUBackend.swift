import Foundation
import KilnGraph

/// The reference backend: plain loops over f32 values with wide (f64) accumulation for every
/// reduction. It defines what each op means; the Vulkan backend is tested against it.
/// f16/bf16 graphs run here in f32 end to end; only `cast` rounds, because rounding is what a
/// cast means.
public final class CPUBackend: Backend, @unchecked Sendable {
    public let name = "cpu"

    public init() {}

    public func prepare(_ graph: Graph, outputs: [Tensor], constants: [String: HostTensor]) throws -> any PreparedGraph {
        try CPUPreparedGraph(graph: graph, outputs: outputs, constants: constants)
    }
}

/// A node's value during a CPU run.
enum CPUValue {
    case floats([Float])
    case integers([Int32])

    var floats: [Float] {
        if case .floats(let values) = self { return values }
        preconditionFailure("expected a floating-point tensor")
    }

    var integers: [Int32] {
        if case .integers(let values) = self { return values }
        preconditionFailure("expected an int32 tensor")
    }
}

final class CPUPreparedGraph: PreparedGraph {
    let memoryPlan: MemoryPlan
    private let graph: Graph
    private let outputs: [Tensor]
    private let order: [Int]
    private let constants: [String: HostTensor]
    /// Step after which each node's value is no longer needed.
    private let lastUse: [Int: Int]

    init(graph: Graph, outputs: [Tensor], constants: [String: HostTensor]) throws {
        self.graph = graph
        self.outputs = outputs
        order = graph.dependencies(of: outputs)
        try validateBindings(graph, nodes: order, supplied: constants, constants: true)
        self.constants = constants
        memoryPlan = MemoryPlan(graph: graph, order: order, outputs: outputs.map(\.id), inArena: { node in
            if case .constant = node.operation { false } else { true }
        })
        var lastUse: [Int: Int] = [:]
        for (step, id) in order.enumerated() {
            for input in graph.nodes[id].inputs { lastUse[input] = step }
        }
        for output in outputs { lastUse[output.id] = order.count }
        self.lastUse = lastUse
    }

    func run(_ inputs: [String: HostTensor]) throws -> [HostTensor] {
        try validateBindings(graph, nodes: order, supplied: inputs, constants: false)
        var values: [Int: CPUValue] = [:]
        for (step, id) in order.enumerated() {
            let node = graph.nodes[id]
            let arguments = node.inputs.map { values[$0]! }
            values[id] = try evaluate(node, arguments, inputs: inputs)
            for input in node.inputs where lastUse[input] == step { values[input] = nil }
        }
        return outputs.map { output in
            switch values[output.id]! {
            case .floats(let scalars): HostTensor(shape: output.shape, scalars: scalars)
            case .integers(let integers): HostTensor(shape: output.shape, integers: integers)
            }
        }
    }

    private func evaluate(_ node: Node, _ arguments: [CPUValue], inputs: [String: HostTensor]) throws -> CPUValue {
        let shapes = node.inputs.map { graph.nodes[$0].shape }
        let x = { (index: Int) in arguments[index].floats }
        switch node.operation {
        case .input(let name):
            return Self.value(of: inputs[name]!)
        case .constant(let name):
            return Self.value(of: constants[name]!)
        case .matmul(let transposeA, let transposeB, let hasBias):
            return .floats(CPUKernels.matmul(x(0), shapes[0], x(1), shapes[1], bias: hasBias ? x(2) : nil,
                                             transposeA: transposeA, transposeB: transposeB, output: node.shape))
        case .conv2d(let parameters):
            return .floats(CPUKernels.conv2d(x(0), shapes[0], x(1), shapes[1], bias: parameters.hasBias ? x(2) : nil,
                                             parameters, output: node.shape))
        case .attention(let scale, let causal):
            return .floats(CPUKernels.attention(x(0), x(1), x(2), q: shapes[0], k: shapes[1], v: shapes[2], scale: scale, causal: causal))
        case .groupNorm(let groups, let epsilon, let silu):
            return .floats(CPUKernels.groupNorm(x(0), node.shape, groups: groups, weight: x(1), bias: x(2), epsilon: epsilon, silu: silu))
        case .layerNorm(let epsilon, let hasWeight, let hasBias):
            return .floats(CPUKernels.layerNorm(x(0), width: node.shape.last, weight: hasWeight ? x(1) : nil,
                                                bias: hasBias ? x(hasWeight ? 2 : 1) : nil, epsilon: epsilon))
        case .rmsNorm(let epsilon, let hasWeight):
            return .floats(CPUKernels.rmsNorm(x(0), width: node.shape.last, weight: hasWeight ? x(1) : nil, epsilon: epsilon))
        case .softmax:
            return .floats(CPUKernels.softmax(x(0), width: node.shape.last))
        case .binary(let op):
            return .floats(CPUKernels.binary(op, x(0), shapes[0], x(1), shapes[1], output: node.shape))
        case .unary(let op):
            return .floats(x(0).map { CPUKernels.apply(op, $0) })
        case .scale(let factor):
            return .floats(x(0).map { $0 * factor })
        case .clamp(let lower, let upper):
            return .floats(x(0).map { Swift.min(Swift.max($0, lower), upper) })
        case .geglu:
            return .floats(CPUKernels.geglu(x(0), halfWidth: node.shape.last))
        case .modulate:
            return .floats(CPUKernels.modulate(x(0), shift: x(1), scale: x(2), shape: node.shape))
        case .rope:
            return .floats(CPUKernels.rope(x(0), cos: x(1), sin: x(2), shape: node.shape))
        case .timestepEmbedding(let parameters):
            return .floats(CPUKernels.timestepEmbedding(x(0), parameters))
        case .cast(let dtype):
            return .floats(HostTensor(shape: node.shape, scalars: x(0), dtype: dtype).roundedToStorage().scalars)
        case .upsampleNearest2x:
            return .floats(CPUKernels.upsampleNearest2x(x(0), shapes[0]))
        case .concat(let axis):
            return .floats(CPUKernels.concat(arguments.map(\.floats), shapes, axis: axis, output: node.shape))
        case .slice(let axis, let start, _):
            return .floats(CPUKernels.slice(x(0), shapes[0], axis: axis, start: start, output: node.shape))
        case .permute(let permutation):
            return .floats(CPUKernels.permute(x(0), shapes[0], permutation))
        case .reshape:
            return arguments[0]
        case .embedding:
            return .floats(try CPUKernels.embedding(table: x(0), shapes[0], ids: arguments[1].integers))
        }
    }

    private static func value(of tensor: HostTensor) -> CPUValue {
        tensor.dtype == .int32 ? .integers(tensor.integers) : .floats(tensor.scalars)
    }
}
