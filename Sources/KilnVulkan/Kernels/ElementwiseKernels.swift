import KilnGraph

/// Dispatches for elementwise.comp: unary functions, scale, broadcast binary ops, GEGLU,
/// modulate, rotary embedding, timestep embedding and casts.
enum ElementwiseKernels {
    static let file = "elementwise.comp"

    /// Codes of UNARY_FUNCTION beyond the `UnaryOperator`s.
    enum Affine { case scale(Float), clamp(Float, Float) }

    static func unary(_ context: KernelContext, function: UnaryOperator?, affine: Affine = .scale(1)) -> Dispatch {
        let code = switch (function, affine) {
        case (.silu, _): 0
        case (.gelu, _): 1
        case (.geluTanh, _): 2
        case (.quickGelu, _): 3
        case (.exp, _): 5
        case (nil, .scale): 4
        case (nil, .clamp): 6
        }
        var (factor, lower, upper): (Float, Float, Float) = (1, 0, 0)
        switch affine {
        case .scale(let value): factor = value
        case .clamp(let low, let high): (lower, upper) = (low, high)
        }
        let count = context.output.shape.elementCount
        let vector = count % 4 == 0
        var constants = PushConstants()
        constants.address("x", context.argument(0).address)
        constants.address("y", context.output.address)
        constants.uint("count", vector ? count / 4 : count)
        constants.float("factor", factor)
        constants.float("lower", lower)
        constants.float("upper", upper)
        return context.linearDispatch(
            file, defines: context.storageDefines + [("UNARY_FUNCTION", "\(code)"), ("VECTOR4", vector ? "1" : "0")],
            pushConstants: constants, count: vector ? count / 4 : count)
    }

    static func binary(_ context: KernelContext, _ op: BinaryOperator) -> Dispatch {
        let code = switch op {
        case .add: 0
        case .sub: 1
        case .mul: 2
        }
        let a = context.argument(0), b = context.argument(1), output = context.output
        let count = output.shape.elementCount
        let vector = a.shape == output.shape && b.shape == output.shape && count % 4 == 0
        var constants = PushConstants()
        constants.address("a", a.address)
        constants.address("b", b.address)
        constants.address("y", output.address)
        constants.uint("count", vector ? count / 4 : count)
        let view = BroadcastView(output: output.shape, operands: [a.shape, b.shape])
        constants.uints("dims", view.dimensions)
        constants.uints("stridesA", view.strides[0])
        constants.uints("stridesB", view.strides[1])
        return context.linearDispatch(
            file, defines: context.storageDefines + [("BINARY_OPERATOR", "\(code)"), ("VECTOR4", vector ? "1" : "0")],
            pushConstants: constants, count: vector ? count / 4 : count)
    }

    static func geglu(_ context: KernelContext) -> Dispatch {
        var constants = PushConstants()
        constants.address("x", context.argument(0).address)
        constants.address("y", context.output.address)
        constants.uint("count", context.output.shape.elementCount)
        constants.uint("halfWidth", context.output.shape.last)
        return context.linearDispatch(file, defines: context.storageDefines + [("GEGLU", "1")], pushConstants: constants,
                                      count: context.output.shape.elementCount)
    }

    /// `x [B, L, D]` modulated by per-sample shift/scale `[B, D]`.
    static func modulate(_ context: KernelContext) -> Dispatch {
        withTables(context, define: "MODULATE", names: ("shift", "scale"), lengthAxis: 1)
    }

    /// `x [B, H, L, D]` rotated by per-position cos/sin tables `[L, D]`.
    static func rope(_ context: KernelContext) -> Dispatch {
        withTables(context, define: "ROPE", names: ("cosines", "sines"), lengthAxis: 2)
    }

    /// MODULATE and ROPE share a layout: x, two tables, y, then the element count, the sequence
    /// length and the width (last dim).
    private static func withTables(_ context: KernelContext, define: String, names: (String, String), lengthAxis: Int) -> Dispatch {
        let shape = context.output.shape
        var constants = PushConstants()
        constants.address("x", context.argument(0).address)
        constants.address(names.0, context.argument(1).address)
        constants.address(names.1, context.argument(2).address)
        constants.address("y", context.output.address)
        constants.uint("count", shape.elementCount)
        constants.uint("sequenceLength", shape[lengthAxis])
        constants.uint("width", shape.last)
        return context.linearDispatch(file, defines: context.storageDefines + [(define, "1")], pushConstants: constants,
                                      count: shape.elementCount)
    }

    static func timestepEmbedding(_ context: KernelContext, _ parameters: TimestepEmbedding) -> Dispatch {
        var constants = PushConstants()
        constants.address("t", context.argument(0).address)
        constants.address("y", context.output.address)
        constants.uint("count", context.output.shape.elementCount)
        constants.uint("dimension", parameters.dimension)
        constants.bool("flipSinToCos", parameters.flipSinToCos)
        constants.float("downscaleFrequencyShift", parameters.downscaleFrequencyShift)
        constants.float("maxPeriod", parameters.maxPeriod)
        constants.float("scale", parameters.scale)
        return context.linearDispatch(file, defines: context.storageDefines + [("TIMESTEP_EMBEDDING", "1")],
                                      pushConstants: constants, count: context.output.shape.elementCount)
    }

    /// `Operation.guidedStep`: KILN_F16 follows the prediction; sample, noise and output are f32.
    static func guidedStep(_ context: KernelContext, hasNoise: Bool) -> Dispatch {
        let prediction = context.argument(0), count = context.output.shape.elementCount
        var constants = PushConstants()
        constants.address("prediction", prediction.address)
        constants.address("sample_", context.argument(1).address)
        constants.address("coefficients", context.argument(2).address)
        constants.address("noise", hasNoise ? context.argument(3).address : context.argument(1).address)
        constants.address("y", context.output.address)
        constants.uint("count", count)
        constants.bool("guided", prediction.shape[0] != context.output.shape[0])
        constants.bool("hasNoise", hasNoise)
        let defines = [("KILN_F16", prediction.dtype == .float16 ? "1" : "0"), ("GUIDED_STEP", "1")]
        return context.linearDispatch(file, defines: defines, pushConstants: constants, count: count)
    }

    static func cast(_ context: KernelContext) -> Dispatch {
        var constants = PushConstants()
        constants.address("x", context.argument(0).address)
        constants.address("y", context.output.address)
        constants.uint("count", context.output.shape.elementCount)
        let defines = [("KILN_F16", "1"), ("CAST", "1"),
                       ("SOURCE_F16", context.argument(0).dtype == .float16 ? "1" : "0"),
                       ("TARGET_F16", context.output.dtype == .float16 ? "1" : "0")]
        return context.linearDispatch(file, defines: defines, pushConstants: constants, count: context.output.shape.elementCount)
    }
}

/// The rank-6 view kernels iterate over, with each operand's element strides (0 on broadcast dims).
struct BroadcastView {
    static let rank = 6
    let dimensions: [Int]
    let strides: [[Int]]

    init(output: Shape, operands: [Shape]) {
        let padding = Self.rank - output.rank
        dimensions = [Int](repeating: 1, count: padding) + output.dimensions
        strides = operands.map { operand in
            let contiguous = operand.strides
            return (0..<Self.rank).map { axis -> Int in
                let operandAxis = axis - (Self.rank - operand.rank)
                guard operandAxis >= 0, operand.dimensions[operandAxis] != 1 else { return 0 }
                return contiguous[operandAxis]
            }
        }
    }
}
