extension Operation {
    /// Every kind of operation, without parameters: one per name, with each binary and unary operator
    /// a kind of its own. `allCases` is the list coverage checks derive from (the op-case table, the
    /// PyTorch fixtures), so a new op cannot be left out of them by forgetting a hand-written list.
    public enum Kind: String, CaseIterable, Hashable, Sendable {
        case input, constant
        case matmul, conv2d
        case groupNorm = "group_norm", layerNorm = "layer_norm", rmsNorm = "rms_norm", softmax, attention
        case add, sub, mul
        case silu, gelu, geluTanh = "gelu_tanh", quickGelu = "quick_gelu", exp
        case scale, clamp, geglu
        case upsampleNearest2x = "upsample_nearest_2x", concat, slice, permute, reshape, embedding
        case timestepEmbedding = "timestep_embedding", modulate, rope, cast
        case winogradInput = "winograd_input", winogradWeight = "winograd_weight", winogradOutput = "winograd_output"
        case guidedStep = "guided_step"

        /// The kind of a binary operator's op.
        public init(_ op: BinaryOperator) {
            switch op {
            case .add: self = .add
            case .sub: self = .sub
            case .mul: self = .mul
            }
        }

        /// The kind of a unary operator's op.
        public init(_ op: UnaryOperator) {
            switch op {
            case .silu: self = .silu
            case .gelu: self = .gelu
            case .geluTanh: self = .geluTanh
            case .quickGelu: self = .quickGelu
            case .exp: self = .exp
            }
        }
    }

    /// This op's kind. The switch has no default: a new case does not compile until it names its kind.
    public var kind: Kind {
        switch self {
        case .input: .input
        case .constant: .constant
        case .matmul: .matmul
        case .conv2d: .conv2d
        case .groupNorm: .groupNorm
        case .layerNorm: .layerNorm
        case .rmsNorm: .rmsNorm
        case .softmax: .softmax
        case .attention: .attention
        case .binary(let op): Kind(op)
        case .unary(let op): Kind(op)
        case .scale: .scale
        case .clamp: .clamp
        case .geglu: .geglu
        case .upsampleNearest2x: .upsampleNearest2x
        case .concat: .concat
        case .slice: .slice
        case .permute: .permute
        case .reshape: .reshape
        case .embedding: .embedding
        case .timestepEmbedding: .timestepEmbedding
        case .modulate: .modulate
        case .rope: .rope
        case .cast: .cast
        case .winogradInput: .winogradInput
        case .winogradWeight: .winogradWeight
        case .winogradOutput: .winogradOutput
        case .guidedStep: .guidedStep
        }
    }
}
