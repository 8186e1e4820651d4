import Foundation
import KilnGraph

/// The reference backend: plain loops over f32 values with wide (f64) accumulation for every
/// reduction. It defines what each op means; the Vulkan backend is tested against it.
/// f16/bf16 graphs run here in f32 end to end; only `cast` rounds, because rounding is what a
/// cast means. Outputs come back as f32 `HostTensor`s (int32 for integer outputs).
///
/// ```swift
/// let y = try CPUBackend().run(graph, outputs: [out], inputs: ["x": x], constants: weights)[0]
/// ```
public final class CPUBackend: Backend, @unchecked Sendable {
    public let name = "cpu"
    private let lock = NSLock()
    private var constantBytes = 0

    public init() {}

    /// Checks `constants` against the graph, loads them (resident ones once per backend) and
    /// plans the run; nothing is computed yet.
    public func prepare(_ graph: Graph, outputs: [Tensor], constants: any ConstantValues) throws -> any PreparedGraph {
        try CPUPreparedGraph(graph: graph, outputs: outputs, constants: constants, backend: self)
    }

    public var uploadedConstantBytes: Int { lock.withLock { constantBytes } }

    func countLoaded(_ bytes: Int) { lock.withLock { constantBytes += bytes } }

    /// Replaces the stored f32 values of each resident copy of `names`; graphs hold the same
    /// boxes, so they read the new values from their next run on.
    public func rewriteResidentConstants(_ names: Set<String>, of residency: ResidentWeights, from values: any ConstantValues) throws {
        guard let store: CPUConstantStore = residency.existingStore(for: self) else { return }
        try store.rewrite(names, backend: self) { name, shape in
            let tensor = try values.value(ofConstant: name)
            guard tensor.shape == shape else {
                throw GraphError("constant", "new value of resident '\(name)' is \(tensor.shape), the stored copy \(shape)")
            }
            return try CPUPreparedGraph.value(of: tensor, name: name, kind: "constant")
        }
    }
}

/// One constant's value as graphs read it: shared by every graph over a resident copy, and
/// replaced in place when the copy is rewritten.
final class CPUConstantBox: @unchecked Sendable {
    let name: String
    let shape: Shape
    var value: CPUValue

    init(name: String, shape: Shape, value: CPUValue) {
        self.name = name
        self.shape = shape
        self.value = value
    }
}

/// The f32 values of resident constants, loaded once and shared by every graph over them.
final class CPUConstantStore: @unchecked Sendable {
    private let lock = NSLock()
    private var boxes: [String: CPUConstantBox] = [:]

    /// The box filed under `key`, loaded by `load` (and counted by `backend`) the first time.
    func box(_ key: String, name: String, shape: Shape, backend: CPUBackend, load: () throws -> (CPUValue, bytes: Int)) rethrows -> CPUConstantBox {
        try lock.withLock {
            if let box = boxes[key] { return box }
            let (value, bytes) = try load()
            let box = CPUConstantBox(name: name, shape: shape, value: value)
            boxes[key] = box
            backend.countLoaded(bytes)
            return box
        }
    }

    /// New values for the boxes of `names`, from `load(name, shape)`.
    func rewrite(_ names: Set<String>, backend: CPUBackend, load: (String, Shape) throws -> CPUValue) throws {
        try lock.withLock {
            for box in boxes.values where names.contains(box.name) {
                box.value = try load(box.name, box.shape)
                backend.countLoaded(box.shape.elementCount * 4)
            }
        }
    }
}

/// A node's value during a CPU run: f32 for every floating-point dtype, int32 for ids.
enum CPUValue {
    case floats([Float])
    case integers([Int32])

    /// The f32 values; builders only let int32 tensors reach movement ops and `embedding`'s ids,
    /// so the error here means a graph was assembled without the builders.
    func floats(_ operation: String) throws -> [Float] {
        guard case .floats(let values) = self else { throw GraphError(operation, "expects a floating-point input, got int32") }
        return values
    }

    func integers(_ operation: String) throws -> [Int32] {
        guard case .integers(let values) = self else { throw GraphError(operation, "expects int32 ids, got a floating-point tensor") }
        return values
    }

    /// Applies a data-movement kernel, which works the same on either element type.
    func moved(_ onFloats: ([Float]) -> [Float], _ onIntegers: ([Int32]) -> [Int32]) -> CPUValue {
        switch self {
        case .floats(let values): .floats(onFloats(values))
        case .integers(let values): .integers(onIntegers(values))
        }
    }
}

/// A graph prepared for the CPU: the nodes the outputs need, in order, with each value freed
/// after its last reader.
final class CPUPreparedGraph: PreparedGraph {
    let memoryPlan: MemoryPlan
    private let graph: Graph
    private let outputs: [Tensor]
    private let order: [Int]
    private let constants: [String: CPUConstantBox]
    /// Step after which each node's value is no longer needed (`order.count` for outputs).
    private let lastUse: [Int: Int]

    init(graph: Graph, outputs: [Tensor], constants: any ConstantValues, backend: CPUBackend) throws {
        self.graph = graph
        self.outputs = outputs
        order = graph.dependencies(of: outputs)
        try validateBindings(graph, nodes: order, supplied: constants, constants: true)
        memoryPlan = MemoryPlan(activationsOf: graph, outputs: outputs)
        // Every value is 4 bytes here whatever the graph's types (so this bound is high for a graph
        // of mixed types); a plan beyond the machine's memory would end the process at its first
        // allocation rather than fail.
        let narrowest = order.map { graph.nodes[$0].dtype.byteCount }.min() ?? 4
        let neededBytes = memoryPlan.arenaBytes / max(1, narrowest) * 4
        if neededBytes > backend.memoryCapacityBytes {
            throw MemoryLimitError(needed: neededBytes, available: backend.memoryCapacityBytes, limit: "memory of this machine",
                                   need: "the graph's activations at their peak")
        }
        var values: [String: CPUConstantBox] = [:]
        for id in order {
            let node = graph.nodes[id]
            guard case .constant(let name) = node.operation else { continue }
            let load = { () throws -> (CPUValue, bytes: Int) in
                (try Self.value(of: constants.value(ofConstant: name), name: name, kind: "constant"), node.shape.elementCount * 4)
            }
            if let residency = constants.residency(ofConstant: name) {
                let store = residency.store(for: backend) { CPUConstantStore() }
                values[name] = try store.box(residentKey(name, node.shape, node.dtype), name: name, shape: node.shape, backend: backend, load: load)
            } else {
                let (value, bytes) = try load()
                values[name] = CPUConstantBox(name: name, shape: node.shape, value: value)
                backend.countLoaded(bytes)
            }
        }
        self.constants = values
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
            let arguments = try node.inputs.map { input in
                guard let value = values[input] else {
                    throw GraphError(node.operation.name, "input %\(input) of %\(id) was not computed before it")
                }
                return value
            }
            values[id] = try evaluate(node, arguments, inputs: inputs)
            for input in node.inputs where lastUse[input] == step { values[input] = nil }
        }
        return try outputs.map { output in
            switch values[output.id] {
            case .floats(let scalars): HostTensor(shape: output.shape, scalars: scalars)
            case .integers(let integers): HostTensor(shape: output.shape, integers: integers)
            case nil: throw GraphError("output", "%\(output.id) was not computed")
            }
        }
    }

    /// A fused addend means exactly: the op's result, then a broadcasting add of its last input.
    private func addingAddend(
        _ hasAddend: Bool, to values: [Float], node: Node, argument: (Int) throws -> [Float], shapes: [Shape]
    ) throws -> [Float] {
        guard hasAddend else { return values }
        let last = node.inputs.count - 1
        return CPUKernels.binary(.add, values, node.shape, try argument(last), shapes[last], output: node.shape)
    }

    private func evaluate(_ node: Node, _ arguments: [CPUValue], inputs: [String: HostTensor]) throws -> CPUValue {
        let shapes = node.inputs.map { graph.nodes[$0].shape }
        let name = node.operation.name
        let x = { (index: Int) in try arguments[index].floats(name) }
        switch node.operation {
        case .input(let inputName):
            guard let tensor = inputs[inputName] else { throw GraphError("input", "no value supplied for input '\(inputName)'") }
            return try Self.value(of: tensor, name: inputName, kind: "input")
        case .constant(let constantName):
            guard let box = constants[constantName] else { throw GraphError("constant", "no value supplied for constant '\(constantName)'") }
            return box.value
        case .matmul(let transposeA, let transposeB, let hasBias, let hasAddend):
            let product = CPUKernels.matmul(try x(0), shapes[0], try x(1), shapes[1], bias: hasBias ? try x(2) : nil,
                                            transposeA: transposeA, transposeB: transposeB, output: node.shape)
            return .floats(try addingAddend(hasAddend, to: product, node: node, argument: x, shapes: shapes))
        case .conv2d(let parameters):
            let convolved = CPUKernels.conv2d(try x(0), shapes[0], try x(1), shapes[1], bias: parameters.hasBias ? try x(2) : nil,
                                              parameters, output: node.shape)
            return .floats(try addingAddend(parameters.hasAddend, to: convolved, node: node, argument: x, shapes: shapes))
        case .attention(let scale, let causal, let hasBias, let heads):
            let bias: (values: [Float], batched: Bool)? = hasBias ? (try x(3), shapes[3][0] > 1) : nil
            guard heads > 0 else {
                return .floats(CPUKernels.attention(try x(0), try x(1), try x(2), q: shapes[0], k: shapes[1], v: shapes[2],
                                                    bias: bias, scale: scale, causal: causal))
            }
            // Token-major tensors mean exactly: split the heads, attend, merge them again.
            let split = { (values: [Float], shape: Shape) -> ([Float], Shape) in
                let tokens = Shape([shape[0], shape[1], heads, shape[2] / heads])
                return (CPUKernels.permute(values, tokens, [0, 2, 1, 3]), Shape([shape[0], heads, shape[1], shape[2] / heads]))
            }
            let (q, qShape) = split(try x(0), shapes[0]), (k, kShape) = split(try x(1), shapes[1]), (v, vShape) = split(try x(2), shapes[2])
            let attended = CPUKernels.attention(q, k, v, q: qShape, k: kShape, v: vShape, bias: bias, scale: scale, causal: causal)
            return .floats(CPUKernels.permute(attended, Shape([qShape[0], heads, qShape[2], vShape[3]]), [0, 2, 1, 3]))
        case .groupNorm(let groups, let epsilon, let silu):
            return .floats(CPUKernels.groupNorm(try x(0), node.shape, groups: groups, weight: try x(1), bias: try x(2),
                                                epsilon: epsilon, silu: silu))
        case .layerNorm(let epsilon, let hasWeight, let hasBias):
            return .floats(CPUKernels.layerNorm(try x(0), width: node.shape.last, weight: hasWeight ? try x(1) : nil,
                                                bias: hasBias ? try x(hasWeight ? 2 : 1) : nil, epsilon: epsilon))
        case .rmsNorm(let epsilon, let hasWeight):
            return .floats(CPUKernels.rmsNorm(try x(0), width: node.shape.last, weight: hasWeight ? try x(1) : nil, epsilon: epsilon))
        case .softmax:
            return .floats(CPUKernels.softmax(try x(0), width: node.shape.last))
        case .binary(let op):
            return .floats(CPUKernels.binary(op, try x(0), shapes[0], try x(1), shapes[1], output: node.shape))
        case .unary(let op):
            return .floats(try x(0).map { CPUKernels.apply(op, $0) })
        case .scale(let factor):
            return .floats(try x(0).map { $0 * factor })
        case .clamp(let lower, let upper):
            return .floats(try x(0).map { CPUKernels.clamp($0, lower: lower, upper: upper) })
        case .geglu:
            return .floats(CPUKernels.geglu(try x(0), halfWidth: node.shape.last))
        case .winogradInput(let upsampled):
            return .floats(CPUKernels.winogradInput(try x(0), shapes[0], upsampled: upsampled))
        case .winogradWeight:
            return .floats(CPUKernels.winogradWeight(try x(0), shapes[0]))
        case .winogradOutput(let parameters):
            let last = node.inputs.count - 1
            return .floats(CPUKernels.winogradOutput(
                try x(0), shapes[0], parameters, bias: parameters.hasBias ? try x(1) : nil,
                addend: parameters.hasAddend ? (try x(last), shapes[last]) : nil))
        case .guidedStep(let hasNoise):
            return .floats(CPUKernels.guidedStep(prediction: try x(0), sample: try x(1), coefficients: try x(2),
                                                 noise: hasNoise ? try x(3) : nil))
        case .modulate:
            return .floats(CPUKernels.modulate(try x(0), shift: try x(1), scale: try x(2), shape: node.shape))
        case .rope:
            return .floats(CPUKernels.rope(try x(0), cos: try x(1), sin: try x(2), shape: node.shape))
        case .timestepEmbedding(let parameters):
            return .floats(CPUKernels.timestepEmbedding(try x(0), parameters))
        case .cast(let dtype):
            // Arithmetic stays f32, but a cast's rounding is its meaning: the device stores the
            // narrower type, so the reference rounds too (`cast_round_trip` in the op-case table).
            return .floats(HostTensor(shape: node.shape, scalars: try x(0), dtype: dtype).roundedToStorage().scalars)
        case .upsampleNearest2x:
            func upsample<Element>(_ values: [Element]) -> [Element] { CPUKernels.upsampleNearest2x(values, shapes[0]) }
            return arguments[0].moved(upsample, upsample)
        case .concat(let axis):
            if case .integers = arguments[0] {
                let parts = try arguments.map { try $0.integers(name) }
                return .integers(CPUKernels.concat(parts, shapes, axis: axis, output: node.shape))
            }
            return .floats(CPUKernels.concat(try arguments.map { try $0.floats(name) }, shapes, axis: axis, output: node.shape))
        case .slice(let axis, let start, _):
            func slice<Element>(_ values: [Element]) -> [Element] {
                CPUKernels.slice(values, shapes[0], axis: axis, start: start, output: node.shape)
            }
            return arguments[0].moved(slice, slice)
        case .permute(let permutation):
            func permute<Element>(_ values: [Element]) -> [Element] { CPUKernels.permute(values, shapes[0], permutation) }
            return arguments[0].moved(permute, permute)
        case .reshape:
            return arguments[0]
        case .embedding:
            return .floats(try CPUKernels.embedding(table: try x(0), shapes[0], ids: try arguments[1].integers(name)))
        }
    }

    /// A caller's tensor as a CPU value, after checking it holds as many values as its shape says
    /// (`HostTensor`'s fields are mutable, so a mismatch would otherwise read out of bounds).
    static func value(of tensor: HostTensor, name: String, kind: String) throws -> CPUValue {
        let count = tensor.dtype == .int32 ? tensor.integers.count : tensor.scalars.count
        guard count == tensor.shape.elementCount else {
            throw GraphError(kind, "'\(name)' \(tensor.shape) holds \(count) values, expected \(tensor.shape.elementCount)")
        }
        return tensor.dtype == .int32 ? .integers(tensor.integers) : .floats(tensor.scalars)
    }
}
