import KilnGraph

/// One entry of the shared op-case table: a small graph around one op, with its inputs.
/// The same table drives `swift test` (both backends), `kiln verify` and the kernel benchmarks.
public struct OperationCase: Sendable, CustomStringConvertible {
    /// Unique name, e.g. `conv2d_3x3_stride2_f16`.
    public let name: String
    /// The kind of op the case exercises; its graph holds at least one node of that kind.
    public let operation: Operation.Kind
    /// Storage type of the case's tensors on the device.
    public let dtype: DType
    /// Max error relative to the reference's largest finite magnitude that still passes.
    public let tolerance: Float
    /// How a non-finite reference value must be matched (`NonFiniteMatching`).
    public let nonFinite: NonFiniteMatching
    /// Builds the graph in `graph` and returns its outputs and per-run inputs.
    public let build: @Sendable (Graph) throws -> (outputs: [Tensor], inputs: [String: HostTensor])

    public var description: String { name }
}

/// How a device output must match a reference value that is NaN or infinite. Finite reference
/// values are always matched by finite device values within the case's tolerance.
public enum NonFiniteMatching: Sendable {
    /// NaN by NaN, +inf by +inf, -inf by -inf: the op is exact about where its non-finite values come
    /// from (an infinity enters each output through one path, so no reduction order changes it).
    case exact
    /// NaN by NaN, and an infinity by any non-finite value: where a legitimate choice of reduction order
    /// or algorithm (Winograd's transforms, an online softmax) may turn `inf - inf` into NaN. Each case
    /// that uses it says why.
    case infinityMayBecomeNaN
}

extension OperationCase {
    init(_ name: String, _ operation: Operation.Kind, _ dtype: DType, tolerance: Float? = nil,
         nonFinite: NonFiniteMatching = .exact, _ body: @escaping @Sendable (inout CaseBuilder) throws -> Tensor) {
        let caseName = "\(name)_\(dtype.shortName)"
        self.name = caseName
        self.operation = operation
        self.dtype = dtype
        // f16 storage rounds every output to 11 significant bits (~5e-4 relative).
        self.tolerance = tolerance ?? (dtype == .float16 ? 4e-3 : 2e-4)
        self.nonFinite = nonFinite
        self.build = { graph in
            var builder = CaseBuilder(graph: graph, dtype: dtype, random: SeededRandom(name: caseName))
            let output = try body(&builder)
            return ([output], builder.inputs)
        }
    }
}
